# two layers with the same label
# expect: 5:1: error: layer name 'first' is already used
input 32x32x3
first: conv 3 1 8
first: relu
