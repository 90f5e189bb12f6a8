# PyramidNet-164 (additive, alpha = 48, bottleneck): Han et al., "Deep Pyramidal Residual
# Networks" (CVPR 2017), Table 4, as in the authors' PyTorch implementation: 3 stages of 18
# bottleneck units ((164 - 2) / 9); each unit BN, 1x1, BN, ReLU, 3x3, BN, ReLU, 1x1 (4x the
# unit's width), BN, plus a zero-padded identity (or 2x2 average-pooled) shortcut.

network pyramidnet-164-a48-bottleneck
input 32x32x3

conv 3 1 16 bn act=linear     # first convolution + BN
pyramid 48 18 bottleneck
bn
relu
gap                           # the 8x8 average pooling
fc 10
softmax
