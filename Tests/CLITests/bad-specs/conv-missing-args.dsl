# conv needs kernel, stride and filters
# expect: 4:8: error: 'conv' expects 3 arguments (conv KERNEL STRIDE FILTERS); missing filte
input 32x32x3
conv 3 1
