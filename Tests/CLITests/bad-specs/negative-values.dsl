# negative numbers where counts are needed
# expect: 5:6: error: kernel size must be from 1 to 1024, got -3
# expect: 6:9: error: dropout probability must be between 0 and 0.999999, got -0.5 (the frac
input 32x32x3
conv -3 1 8
dropout -0.5
