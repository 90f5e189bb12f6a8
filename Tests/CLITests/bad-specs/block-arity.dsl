# a block called with the wrong number of arguments
# expect: 9:1: error: block 'stage' takes 2 arguments, got 1
input 32x32x3
block stage(c, n) {
  repeat n {
    conv 3 1 c
  }
}
stage(8)
