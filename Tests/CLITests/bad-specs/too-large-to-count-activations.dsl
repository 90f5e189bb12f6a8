# activations summed over layers beyond 2^36 elements per image
# expect: 5:1: error: the network is too large to count: it needs more than 68719476736 activation elements
input 65536x65536x8
relu
bn
