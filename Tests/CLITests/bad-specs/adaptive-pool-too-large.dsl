# adaptive pooling may not make more cells than its input has
# expect: 4:1: error: adaptive pooling to 8x8 is larger than its 7x7 input (bins would repeat input pixels)
input 7x7x8
pool avg to 8x8
