# fuzz regression (dsl-fuzz --seed 1, input 983): engine: engine: check accepted the network but the engine refused it: layer 'pyramid1.s2.u1.shortcut': node 'pyramid1.s2.u1.shortcut' (avgPool2x2/s2/p0/ceil): kernel 2 is larger than the padded input 1×8×4
input 2x15x8
conv 3 2 1 same relu
pyramid 0 2 bottleneck