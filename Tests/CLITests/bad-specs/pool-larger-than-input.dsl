# pooling window larger than the input
# expect: 6:1: error: pooling window 3 is larger than its input 2x2
input 8x8x3
conv 3 2 8
conv 3 2 8
pool max 3 1
