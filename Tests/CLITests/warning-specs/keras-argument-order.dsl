# Keras writes Conv2D(filters, kernel, stride): conv 32 3 1 here is a 32x32 kernel with 1 filter
# expect: 4:1: warning: 'conv 32 3 1' is a 32x32 kernel with 1 filter; dsl writes conv KERNEL STRIDE FILTERS (Keras writes the filters first): did you mean 'conv 3 1 32'?
input 64x64x3
conv 32 3 1
gap
fc 10
softmax
