# a branch left open: the error is at the branch's '{', not at the end of the file
# expect: 9:5: error: branch 2 of 'add' is not closed: expected '}'
input 32x32x3
conv 3 1 16
block res(c) {
  add {
    conv 3 1 c
    conv 3 1 c
  } {
    conv 1 1 c
  relu
}
res(16)
gap
fc 10
