# an unclosed parenthesis in an expression
# expect: 5:9: error: expected ')' to close '(', found '1'
# expect: 9:3: error: expected ')' after block arguments
input 32x32x3
conv (3 1 8
block f(c) {
  conv 3 1 c
}
f(8
