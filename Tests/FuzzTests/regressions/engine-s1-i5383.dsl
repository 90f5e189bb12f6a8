# fuzz regression (dsl-fuzz --seed 1, input 5383): engine: engine: check accepted the network but the engine refused it: layer 'maxpool1': node 'maxpool1' (maxPool3x3/s2/p1): softmax 'softmax1' must be the final node
network net
input 2x2x3
add zeropad {
  conv 3 1 1 * 8
  conv 1 1 (16 + 1)
} {
}
conv 2 1 1
softmax
pool
dropout 0