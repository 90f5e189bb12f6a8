# the remaining parser error paths: trailing text, empty inception column, operand missing, brace after a layer, block header
# expect: 8:17: error: expected end of line after statement, found 'extra'
# expect: 9:15: error: expected a column width in 'inception<...>', found ','
# expect: 10:14: error: expected a number or name, found ')'
# expect: 11:6: error: expected end of line after statement, found '{'
# expect: 13:11: error: expected ')' after block parameters, found 'b'
# expect: 16:11: error: expected '{' to start the block body, found 'relu'
input 28x28x192 extra
inception<64, , 3>
conv 3 1 8 + )
relu {
}
block f(a b) {
  relu
}
block g() relu
