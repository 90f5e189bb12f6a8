# repeat needs a braced body
# expect: 4:10: error: expected '{' to start the repeat body, found 'relu'
input 32x32x3
repeat 2 relu
