# Batch norm, max pooling (switches), a residual add, a concat of branches, dropout.
network bn-merge
input 32x32x3
conv 3 1 16 bn
pool max 2 2           # 16x16
res: add {
  conv 3 1 16 bn
  conv 3 1 16 bn act=linear
} {
}
relu
dropout 0.2
mix: concat { conv 1 1 8 bn } { conv 3 1 8 bn } { pool max 3 1 pad=1 }
conv 3 2 32 bn         # 8x8
gap
fc 10
softmax
