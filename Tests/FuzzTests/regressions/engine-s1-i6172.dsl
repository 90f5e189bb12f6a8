# fuzz regression (dsl-fuzz --seed 1, input 6172): engine: engine: check accepted the network but the engine refused it: layer 'fc1': node 'fc1' (linear→4+bias): softmax 'softmax1' must be the final node
# conv 3 1 8 { } # not code
input 7x7x1
softmax
fc 4
softmax
