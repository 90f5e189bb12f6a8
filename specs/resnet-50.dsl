# ResNet-50: He et al., "Deep Residual Learning for Image Recognition" (CVPR 2016), Table 1,
# as torchvision builds it (torchvision.models.resnet50, "ResNet v1.5"): bottleneck blocks of a
# 1x1 reduction, a 3x3 convolution (which carries the stage's stride 2, unlike the paper's 1x1)
# and a 1x1 expansion to 4x the width, each with batch norm and no bias; the first block of every
# stage has a 1x1 projection shortcut with batch norm (stride 1 in conv2_x, which only widens).
# torchvision (weights=None, 224x224): 25,557,032 parameters, 4,089,184,256 conv+linear MACs;
# dsl check gives the same (bash bench/torchvision-parity.sh).
# Training details: torchvision's ResNet has no dropout and no stochastic depth.

network resnet-50
input 224x224x3

block bottleneck(w, s) {      # w: the 3x3's width; output 4w
  conv 1 1 w bn
  conv 3 s w bn
  conv 1 1 4 * w bn act=linear
}

block stage(w, n, s) {        # n blocks; the first projects the shortcut
  add {
    bottleneck(w, s)
  } {
    conv 1 s 4 * w bn act=linear
  }
  relu
  repeat n - 1 {
    add {
      bottleneck(w, 1)
    } {
    }
    relu
  }
}

conv 7 2 64 bn                # conv1: 112x112x64
pool max 3 2 pad=1            # 56x56x64
stage(64, 3, 1)               # conv2_x: 56x56x256
stage(128, 4, 2)              # conv3_x: 28x28x512
stage(256, 6, 2)              # conv4_x: 14x14x1024
stage(512, 3, 2)              # conv5_x: 7x7x2048
gap
fc 1000
softmax
