# fuzz regression (dsl-fuzz --seed 1, input 10320): engine: engine: check accepted the network but the engine refused it: layer 'l1': node 'l1' (add): softmax 'softmax1' must be the final node
# 
network x
input 10x10x1
softmax
l1: add {
} {
} {
} {
}  # end
# TODO: widen
