# EfficientNet-B0: Tan and Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
# Networks" (ICML 2019), Table 1, as torchvision builds it (torchvision.models.efficientnet_b0):
# MBConv blocks of a 1x1 expansion to 6x the input width (none in MBConv1), a depthwise k x k
# convolution carrying the stride, squeeze-and-excitation, and a linear 1x1 projection; batch
# norm after every one of these convolutions (so no bias), SiLU (swish) after the first two; a
# residual connection where stride and width stay. Squeeze-and-excitation as torchvision's:
# global average pooling, a 1x1 convolution with bias to max(1, block input / 4) channels, SiLU,
# a 1x1 convolution with bias back to the expanded width, sigmoid, multiplied into the expanded
# map. Table 1's stages (operator, resolution, channels, layers) are the stage calls.
# torchvision (weights=None, 224x224): 5,288,548 parameters, 385,814,752 conv+linear MACs;
# dsl check gives the same (bash bench/torchvision-parity.sh).
# Training details: torchvision's dropout 0.2 before the classifier is written as
# `dropout 0.2`. Stochastic depth (torchvision drops each residual branch with a probability
# rising linearly to 0.2; the paper's "drop connect") changes neither parameters nor MACs and
# is not expressed: this spec trains without it, and it is the identity at inference.

network efficientnet-b0
input 224x224x3

block se(s, e) {              # squeeze to s channels, excite the e channels
  mul {
  } {
    gap
    conv 1 1 s act=silu
    conv 1 1 e act=sigmoid
  }
}

block mbconv6(cin, k, st, c) {  # MBConv6, k x k, on cin channels, stride st, output c
  conv 1 1 6 * cin bn act=silu
  dwconv k st bn act=silu
  se(cin / 4, 6 * cin)
  conv 1 1 c bn act=linear
}

block stage(cin, k, st, c, n) { # n MBConv6 blocks; the first has the stride and the new width
  mbconv6(cin, k, st, c)
  repeat n - 1 {
    add {
      mbconv6(c, k, 1, c)
    } {
    }
  }
}

conv 3 2 32 bn act=silu       # stage 1, Conv3x3: 112x112x32
dwconv 3 1 bn act=silu        # stage 2, MBConv1 3x3: 112x112x16
se(8, 32)
conv 1 1 16 bn act=linear
stage(16, 3, 2, 24, 2)        # stage 3, MBConv6 3x3: 56x56x24
stage(24, 5, 2, 40, 2)        # stage 4, MBConv6 5x5: 28x28x40
stage(40, 3, 2, 80, 3)        # stage 5, MBConv6 3x3: 14x14x80
stage(80, 5, 1, 112, 3)       # stage 6, MBConv6 5x5: 14x14x112
stage(112, 5, 2, 192, 4)      # stage 7, MBConv6 5x5: 7x7x192
stage(192, 3, 1, 320, 1)      # stage 8, MBConv6 3x3: 7x7x320
conv 1 1 1280 bn act=silu     # stage 9, Conv1x1 & Pooling & FC
gap
dropout 0.2
fc 1000
softmax
