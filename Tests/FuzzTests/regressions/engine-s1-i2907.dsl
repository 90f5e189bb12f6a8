# fuzz regression (dsl-fuzz --seed 1, input 2907): engine: engine: check accepted the network but the engine refused it: layer 'fc1': node 'fc1' (linear→3): softmax 'l1' must be the final node
# conv 3 1 8 { } # not code
input 1x1x8
l1: softmax
fc 1 * 3 nobias
pool 1 2
fc 7
softmax
