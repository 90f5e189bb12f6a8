# a misspelt layer gets a suggestion
# expect: 5:1: error: unknown layer 'cnov'; did you mean 'conv'?
# expect: 6:1: error: unknown layer 'sofmax'; did you mean 'softmax'?
input 32x32x3
cnov 3 1 8
sofmax
