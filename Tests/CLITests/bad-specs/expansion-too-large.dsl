# nested repeats that would expand to 10^10 layers (reported at once)
# expect: 4:1: error: the network expands to more than 2000000 layers (this repeat alone wou
input 8x8x3
repeat 100000 {
  repeat 100000 {
    relu
  }
}
