# fuzz regression (dsl-fuzz --seed 1, input 11861): engine: engine: check accepted the network but the engine refused it: layer 'avgpool1': node 'avgpool1' (avgPool5x5/s2/p2): softmax 'l1' must be the final node
input 12x12x1
pool 5 ceil
l1: softmax
pool avg 5 2 pad=2
fc 3
softmax
