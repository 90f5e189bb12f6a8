# block calls take no options
# expect: 7:10: error: a block call takes no options; pass values as arguments
input 32x32x3
block stage(c) {
  conv 3 1 c
}
stage(8) bn
