# network, input and block inside a repeat
# expect: 6:3: error: 'input' is only allowed at the top level
# expect: 7:3: error: blocks must be defined at the top level
input 32x32x3
repeat 2 {
  input 8x8x3
  block f() {
    relu
  }
}
