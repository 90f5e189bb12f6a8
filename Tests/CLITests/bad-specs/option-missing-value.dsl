# an option with '=' but no value
# expect: 4:12: error: expected a value after 'pad='
input 32x32x3
conv 3 1 8 pad=
