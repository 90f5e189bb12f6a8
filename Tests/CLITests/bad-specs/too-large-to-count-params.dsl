# more than 2^40 parameters
# expect: 4:1: error: the network is too large to count: it needs more than 1099511627776 parameters
input 1x1x1048576
fc 1048576
fc 1048576
