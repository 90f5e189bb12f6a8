# added branches must have the same height and width
# expect: 5:1: error: cannot add branches of different sizes: branch 1 is 16x16, branch 2 is
input 32x32x3
conv 3 1 8
add {
  conv 3 2 8
} {
}
