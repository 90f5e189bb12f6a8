# a network with an input but no layers
# expect: 4:1: error: the network has no layers
network empty
input 32x32x3
