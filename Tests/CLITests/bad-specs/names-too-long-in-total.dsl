# labels of 128 characters in nested repeats: 267 MB of layer names
# expect: 10:3: error: the layer and module names take more than 268435456 bytes (this repeat alone would make 
input 8x8x3
block a() {
  repeat 1000 {
    yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy: relu
  }
}
block b() {
  repeat 1000 {
    yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy: a()
  }
}
b()
