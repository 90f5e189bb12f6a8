# keywords and layer kinds cannot be labels
# expect: 5:1: error: 'conv' is a keyword and cannot name a layer
# expect: 6:1: error: 'repeat' is a keyword and cannot name a layer
input 32x32x3
conv: conv 3 1 8
repeat: bn
