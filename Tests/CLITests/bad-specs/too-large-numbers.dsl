# numbers too large to be read
# expect: 6:10: error: number '99999999999999999999999' is too large
# expect: 7:10: error: number '1e400' is too large
# expect: 8:9: error: number '1e16' is too large
input 32x32x3
conv 3 1 99999999999999999999999
conv 3 1 1e400
dropout 1e16
