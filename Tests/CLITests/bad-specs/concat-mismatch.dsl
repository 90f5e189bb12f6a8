# concatenated branches must have the same height and width
# expect: 4:1: error: cannot concatenate branches of different sizes: branch 1 is 16x16, bra
input 32x32x3
concat {
  conv 3 2 8
} {
  conv 3 1 8
}
