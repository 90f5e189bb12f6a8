# option values of the wrong type or range, and multiplicative widening below 1
# expect: 9:16: error: 'act' must be one of relu, leaky, linear, none
# expect: 10:12: error: 'nobias' takes no value
# expect: 11:28: error: 'slope' must be a number from 0 to 1
# expect: 12:16: error: padding must be same, valid or a whole number from 0 to 1024
# expect: 13:16: error: padding must be same, valid or a whole number from 0 to 1024
# expect: 14:9: error: multiplicative widening needs α ≥ 1 (the final width is the input widt
input 32x32x16
conv 3 1 8 act=3
conv 3 1 8 nobias=1
conv 3 1 8 act=leaky slope=2
conv 3 1 8 pad=-1
conv 3 1 8 pad=2.5
pyramid 0.5 1 widen=mul
