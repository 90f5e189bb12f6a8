# fuzz regression (dsl-fuzz --seed 1, input 15489): engine: engine: check accepted the network but the engine refused it: layer 'l1.leaky': node 'l1.leaky' (leakyRelu(0.1)): softmax 'softmax1' must be the final node
network a_b.c
input 2x14x42  # 3×3, α = 48
softmax
l1: leaky
# TODO: widen
