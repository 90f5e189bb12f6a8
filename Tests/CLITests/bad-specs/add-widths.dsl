# a residual add of unequal widths is usually a forgotten projection shortcut
# expect: 4:1: error: cannot add branches of different widths: branch 1 has 16 channels, branch 2 has 8; project
input 16x16x8
add {
  conv 3 2 16 bn
  conv 3 1 16 bn act=linear
} {
  pool avg 2
}
