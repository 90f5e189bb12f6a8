# syntax and semantic errors together
# expect: 8:1: error: duplicate 'network' declaration
# expect: 10:8: error: 'conv' expects 3 arguments (conv KERNEL STRIDE FILTERS); missing filte
# expect: 11:1: error: unknown layer 'softmx'; did you mean 'softmax'?
# expect: 13:12: error: division by zero
# expect: 16:27: error: 'bias' takes on or off (or yes/no, true/false), not 'sometimes'
network a
network b
input 32x32x3
conv 3 1
softmx
block f(c) {
  conv 3 1 c/0
}
f(8)
conv 3 1 8 pad=valid bias=sometimes
