# input declared after the first layer
# expect: 4:1: error: 'input' must come before the first layer
conv 3 1 8
input 32x32x3
