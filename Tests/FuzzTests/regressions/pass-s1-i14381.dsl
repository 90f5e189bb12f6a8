# fuzz regression (dsl-fuzz --seed 1, input 14381): pass: pass: reduce, gap-head: 5:1: verification failed after pass 'reduce': the rewritten spec does not elaborate (line 7 of the rewritten spec: layer name 'conv1' is already used)
# 
network x
input 39x39x6
bn
conv1: conv 5 2 17
conv 3 2 (-(-3)) pad=valid bn
fc 4
softmax
