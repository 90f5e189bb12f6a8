# ResNet-18: He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), Table 1,
# as torchvision builds it (torchvision.models.resnet18): basic blocks of two 3x3 convolutions
# with batch norm, an identity shortcut, or a 1x1 stride-2 projection with batch norm where the
# width doubles. Convolutions followed by batch norm have no bias.
# torchvision (weights=None, 224x224): 11,689,512 parameters, 1,814,073,344 conv+linear MACs;
# dsl check gives the same (bash bench/torchvision-parity.sh).
# Training details: torchvision's ResNet has no dropout and no stochastic depth.

network resnet-18
input 224x224x3

block basic(c) {
  add {
    conv 3 1 c bn
    conv 3 1 c bn act=linear
  } {
  }
  relu
}

block down(c) {               # first block of a stage: stride 2, the width doubles
  add {
    conv 3 2 c bn
    conv 3 1 c bn act=linear
  } {
    conv 1 2 c bn act=linear
  }
  relu
}

conv 7 2 64 bn                # conv1: 112x112x64
pool max 3 2 pad=1            # 56x56x64
basic(64)                     # conv2_x
basic(64)
down(128)                     # conv3_x: 28x28x128
basic(128)
down(256)                     # conv4_x: 14x14x256
basic(256)
down(512)                     # conv5_x: 7x7x512
basic(512)
gap
fc 1000
softmax
