# fuzz regression (dsl-fuzz --seed 1, input 6295): pass: pass: convpool, all-conv, strided: 4:1: verification failed after pass 'convpool': the rewritten spec does not elaborate (line 5 of the rewritten spec: layer name 'conv1' is already used)
input 11x1x8
inception<2, 4, 11, 0, (2 + 1), 0>
inception<1,4,0,(-(-11)),2,2 / 2> nobias
conv1: pool max 1
bn
fc 10
softmax