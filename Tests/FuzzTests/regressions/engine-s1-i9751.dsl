# fuzz regression (dsl-fuzz --seed 1, input 9751): engine: engine: check accepted the network but the engine refused it: layer 'l1': node 'l1' (batchNorm): softmax 'softmax1' must be the final node
# a comment
network a_b.c
input 12x12x1
softmax
l1: bn
conv 3 1 * 3 16
