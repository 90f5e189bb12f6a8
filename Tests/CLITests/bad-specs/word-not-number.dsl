# a word starting with a digit where a number is expected
# expect: 4:6: error: '3a' is not a number
input 32x32x3
conv 3a 1 8
