# fuzz regression (dsl-fuzz --seed 1, input 48): engine: engine: check accepted the network but the engine refused it: layer 'fc1': node 'fc1' (linear→12+bias): softmax 'softmax1' must be the final node
input 4x4x6
softmax
fc 12
softmax
