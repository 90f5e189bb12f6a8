# calling a block that is not defined (with a suggestion)
# expect: 8:1: error: unknown block 'stgae'; did you mean 'stage'?
# expect: 9:1: error: unknown block 'nothing'
input 32x32x3
block stage(c) {
  conv 3 1 c
}
stgae(8)
nothing(1)
