# inception columns without the closing '>'
# expect: 4:32: error: expected '>' after inception columns
input 28x28x192
inception<64, 96, 128, 16, 32, 32
