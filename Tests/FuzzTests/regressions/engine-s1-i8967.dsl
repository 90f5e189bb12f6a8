# fuzz regression (dsl-fuzz --seed 1, input 8967): engine: engine: check accepted the network but the engine refused it: layer 'l1': node 'l1' (conv5x5/s1/p0→8+bias): softmax 'softmax1' must be the final node
# 
input 8x8x4
add {
} {
}
softmax
l1: conv 5 1 * 1 8 pad=valid