# a network whose multiply-accumulates would overflow the counters (reported, no crash)
# expect: 4:1: error: the network is too large to count: it needs more than 10^18 multiply-accumulates
input 4096x4096x256
conv 1023 1 256
