# fuzz regression (dsl-fuzz --seed 1, input 2407): engine: engine: check accepted the network but the engine refused it: layer 'maxpool1': node 'maxpool1' (maxPool5x5/s5/p0/ceil): kernel 5 is larger than the padded input 4×4×4
input 4x4x4
l1: pool avg 1
pool max 5 ceil
gap
fc 12
softmax
