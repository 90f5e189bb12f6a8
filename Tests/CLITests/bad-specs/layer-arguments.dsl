# argument counts of the other layers
# expect: 8:1: error: 'fc' expects 1 argument (fc UNITS); missing output units
# expect: 9:6: error: too many arguments to 'relu': expected none (relu)
# expect: 10:1: error: 'dropout' expects 1 argument (dropout P); missing drop probability
# expect: 11:10: error: too many arguments to 'pool': expected at most 2 (pool [max|avg] [WIND
# expect: 12:5: error: too many arguments to 'gap': expected none (gap)
input 32x32x3
fc
relu 3
dropout
pool 3 2 1
gap 1
