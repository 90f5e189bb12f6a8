# fuzz regression (dsl-fuzz --seed 1, input 10824): engine: engine: check accepted the network but the engine refused it: layer 'pyramid1.s1.u1.bn': node 'pyramid1.s1.u1.bn' (batchNorm): softmax 'softmax1' must be the final node
network net
input 12x12x2
conv 4 2 17 bn
softmax
pyramid 6 1 bottleneck
gap
fc 11
softmax
