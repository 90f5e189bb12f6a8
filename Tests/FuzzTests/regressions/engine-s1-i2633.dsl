# fuzz regression (dsl-fuzz --seed 1, input 2633): engine: engine: check accepted the network but the engine refused it: layer 'fc1': node 'fc1' (linear→4): softmax 'softmax1' must be the final node
# 
network a_b.c
input 8x8x6
softmax
fc 4 bias=off
gap
fc 9
softmax
