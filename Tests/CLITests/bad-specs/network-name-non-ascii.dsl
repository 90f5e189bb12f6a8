# a non-ASCII letter in the network name is reported once, by the lexer
# expect: 3:12: error: unexpected character 'é'
network café
input 8x8x3
conv 3 1 8
