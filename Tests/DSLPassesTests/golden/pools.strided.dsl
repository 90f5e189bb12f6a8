# Golden input for the pooling passes (strided, all-conv, convpool): a plain stack, a block
# (its pooling has an even window), a repeat whose pooling rounds up.

network golden-pools
input 32x32x3

block stage(c) {
  conv 3 2 c nobias     # strided: stride 2, from the pool at line 10 (removed) (old comment: "2x2 windows")
  bn
}

# Stem
stem: conv 3 2 16 leaky slope=0.2  # strided: stride 2, from the pool at line 15 (removed) (old comment: "3x3, stride 2")
stage(32)

repeat 2 {
  conv 3 2 64  # strided: stride 2, from the pool at line 20 (removed)
}
gap
fc 10
