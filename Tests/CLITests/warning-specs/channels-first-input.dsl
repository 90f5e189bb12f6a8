# PyTorch writes images C x H x W; dsl reads H x W x C
# expect: 3:1: warning: input 3x32x32 looks channels-first (C x H x W, as PyTorch writes it); dsl reads height x width x channels: did you mean 'input 32x32x3'?
input 3x32x32
conv 3 1 8
gap
fc 10
softmax
