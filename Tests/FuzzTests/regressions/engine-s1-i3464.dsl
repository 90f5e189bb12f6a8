# fuzz regression (dsl-fuzz --seed 1, input 3464): engine: engine: check accepted the network but the engine refused it: layer 'gap1': node 'gap1' (globalAvgPool): softmax 'softmax1' must be the final node
network a_b.c
input 7x7x7
softmax
gap
fc 5
softmax