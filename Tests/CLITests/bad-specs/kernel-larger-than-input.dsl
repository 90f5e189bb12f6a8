# kernel larger than the (padded) input
# expect: 4:1: error: kernel 7 is larger than its input 4x4
input 4x4x3
conv 7 1 8 pad=valid
