# an error in a block body that does not depend on the arguments is reported once, not once per call
# expect: 5:12: error: division by zero
input 8x8x3
block b(c) {
  conv 3 1 8 / 0
  conv 3 1 c
}
b(4)
b(8)
b(16)
