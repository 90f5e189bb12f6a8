# pooling padding more than half the window
# expect: 4:1: error: pooling padding 2 is more than half the window 3
input 32x32x3
pool 3 2 pad=2
