# two blocks with one name
# expect: 7:7: error: block 'f' is defined twice
input 32x32x3
block f() {
  relu
}
block f() {
  bn
}
f()
