# malformed block definitions
# expect: 8:7: error: expected a block name after 'block'
# expect: 11:7: error: 'conv' is a built-in layer and cannot name a block
# expect: 14:9: error: expected a parameter name
# expect: 17:12: error: duplicate parameter 'c'
# expect: 20:9: error: expected '(' after block name, found 'c'
input 32x32x3
block (c) {
  relu
}
block conv() {
  relu
}
block g(1) {
  relu
}
block h(c, c) {
  conv 3 1 c
}
block k c {
}
