# GoogLeNet: Szegedy et al., "Going Deeper with Convolutions" (CVPR 2015), Table 1.
# 224x224x3 input; every convolution (inside inception modules too) has a bias and a ReLU.
# Inception columns: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
# Max-pooling 3x3 stride 2 rounds up (Caffe), so 112 -> 56 -> 28 -> 14 -> 7.
# The local response normalisation layers of the original are omitted (no parameters, no MACs).

network googlenet
input 224x224x3

conv 7 2 64                   # 112x112x64
pool max 3 2 ceil             # 56x56x64
conv 1 1 64
conv 3 1 192                  # 56x56x192
pool max 3 2 ceil             # 28x28x192

3a: inception<64, 96, 128, 16, 32, 32>
3b: inception<128, 128, 192, 32, 96, 64>
pool max 3 2 ceil             # 14x14x480

4a: inception<192, 96, 208, 16, 48, 64>
4b: inception<160, 112, 224, 24, 64, 64>
4c: inception<128, 128, 256, 24, 64, 64>
4d: inception<112, 144, 288, 32, 64, 64>
4e: inception<256, 160, 320, 32, 128, 128>
pool max 3 2 ceil             # 7x7x832

5a: inception<256, 160, 320, 32, 128, 128>
5b: inception<384, 192, 384, 48, 128, 128>

pool avg 7 1                  # 1x1x1024
dropout 0.4
fc 1000
softmax
