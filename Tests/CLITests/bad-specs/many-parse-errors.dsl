# several independent syntax errors, all reported
# expect: 7:1: error: unknown layer 'cnov'; did you mean 'conv'?
# expect: 8:9: error: expected ')' to close '(', found '1'
# expect: 9:12: error: unexpected character ']'
# expect: 11:6: error: expected an option such as 'pad=valid' or 'bn', found '='
input 32x32x3
cnov 3 1 8
conv (3 1 8
conv 3 1 8 ]
conv 3 1 8
relu =
