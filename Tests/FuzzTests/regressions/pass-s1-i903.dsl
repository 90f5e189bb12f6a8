# fuzz regression (dsl-fuzz --seed 1, input 903): pass: pass: convpool, all-conv, strided: 2:1: verification failed after pass 'convpool': the rewritten spec does not elaborate (line 4 of the rewritten spec: layer name 'conv1' is already used)
input 10x10x3
pool 5 1
conv1: fc 1
conv 3 1 32
pool 1 1 * 3
conv 7 4 / 2 8 bn=off
conv 1 1 11
gap
# Latin-1 café
softmax
# conv 3 1 8 { } # not code
