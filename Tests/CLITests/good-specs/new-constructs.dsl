# Issue #13's constructs in one network: a MobileNetV3-style stem and inverted residual with
# squeeze-and-excitation, an Inception-v3 factorised 7x7, a dilated and a grouped convolution,
# and torchvision's adaptive-pooling head.
network new-constructs
input 64x64x3

conv 3 2 16 bn act=hardswish
block ir(e, c, k, s) {
  conv 1 1 e bn hardswish
  dwconv k s bn hardswish
  mul {} { gap ; conv 1 1 8 act=relu ; conv 1 1 e act=hardsigmoid }
  conv 1 1 c bn act=linear
}
res: add { ir(64, 16, 3, 1) } {}
ir(72, 24, 5, 2)
conv 1x7 1 32 bn
conv 7x1 1 32 bn
conv 3 1 32 dilation=2 bn
conv 3 1 64 groups=4 bn act=silu
pad: conv 3 2 64 pad=0x0x1x1 act=gelu
pool avg to 3x3
fc 10
softmax
