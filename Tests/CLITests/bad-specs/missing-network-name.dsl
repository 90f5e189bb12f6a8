# 'network' alone
# expect: 3:1: error: expected a network name after 'network'
network
input 32x32x3
conv 3 1 8
