# Golden input for the pooling passes (strided, all-conv, convpool): a plain stack, a block
# (its pooling has an even window), a repeat whose pooling rounds up.

network golden-pools
input 32x32x3

block stage(c) {
  conv 3 1 c nobias
  bn
  conv 2 2 32 bn  # all-conv: replaces pool at line 10 (old comment: "2x2 windows")
}

# Stem
stem: conv 3 1 16 leaky slope=0.2
conv 3 2 16 leaky slope=0.2  # all-conv: replaces pool at line 15 (old comment: "3x3, stride 2")
stage(32)

repeat 2 {
  conv 3 1 64
  conv 3 2 64  # all-conv: replaces pool at line 20
}
gap
fc 10
