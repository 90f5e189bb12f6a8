# a zero dimension
# expect: 3:7: error: input dimension '0' must be a whole number from 1 to 1048576
input 0x32x3
conv 3 1 8
