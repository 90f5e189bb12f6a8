# fuzz regression (dsl-fuzz --seed 1, input 8105): engine: engine: check accepted the network but the engine refused it: layer 'relu1.relu': node 'relu1.relu' (relu): softmax 'l1' must be the final node
network x
input 10x11x1

l1: softmax

relu