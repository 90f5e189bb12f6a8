# a '}' with nothing to close
# expect: 5:1: error: unmatched '}'
input 32x32x3
conv 3 1 8
}
bn
