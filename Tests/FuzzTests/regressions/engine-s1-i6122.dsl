# fuzz regression (dsl-fuzz --seed 1, input 6122): engine: engine: check accepted the network but the engine refused it: layer 'maxpool1': node 'maxpool1' (maxPool1x1/s1/p0): softmax 'l1' must be the final node
network fuzz-1
input 40x12x4
bn
conv 3 3 24 pad=4 / 2 bn
gap
l1: softmax
pool max 1
