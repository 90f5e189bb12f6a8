# torchvision's VGG head pools to 7x7 whatever the input: on a smaller map its bins repeat pixels
# expect: 4:1: warning: adaptive pooling to 8x8 is larger than its 7x7 input: its bins repeat input pixels (as PyTorch's AdaptiveAvgPool2d)
input 7x7x8
pool avg to 8x8
gap
fc 10
softmax
