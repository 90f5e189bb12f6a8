# ResNeXt-50 (32x4d): Xie et al., "Aggregated Residual Transformations for Deep Neural Networks"
# (CVPR 2017), Table 1, as torchvision builds it (torchvision.models.resnext50_32x4d): ResNet-50's
# bottleneck blocks with the 3x3 convolution grouped (cardinality 32, 4 channels per group in
# conv2, so twice ResNet-50's inner width: 128, 256, 512, 1024) and carrying the stage's stride;
# the block's output is 256, 512, 1024, 2048 channels; batch norm after every convolution, no
# bias; the first block of every stage has a 1x1 projection shortcut with batch norm.
# torchvision (weights=None, 224x224): 25,028,904 parameters, 4,230,479,872 conv+linear MACs;
# dsl check gives the same (bash bench/torchvision-parity.sh).
# Training details: torchvision's ResNeXt has no dropout and no stochastic depth.

network resnext-50-32x4d
input 224x224x3

block bottleneck(w, c, s) {   # grouped width w, output c, stride s
  conv 1 1 w bn
  conv 3 s w bn groups=32
  conv 1 1 c bn act=linear
}

block stage(w, c, n, s) {     # n blocks; the first projects the shortcut
  add {
    bottleneck(w, c, s)
  } {
    conv 1 s c bn act=linear
  }
  relu
  repeat n - 1 {
    add {
      bottleneck(w, c, 1)
    } {
    }
    relu
  }
}

conv 7 2 64 bn                # conv1: 112x112x64
pool max 3 2 pad=1            # 56x56x64
stage(128, 256, 3, 1)         # conv2: 56x56x256
stage(256, 512, 4, 2)         # conv3: 28x28x512
stage(512, 1024, 6, 2)        # conv4: 14x14x1024
stage(1024, 2048, 3, 2)       # conv5: 7x7x2048
gap
fc 1000
softmax
