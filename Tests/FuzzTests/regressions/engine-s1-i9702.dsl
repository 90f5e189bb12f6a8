# fuzz regression (dsl-fuzz --seed 1, input 9702): engine: engine: check accepted the network but the engine refused it: layer 'dropout1': node 'dropout1' (dropout(0.999999)): softmax 'l1' must be the final node
input 8x8x3

block b1(c, k, n) {
}
conv 5 3 8 valid
l1: softmax
dropout 0.999999
pool max 2 1
b1(4, 1, 0)
