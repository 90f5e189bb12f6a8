# other frameworks' names and near misses of option names and values get a suggestion
# expect: 13:12: error: too many arguments to 'conv': expected at most 3 (conv KERNEL STRIDE FILTERS); did you mean the option 'valid'?
# expect: 14:12: error: unknown option 'padding' for 'conv'; did you mean 'pad'?
# expect: 15:12: error: unknown option 'activation' for 'conv'; did you mean 'act'?
# expect: 16:16: error: unknown padding 'vaild'; did you mean 'valid'? (expected same, valid or a number
# expect: 16:26: error: unknown activation 'rleu'; did you mean 'relu'? (expected relu, leaky, linear, none, gelu
# expect: 18:12: error: unknown name 'widht'; did you mean 'width'? (block parameters here: width)
# expect: 21:1: error: unknown layer 'maxpool'; did you mean 'pool max 2'?
# expect: 23:1: error: unknown block 'MaxPool2d'; did you mean the layer 'pool max' (arguments without parentheses or commas)?
# expect: 24:6: error: unknown pooling 'mx'; did you mean 'max'? (pool max|avg [WINDOW [STRIDE]])
# expect: 25:12: error: 'bias' takes on or off (or yes/no, true/false), not 'of'; did you mean 'bias=off'?
input 32x32x3
conv 3 1 8 valud
conv 3 1 8 padding=1
conv 3 1 8 activation=relu
conv 3 1 8 pad=vaild act=rleu
block b(width) {
  conv 3 1 widht
}
b(8)
maxpool 2
conv 3 1 8 bn=yes
MaxPool2d(2)
pool mx 2
fc 10 bias=of
