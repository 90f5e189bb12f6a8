# issue 18 (airbench94): bad values of bn scale=/momentum=/eps=, scale, init=, whiten-eps=, freeze and train-epochs
# expect: 20:19: error: init=whiten needs 2·KH·KW·IC = 2·2·2·3 = 24 filters (one per eigenvector of the 2x2x3 patches and its negative
# expect: 21:1: error: 'scale' expects 1 argument (scale FACTOR); missing factor
# expect: 22:25: error: 'train-epochs' must be a whole number from 1 to 1000000 (the layer's parameters train in the first N epochs on
# expect: 23:19: error: 'freeze' must be weight, bias or all ('freeze' alone is all)
# expect: 24:4: error: too many arguments to 'bn': expected none (bn); 'scale' is an option and needs a value ('scale=off')
# expect: 25:12: error: 'bn-eps' sets the batch norm of the convolution, which has none; add 'bn'
# expect: 26:12: error: 'init' must be one of he, torch
# expect: 27:23: error: 'whiten-eps' only applies to 'init=whiten'
# expect: 28:12: error: init=dirac needs an ungrouped convolution (dwconv is grouped)
# expect: 29:25: error: 'train-epochs' must be a whole number from 1 to 1000000 (the layer's parameters train in the first N epochs on
# expect: 30:19: error: 'freeze' must be weight, bias or all ('freeze' alone is all); did you mean 'weight'?
# expect: 31:13: error: 'momentum' must be a number from 0 to 1 (PyTorch's momentum: the fraction of the batch statistic mixed into th
# expect: 31:19: error: 'eps' must be a number greater than 0 and at most 1 (added to the variance)
# expect: 32:24: error: 'bn-scale' takes on or off (or yes/no, true/false), not 'maybe'; write 'bn-scale=on' or 'bn-scale=off'
# expect: 33:17: error: 'init' must be one of he, torch, dirac, whiten
# expect: 34:9: error: too many arguments to 'scale': expected at most 1 (scale FACTOR)
# expect: 35:26: error: expected an option such as 'pad=valid' or 'bn', found '='
input 8x8x3
conv 2 1 16 valid init=whiten
scale
conv 3 1 8 train-epochs=0
conv 3 1 8 freeze=nonsense
bn scale momentum=0.4
conv 3 1 8 bn-eps=1e-3
fc 10 init=dirac
conv 3 1 8 init=torch whiten-eps=1e-3
dwconv 3 1 init=dirac
conv 3 1 8 train-epochs=-2
conv 3 1 8 freeze=weigth
bn momentum=2 eps=0
conv 3 1 8 bn bn-scale=maybe
conv 3 1 8 init=xavier
scale 1 2
conv 3 1 8 train - epochs=3
