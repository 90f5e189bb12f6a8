# fuzz regression (dsl-fuzz --seed 1, input 18031): engine: engine: check accepted the network but the engine refused it: layer 'l1': node 'l1' (conv1x1/s3/p0→32): softmax 'softmax1' must be the final node
# 3×3, α = 48
input 4x4x3
bn
softmax
l1: conv 1 3 32 bn
bn
fc 12
softmax
