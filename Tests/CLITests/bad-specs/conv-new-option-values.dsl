# groups, dilation, sizes and padding forms of conv and dwconv with bad values
# expect: 16:12: error: groups=3 does not divide the 8 filters (groups must divide the input channels and the filt
# expect: 17:19: error: 'groups' must be a whole number from 1 to 1048576 (input channels and filters are split in
# expect: 18:21: error: 'dilation' must be a whole number from 1 to 1024, or HEIGHTxWIDTH (1 is a dense kernel)
# expect: 19:21: error: 'dilation' must be a whole number from 1 to 1024, or HEIGHTxWIDTH (1 is a dense kernel)
# expect: 20:6: error: kernel size '3x3x3' has 3 numbers; write one number or HEIGHTxWIDTH
# expect: 21:8: error: stride must be from 1 to 1024 on each axis, got 0 in '0x1'
# expect: 22:6: error: kernel size must be from 1 to 1024 on each axis, got 1025 in '1x1025'
# expect: 23:14: error: 'same' padding needs an odd kernel size (got 2x3); give pad=N explicitly
# expect: 24:16: error: padding must be same, valid or a whole number from 0 to 1024 (or PHxPW, rows x columns, or
# expect: 25:12: error: unknown option 'groups' for 'dwconv'; expected one of act, bias, bn, bn-eps, bn-momentum, bn-scale, dilation, freeze, gelu
# expect: 26:12: error: channel multiplier must be from 1 to 1024, got 0
# expect: 27:8: error: 'dwconv' expects at least 2 arguments (dwconv KERNEL STRIDE [MULTIPLIER]); missing stride
# expect: 28:16: error: unknown activation 'gleu'; did you mean 'gelu'? (expected relu, leaky, linear, none, gelu,
input 8x8x6
conv 3 1 8 groups=3
conv 3 1 8 groups=0
conv 3 1 8 dilation=0
conv 3 1 8 dilation=2x2x2
conv 3x3x3 1 8
conv 3 0x1 8
conv 1x1025 1 8
conv 2x3 1 8 pad=same
conv 3 1 8 pad=1x2x3
dwconv 3 1 groups=2
dwconv 3 1 0
dwconv 3
conv 3 1 8 act=gleu
