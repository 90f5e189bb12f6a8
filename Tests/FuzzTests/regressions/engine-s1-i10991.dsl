# fuzz regression (dsl-fuzz --seed 1, input 10991): engine: engine: check accepted the network but the engine refused it: layer 'conv1': node 'conv1' (conv5x5/s1/p2→32): softmax 'l1' must be the final node
input 4x9x2
fc 3

l1: softmax
conv 5 1 32 bn linear
pool max
