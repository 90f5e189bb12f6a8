# unknown options, with and without a suggestion
# expect: 6:12: error: unknown option 'padd' for 'conv'; did you mean 'pad'?
# expect: 7:12: error: unknown option 'colour' for 'conv'; expected one of act, bias, bn, bn-eps, bn-momentum, bn-scale, dilation, freeze, gelu, groups
# expect: 8:6: error: unknown option 'inplace' for 'relu'; it takes no options
input 32x32x3
conv 3 1 8 padd=1
conv 3 1 8 colour=red
relu inplace=on
