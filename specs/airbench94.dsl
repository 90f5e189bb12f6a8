# airbench94: Keller Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU" (2024),
# github.com/KellerJordan/cifar10-airbench, legacy/airbench94.py (make_net, ConvGroup,
# BatchNorm, Conv, init_whitening_conv), layer for layer:
# - a 2x2 valid convolution 3 -> 24 whose weights are the patch-whitening filter bank of the
#   training images (eigenvectors of the 2x2x3 patch covariance over sqrt(eigenvalue + 5e-4),
#   and their negatives), never trained; its bias (starting at 0) trains in epochs 0-2 only;
# - three groups of conv 3x3 (no bias, Dirac init of the first IC filters, PyTorch's default
#   for the rest) -> max-pool 2 -> batch norm -> GELU -> conv 3x3 -> batch norm -> GELU,
#   widths 64, 256, 256; batch norms with eps 1e-12, momentum 0.4 in PyTorch's convention
#   (airbench's batchnorm_momentum 0.6 is 1 - 0.4), the scale fixed at 1 (not a parameter
#   here), the shift trained;
# - max-pool 3, a linear layer 256 -> 10 without bias (PyTorch's default init), the logits
#   multiplied by 1/9.
# dsl check: 1,971,640 parameters, 288 of them (the whitening weights) frozen. PyTorch counts
# 1,972,792 for make_net(): the same plus the 1,152 batch-norm weights airbench keeps at 1
# with requires_grad False. The 2x2 max-pools drop the last row and column of the odd maps
# (31 -> 15, 15 -> 7, 7 -> 3), as nn.MaxPool2d(2) does: 'floor' says so.

network airbench94
input 32x32x3

block group(w) {
  conv1: conv 3 1 w nobias act=none init=dirac
  pool max 2 2 floor
  norm1: bn scale=off momentum=0.4 eps=1e-12
  gelu
  conv2: conv 3 1 w nobias act=none init=dirac
  norm2: bn scale=off momentum=0.4 eps=1e-12
  gelu
}

whiten: conv 2 1 24 valid act=gelu init=whiten freeze=weight train-epochs=3
block1: group(64)
block2: group(256)
block3: group(256)
pool max 3 3
fc 10 nobias init=torch
scale 1/9
softmax
