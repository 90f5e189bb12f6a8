# fuzz regression (dsl-fuzz --seed 1, input 5428): engine: engine: check accepted the network but the engine refused it: layer 'leaky2.leaky': node 'leaky2.leaky' (leakyRelu(0.1)): softmax 'l1' must be the final node
# a comment
input 10x6x6
pool avg 5 6 / 2
relu
bn
leaky
l1: softmax
leaky
conv 1 2 16 pad=(-(-0)) act=none
gap
fc 1
softmax
# 
