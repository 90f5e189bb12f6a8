# a size HEIGHTxWIDTH only where a layer takes one, never in arithmetic
# expect: 7:9: error: unexpected size '3x3' here; write a single number (a size HEIGHTxWIDTH is taken by conv's 
# expect: 8:6: error: unexpected size '3x3' here; write a single number (a size HEIGHTxWIDTH is taken by conv's 
# expect: 9:6: error: '1x7' is a size, not a number; '*' cannot apply to it
# expect: 10:12: error: '1x1' is a size, not a number; '+' cannot apply to it
input 8x8x6
dropout 3x3
pool 3x3
conv 1x7*2 1 8
conv 3 1 2+1x1
