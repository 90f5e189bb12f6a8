# a network name with characters outside letters, digits, '-', '_', '.'
# expect: 3:9: error: network name may contain only letters, digits, '-', '_' and '.'
network my+net
input 32x32x3
conv 3 1 8
