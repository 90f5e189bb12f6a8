# a repeat body that is never closed
# expect: 4:10: error: the repeat body is not closed: expected '}'
input 32x32x3
repeat 2 {
  conv 3 1 8
