# ResNet-18: He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), Table 1,
# as torchvision builds it (resnet18): basic blocks of two 3x3 convolutions with batch norm,
# an identity shortcut, or a 1x1 stride-2 projection with batch norm where the width doubles.
# Keras counts 11,689,512 trainable and 9,600 non-trainable parameters (the running statistics).

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

block down(c) {
  add {
    conv 3 2 c bn
    conv 3 1 c bn act=linear
  } {
    conv 1 2 c bn act=linear
  }
  relu
}

conv 7 2 64 bn                # 112x112x64
pool max 3 2 pad=1            # 56x56x64
basic(64)
basic(64)
down(128)                     # 28x28x128
basic(128)
down(256)                     # 14x14x256
basic(256)
down(512)                     # 7x7x512
basic(512)
gap
fc 1000
softmax
