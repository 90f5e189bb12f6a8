# DenseNet-121: Huang et al., "Densely Connected Convolutional Networks" (CVPR 2017), Table 1
# (DenseNet-BC: growth rate k = 32, bottleneck 1x1 convolutions of 4k, compression 0.5), as
# torchvision builds it (torchvision.models.densenet121): each dense layer is batch norm, ReLU,
# 1x1 convolution to 128, batch norm, ReLU, 3x3 convolution to 32, concatenated after its input;
# transitions are batch norm, ReLU, a 1x1 convolution halving the channels and 2x2 average
# pooling. No convolution has a bias. 121 = 1 + 2 x (6 + 12 + 24 + 16) + 3 + 1 weighted layers.
# torchvision (weights=None, 224x224): 7,978,856 parameters, 2,834,161,664 conv+linear MACs;
# dsl check gives the same (bash bench/torchvision-parity.sh).
# Training details: torchvision's densenet121 has drop_rate 0 (no dropout) and no stochastic depth.

network densenet-121
input 224x224x3

block dense(n) {
  repeat n {
    concat {
    } {
      bn
      relu
      conv 1 1 128 bn nobias
      conv 3 1 32 nobias act=none
    }
  }
}

block transition(c) {
  bn
  relu
  conv 1 1 c nobias act=none
  pool avg 2 2
}

conv 7 2 64 bn                # 112x112x64
pool max 3 2 pad=1            # 56x56x64
dense(6)                      # 56x56x256
transition(128)               # 28x28x128
dense(12)                     # 28x28x512
transition(256)               # 14x14x256
dense(24)                     # 14x14x1024
transition(512)               # 7x7x512
dense(16)                     # 7x7x1024
bn
relu
gap
fc 1000
softmax
