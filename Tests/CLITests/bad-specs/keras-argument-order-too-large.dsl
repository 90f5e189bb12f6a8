# a kernel larger than its input, written in Keras order: the error says so
# expect: 4:1: error: kernel 32 is larger than its input 8x8; dsl writes conv KERNEL STRIDE FILTERS (Keras writes the filters first): did you mean 'conv 3 1 32'?
input 8x8x3
conv 32 3 1 pad=valid
