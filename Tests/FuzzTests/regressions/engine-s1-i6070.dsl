# fuzz regression (dsl-fuzz --seed 1, input 6070): engine: engine: check accepted the network but the engine refused it: layer 'l1.s2.u1.shortcut': node 'l1.s2.u1.shortcut' (avgPool2x2/s2/p0/ceil): kernel 2 is larger than the padded input 1×1×2
input 1x1x1
l1: pyramid 2 2
conv 1 1 3
gap
softmax
