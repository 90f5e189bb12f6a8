# blocks and repeats multiplying past 2,000,000 layers
# expect: 14:1: error: the network expands to more than 2000000 layers (this repeat alone wou
input 8x8x3
block b() {
  repeat 1000 {
    bn
  }
}
block c() {
  repeat 1000 {
    b()
  }
}
repeat 3 {
  c()
}
