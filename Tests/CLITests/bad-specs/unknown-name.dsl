# a name that is not a block parameter
# expect: 6:12: error: unknown name 'd' (block parameters here: c)
# expect: 9:10: error: unknown name 'width'
input 32x32x3
block stage(c) {
  conv 3 1 d
}
stage(8)
conv 3 1 width
