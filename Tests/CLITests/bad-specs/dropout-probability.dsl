# dropout keeps some units: p must be below 1
# expect: 5:9: error: dropout probability must be between 0 and 0.999999, got 1 (the fractio
# expect: 6:9: error: dropout probability must be between 0 and 0.999999, got 1.5 (the fract
input 32x32x3
dropout 1
dropout 1.5
