# a size HEIGHTxWIDTH is taken only where a layer takes one (conv's kernel and stride, pad=, dilation=, pool avg to)
# expect: 4:9: error: unexpected size '3x3' here; write a single number
input 32x32x3
dropout 3x3
