# All-CNN-C: Springenberg et al., "Striving for Simplicity: The All
# Convolutional Net" (ICLR 2015 workshop), Table 1 (model C) and Table 2 (All-CNN-C):
# each max-pooling replaced by a 3x3 convolution with stride 2.
# CIFAR-10 input, ReLU after every convolution, 'same' padding except the head's 3x3;
# dropout 20% on the input and 50% after each pooling layer (or its replacement).

network all-cnn-c
input 32x32x3

dropout 0.2

# Stage 1
conv 3 1 96
conv 1 1 45            # reduce: 1x1 reduction 96 -> 45 before the 3x3 conv at line 14
conv 3 1 96
conv 1 1 45            # reduce: 1x1 reduction 96 -> 45 before the 3x3 conv at line 15
conv 3 2 96            # replaces the max-pooling
dropout 0.5

# Stage 2
conv 1 1 45             # reduce: 1x1 reduction 96 -> 45 before the 3x3 conv at line 19
conv 3 1 192
conv 1 1 91             # reduce: 1x1 reduction 192 -> 91 before the 3x3 conv at line 20
conv 3 1 192
conv 1 1 91             # reduce: 1x1 reduction 192 -> 91 before the 3x3 conv at line 21
conv 3 2 192            # replaces the max-pooling
dropout 0.5

# Head (Table 1 of the paper): 3x3 valid, two 1x1, global average pooling, softmax.
conv 1 1 91  # reduce: 1x1 reduction 192 -> 91 before the 3x3 conv at line 25
conv 3 1 192 pad=valid
conv 1 1 192
conv 1 1 10
gap
softmax
