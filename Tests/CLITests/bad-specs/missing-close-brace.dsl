# a repeat body that is never closed
# expect: 6:1: error: expected '}' to close the repeat body
input 32x32x3
repeat 2 {
  conv 3 1 8
