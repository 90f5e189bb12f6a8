# A small all-convolutional network for the quick start (README, "Quick start"): 8 epochs on
# the CIFAR-10 sample in data/cifar10-sample take about 4 s on 2 quiet cores (release build)
# and reach about 36 % test accuracy. Batch norm after every convolution,
# strided convolutions instead of pooling (the All-CNN idea), global average pooling head.

network quickstart
input 32x32x3

conv 3 1 32 bn
conv 3 2 64 bn          # 16x16
conv 3 1 64 bn
conv 3 2 128 bn         # 8x8
conv 3 1 128 bn
gap
fc 10
softmax
