# conv with no arguments at all
# expect: 4:1: error: 'conv' expects 3 arguments (conv KERNEL STRIDE FILTERS); missing kerne
input 32x32x3
conv
relu
