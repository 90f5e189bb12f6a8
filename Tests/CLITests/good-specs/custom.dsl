# A small network using every structural construct: a block with parameters, repeat (with a
# labelled layer, which gets .1/.2 suffixes), a residual 'add' with an identity branch, a
# 'concat' of two branches, a labelled pooling layer, and the classifier.
network custom
input 32x32x3

block stage(c, n) {
  repeat n {
    unit: conv 3 1 c bn
  }
  pool max 2
}

stem: conv 3 1 16
stage(16, 2)
add {
  conv 3 1 16 bn act=linear
} {
}
relu
concat {
  conv 1 1 8
} {
  conv 3 1 8
  conv 3 1 8
}
stage(32 * 2, 1)
gap
dropout 0.5
fc 10
softmax
