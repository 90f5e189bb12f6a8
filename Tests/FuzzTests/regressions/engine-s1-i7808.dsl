# fuzz regression (dsl-fuzz --seed 1, input 7808): engine: engine: check accepted the network but the engine refused it: layer 'softmax2': node 'softmax2' (softmax): softmax 'softmax1' must be the final node
# a comment
input 6x6x40
softmax
softmax
conv 1 1 12
gap
softmax