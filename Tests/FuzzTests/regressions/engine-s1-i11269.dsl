# fuzz regression (dsl-fuzz --seed 1, input 11269): engine: engine: check accepted the network but the engine refused it: layer 'l2': node 'l2' (maxPool3x3/s1/p0/ceil): softmax 'l1' must be the final node
network fuzz-1
input 27x27x6
block b1(c, k) {
}

l1: softmax
l2: pool 3 1 pad=0 ceil
leaky
dropout 0.2
gap
fc 12
softmax
