# fuzz regression (dsl-fuzz --seed 1, input 2196): engine: engine: check accepted the network but the engine refused it: layer 'conv1': node 'conv1' (conv3x3/s1/p1→8+bias): softmax 'softmax1' must be the final node
input 7x7x37
dropout 0.2
softmax
conv 3 1 8 act=leaky slope=1