# fuzz regression (dsl-fuzz --seed 1, input 3847): engine: engine: check accepted the network but the engine refused it: layer 'softmax2': node 'softmax2' (softmax): softmax 'softmax1' must be the final node
input 11x11x3
l1: dropout 0
softmax
softmax
x_y: conv 7 1 24

dropout 0.2
