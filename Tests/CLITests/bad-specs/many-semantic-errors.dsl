# several independent semantic errors, all reported
# expect: 8:8: error: stride must be from 1 to 1024, got 0
# expect: 9:9: error: dropout probability must be between 0 and 0.999999, got 1 (the fractio
# expect: 10:12: error: 'same' padding needs an odd kernel size (got 4); give pad=N explicitly
# expect: 11:1: error: pooling padding 2 is more than half the window 3
# expect: 12:1: error: unknown block 'foo'
input 32x32x3
conv 3 0 8
dropout 1
conv 4 1 8 pad=same
pool 3 2 pad=2
foo(1)
