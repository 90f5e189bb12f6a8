# MobileNetV3-Large: Howard et al., "Searching for MobileNetV3" (ICCV 2019), Table 1, as
# torchvision builds it (torchvision.models.mobilenet_v3_large, width 1.0): each bneck row is
# a 1x1 expansion (left out where the expansion equals the input width), a depthwise k x k
# convolution carrying the stride, squeeze-and-excitation where Table 1 marks SE, and a linear
# 1x1 projection; batch norm after every one of these convolutions (so no bias), ReLU (RE) or
# hard-swish (HS) after the first two; a residual connection where stride and width stay.
# Squeeze-and-excitation as torchvision's: global average pooling, a 1x1 convolution with bias
# to _make_divisible(expanded / 4, 8) channels (24, 32, 120, 168, 240), ReLU, a 1x1 convolution
# with bias back to the expanded width, hard-sigmoid, multiplied into the expanded map.
# torchvision (weights=None, 224x224): 5,483,032 parameters, 216,589,760 conv+linear MACs;
# dsl check gives the same (bash bench/torchvision-parity.sh).
# Training details: torchvision's dropout 0.2 between the two classifier layers is written as
# `dropout 0.2`; MobileNetV3 has no stochastic depth.

network mobilenet-v3-large
input 224x224x3

block se(s, e) {              # squeeze to s channels, excite the e channels
  mul {
  } {
    gap
    conv 1 1 s act=relu
    conv 1 1 e act=hardsigmoid
  }
}

block re(k, e, c, st) {       # bneck, ReLU, no SE: kernel k, expansion e, output c, stride st
  conv 1 1 e bn act=relu
  dwconv k st bn act=relu
  conv 1 1 c bn act=linear
}

block re_se(k, e, s, c, st) { # bneck, ReLU, SE squeezing to s
  conv 1 1 e bn act=relu
  dwconv k st bn act=relu
  se(s, e)
  conv 1 1 c bn act=linear
}

block hs(k, e, c, st) {       # bneck, hard-swish, no SE
  conv 1 1 e bn act=hardswish
  dwconv k st bn act=hardswish
  conv 1 1 c bn act=linear
}

block hs_se(k, e, s, c, st) { # bneck, hard-swish, SE squeezing to s
  conv 1 1 e bn act=hardswish
  dwconv k st bn act=hardswish
  se(s, e)
  conv 1 1 c bn act=linear
}

conv 3 2 16 bn act=hardswish  # 112x112x16
add {                         # bneck 3x3, exp 16, out 16, RE, s 1 (no expansion)
  dwconv 3 1 bn act=relu
  conv 1 1 16 bn act=linear
} {
}
re(3, 64, 24, 2)              # 56x56x24
add { re(3, 72, 24, 1) } { }
re_se(5, 72, 24, 40, 2)       # 28x28x40
add { re_se(5, 120, 32, 40, 1) } { }
add { re_se(5, 120, 32, 40, 1) } { }
hs(3, 240, 80, 2)             # 14x14x80
add { hs(3, 200, 80, 1) } { }
add { hs(3, 184, 80, 1) } { }
add { hs(3, 184, 80, 1) } { }
hs_se(3, 480, 120, 112, 1)    # 14x14x112
add { hs_se(3, 672, 168, 112, 1) } { }
hs_se(5, 672, 168, 160, 2)    # 7x7x160
add { hs_se(5, 960, 240, 160, 1) } { }
add { hs_se(5, 960, 240, 160, 1) } { }
conv 1 1 960 bn act=hardswish # 7x7x960
gap
fc 1280 act=hardswish
dropout 0.2
fc 1000
softmax
