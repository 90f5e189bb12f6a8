# fuzz regression (dsl-fuzz --seed 1, input 19368): trap: the process died: at Sources/DSLIR/Costs.swift:94 runtime failure: arithmetic overflow 
# PyramidNet-110 (additive, alpha = 48): Han et al., "Deep Pyramidal Residual Networks"
# (CVPR 2017), Table 4, as in the authors' PyTorch implementation: 3 stages of 18 basic units
# ((110 - 2) / 6), the width growing by 48 / 54 per unit, rounded half to even per unit.
# Unit: BN, conv 3x3, BN, ReLU, conv 3x3, BN, plus a zero-padded identity shortcut
# (2x2 average pooling where the stage starts with stride 2). Convolutions have no bias.

network pyramidnet-110-a48
input 32x32x3

conv 3 1 16 bn act=linear     # first convolution + BN
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
pyramid 48 18
bn
relu
gap                           # the 8x8 average pooling
fc 10
softmax
