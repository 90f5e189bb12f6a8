# fuzz regression (dsl-fuzz --seed 1, input 96): engine: engine: check accepted the network but the engine refused it: layer 'maxpool1': node 'maxpool1' (maxPool1x1/s1/p0/ceil): softmax 'softmax1' must be the final node
input 6x6x3
add {
} {
}
dropout 0.2
l1: pool max ceil
conv 3 (0 + 1) 16
softmax
pool 1 ceil
pool ceil
bn
gap
fc 10
softmax
# 
