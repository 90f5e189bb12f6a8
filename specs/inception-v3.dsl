# Inception-v3: Szegedy et al., "Rethinking the Inception Architecture for Computer Vision"
# (CVPR 2016), Table 1 and Figures 5-7 and 10, as torchvision builds it
# (torchvision.models.inception_v3 with aux_logits=False: without the auxiliary classifier,
# which only serves training): 299x299 input; every convolution has batch norm, a ReLU and no
# bias (torchvision's BasicConv2d); factorised 1x7 / 7x1 and 1x3 / 3x1 convolutions padded to
# keep the size; the pooling branch of modules A, C and E is 3x3 average pooling, stride 1,
# padding 1 (the zeros counted, as PyTorch); the grid reductions B and D use 3x3 max pooling,
# stride 2, rounded down. Labels are torchvision's module names.
# torchvision (weights=None, aux_logits=False, 299x299): 23,834,568 parameters,
# 5,713,216,096 conv+linear MACs; dsl check gives the same (bash bench/torchvision-parity.sh).
# Training details: torchvision's dropout 0.5 before the classifier is written as
# `dropout 0.5`; Inception-v3 has no stochastic depth (label smoothing is a loss setting).

network inception-v3
input 299x299x3

block inception_a(p) {        # Figure 5: 35x35, pool projection p
  concat {
    conv 1 1 64 bn
  } {
    conv 1 1 48 bn
    conv 5 1 64 bn
  } {
    conv 1 1 64 bn
    conv 3 1 96 bn
    conv 3 1 96 bn
  } {
    pool avg 3 1 pad=1
    conv 1 1 p bn
  }
}

block inception_b() {         # grid reduction 35x35 -> 17x17
  concat {
    conv 3 2 384 bn pad=valid
  } {
    conv 1 1 64 bn
    conv 3 1 96 bn
    conv 3 2 96 bn pad=valid
  } {
    pool max 3 2
  }
}

block inception_c(c) {       # Figure 6: 17x17, 7x7 factorised into 1x7 and 7x1 of width c
  concat {
    conv 1 1 192 bn
  } {
    conv 1 1 c bn
    conv 1x7 1 c bn
    conv 7x1 1 192 bn
  } {
    conv 1 1 c bn
    conv 7x1 1 c bn
    conv 1x7 1 c bn
    conv 7x1 1 c bn
    conv 1x7 1 192 bn
  } {
    pool avg 3 1 pad=1
    conv 1 1 192 bn
  }
}

block inception_d() {         # grid reduction 17x17 -> 8x8
  concat {
    conv 1 1 192 bn
    conv 3 2 320 bn pad=valid
  } {
    conv 1 1 192 bn
    conv 1x7 1 192 bn
    conv 7x1 1 192 bn
    conv 3 2 192 bn pad=valid
  } {
    pool max 3 2
  }
}

block inception_e() {         # Figure 7: 8x8, expanded filter banks
  concat {
    conv 1 1 320 bn
  } {
    conv 1 1 384 bn
    concat {
      conv 1x3 1 384 bn
    } {
      conv 3x1 1 384 bn
    }
  } {
    conv 1 1 448 bn
    conv 3 1 384 bn
    concat {
      conv 1x3 1 384 bn
    } {
      conv 3x1 1 384 bn
    }
  } {
    pool avg 3 1 pad=1
    conv 1 1 192 bn
  }
}

Conv2d_1a_3x3: conv 3 2 32 bn pad=valid     # 149x149x32
Conv2d_2a_3x3: conv 3 1 32 bn pad=valid     # 147x147x32
Conv2d_2b_3x3: conv 3 1 64 bn               # 147x147x64
maxpool1: pool max 3 2                      # 73x73x64
Conv2d_3b_1x1: conv 1 1 80 bn               # 73x73x80
Conv2d_4a_3x3: conv 3 1 192 bn pad=valid    # 71x71x192
maxpool2: pool max 3 2                      # 35x35x192
Mixed_5b: inception_a(32)                   # 35x35x256
Mixed_5c: inception_a(64)                   # 35x35x288
Mixed_5d: inception_a(64)                   # 35x35x288
Mixed_6a: inception_b()                     # 17x17x768
Mixed_6b: inception_c(128)                  # 17x17x768
Mixed_6c: inception_c(160)
Mixed_6d: inception_c(160)
Mixed_6e: inception_c(192)
Mixed_7a: inception_d()                     # 8x8x1280
Mixed_7b: inception_e()                     # 8x8x2048
Mixed_7c: inception_e()                     # 8x8x2048
gap
dropout 0.5
fc 1000
softmax
