# a block that calls itself, directly and through another block
# expect: 7:3: error: block 'a' calls itself (recursion is not allowed)
# expect: 13:3: error: block 'b' calls itself (recursion is not allowed)
input 32x32x3
block a() {
  relu
  a()
}
block b() {
  c()
}
block c() {
  b()
}
a()
b()
