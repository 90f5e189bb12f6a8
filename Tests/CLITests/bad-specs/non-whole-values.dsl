# kernel, stride and filters must be whole numbers
# expect: 5:6: error: kernel size must be a whole number, got 2.5
# expect: 7:12: error: number of filters must be a whole number, got 2.6666666666666665
input 32x32x3
conv 2.5 1 8
block stage(c) {
  conv 3 1 c / 3
}
stage(8)
