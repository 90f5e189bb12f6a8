# values outside their ranges
# expect: 8:8: error: stride must be from 1 to 1024, got 0
# expect: 9:10: error: number of filters must be at least 1 (and at most 1048576), got 200000
# expect: 10:7: error: leaky slope must be between 0 and 1, got 2
# expect: 11:6: error: kernel size must be from 1 to 1024, got 0
# expect: 12:4: error: number of output units must be at least 1 (and at most 1048576), got 0
input 32x32x3
conv 3 0 8
conv 3 1 2000000
leaky 2
conv 0 1 8
fc 0
