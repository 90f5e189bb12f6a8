# a dilated kernel spans dilation*(K-1)+1 cells
# expect: 4:1: error: kernel 5 (dilated to 9x9) is larger than its input 4x4
input 4x4x6
conv 5 1 8 dilation=2 pad=valid
