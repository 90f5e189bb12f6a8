# fuzz regression (dsl-fuzz --seed 1, input 6000): engine: engine: check accepted the network but the engine refused it: layer 'dropout1': node 'dropout1' (dropout(0.5)): softmax 'softmax1' must be the final node
network a_b.c
input 22x22x3
conv 5 1 50 bn act=linear
softmax
dropout 0.5
bn
conv 1 1 1
gap
softmax
