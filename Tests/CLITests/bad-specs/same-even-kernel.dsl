# 'same' padding needs an odd kernel
# expect: 5:12: error: 'same' padding needs an odd kernel size (got 4); give pad=N explicitly
# expect: 6:12: error: 'same' padding needs an odd kernel size (got 2); give pad=N explicitly
input 32x32x3
conv 4 1 8 pad=same
conv 2 1 8 same
