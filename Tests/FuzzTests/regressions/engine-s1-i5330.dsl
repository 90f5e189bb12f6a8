# fuzz regression (dsl-fuzz --seed 1, input 5330): engine: engine: check accepted the network but the engine refused it: layer 'avgpool1': node 'avgpool1' (avgPool3x3/s3/p0): softmax 'softmax1' must be the final node
input 10x10x8  # a comment
pool max 4 ceil
dropout 0

softmax
pool avg 3 1 * 3
