# VGG-16: Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
# Recognition" (ICLR 2015), Table 1, configuration D, as torchvision builds it
# (torchvision.models.vgg16, without batch norm): thirteen 3x3 convolutions with bias and ReLU,
# five 2x2 max-poolings, adaptive average pooling to 7x7 (the identity at 224x224), and three
# fully connected layers.
# torchvision (weights=None, 224x224): 138,357,544 parameters, 15,470,264,320 conv+linear MACs;
# dsl check gives the same (bash bench/torchvision-parity.sh).
# Training details: the dropout 0.5 after the first two fully connected layers is written as in
# torchvision's classifier; VGG has no stochastic depth.

network vgg-16
input 224x224x3

block stage(c, n) {
  repeat n {
    conv 3 1 c
  }
  pool max 2
}

stage(64, 2)                  # 112x112x64
stage(128, 2)                 # 56x56x128
stage(256, 3)                 # 28x28x256
stage(512, 3)                 # 14x14x512
stage(512, 3)                 # 7x7x512
pool avg to 7x7
fc 4096 act=relu
dropout 0.5
fc 4096 act=relu
dropout 0.5
fc 1000
softmax
