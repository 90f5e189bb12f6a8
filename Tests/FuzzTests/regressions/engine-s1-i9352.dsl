# fuzz regression (dsl-fuzz --seed 1, input 9352): engine: engine: check accepted the network but the engine refused it: layer 'maxpool2': node 'maxpool2' (maxPool4x4/s4/p0/ceil): kernel 4 is larger than the padded input 2×2×7
network x
input 7x7x7  # TODO: widen
pool max 2 3  # conv 3 1 8 { } # not code
pool 8 / 2 ceil  # 
conv 1 2 24 bn=on
conv 1 1 7
gap
softmax
