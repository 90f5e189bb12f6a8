# fuzz regression (dsl-fuzz --seed 1, input 2307): engine: engine: check accepted the network but the engine refused it: layer 'gap1': node 'gap1' (globalAvgPool): softmax 'softmax1' must be the final node
input 3x3x2
block b1(c) {
}
bn
softmax
gap
fc 8
softmax
