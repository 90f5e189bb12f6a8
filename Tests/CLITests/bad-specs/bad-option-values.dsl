# values an option does not accept
# expect: 7:16: error: unknown activation 'softplus'; expected relu, leaky, linear, none, gelu, silu, swish, relu6, hardswish, hardsigmoid, sigmoid or tanh
# expect: 8:16: error: unknown padding 'banana'; expected same, valid or a number
# expect: 9:17: error: 'bias' takes on or off (or yes/no, true/false), not 'maybe'; write 'bias=on' or 'bias=off'
# expect: 10:15: error: 'bn' takes on or off (or yes/no, true/false), not '3'; write 'bn' or 'bn=on' to turn it on, 'bn=off' to turn it off
input 32x32x3
conv 3 1 8 act=softplus
conv 3 1 8 pad=banana
conv 3 1 8 bias=maybe
conv 3 1 8 bn=3
