# MobileNetV2: Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks"
# (CVPR 2018), Table 2, as torchvision builds it (torchvision.models.mobilenet_v2, width 1.0):
# each bottleneck expands to t x its input width with a 1x1 convolution, filters with a 3x3
# depthwise convolution (the stride of the row's first block), and projects linearly with a 1x1;
# batch norm after every convolution (so no bias), ReLU6 after the first two; a residual
# connection where stride and width stay. Table 2's rows (t, c, n, s) are the stage calls.
# torchvision (weights=None, 224x224): 3,504,872 parameters, 300,774,272 conv+linear MACs;
# dsl check gives the same (bash bench/torchvision-parity.sh).
# Training details: torchvision's dropout 0.2 before the classifier is written as `dropout 0.2`;
# MobileNetV2 has no stochastic depth.

network mobilenet-v2
input 224x224x3

block bottleneck(h, c, s) {   # expand to h, depthwise with stride s, project to c
  conv 1 1 h bn act=relu6
  dwconv 3 s bn act=relu6
  conv 1 1 c bn act=linear
}

block stage(cin, t, c, n, s) { # Table 2's row t, c, n, s on an input of cin channels
  bottleneck(t * cin, c, s)
  repeat n - 1 {
    add {
      bottleneck(t * c, c, 1)
    } {
    }
  }
}

conv 3 2 32 bn act=relu6      # 112x112x32
dwconv 3 1 bn act=relu6       # t = 1: no expansion
conv 1 1 16 bn act=linear     # 112x112x16
stage(16, 6, 24, 2, 2)        # 56x56x24
stage(24, 6, 32, 3, 2)        # 28x28x32
stage(32, 6, 64, 4, 2)        # 14x14x64
stage(64, 6, 96, 3, 1)        # 14x14x96
stage(96, 6, 160, 3, 2)       # 7x7x160
stage(160, 6, 320, 1, 1)      # 7x7x320
conv 1 1 1280 bn act=relu6    # 7x7x1280
gap
dropout 0.2
fc 1000
softmax
