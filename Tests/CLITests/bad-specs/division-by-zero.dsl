# division by zero in an argument
# expect: 5:12: error: division by zero
input 32x32x3
block stage(c) {
  conv 3 1 c / (c - c)
}
stage(8)
