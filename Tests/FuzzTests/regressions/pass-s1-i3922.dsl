# fuzz regression (dsl-fuzz --seed 1, input 3922): pass: pass: reduce, gap-head: 4:1: verification failed after pass 'reduce': the rewritten spec does not elaborate (line 5 of the rewritten spec: layer name 'conv1' is already used)
network fuzz-1
input 36x15x7
pool max ceil
conv1: conv 5 2 (15 + 1)
pool ceil  # 3×3, α = 48
conv 5 2 5 pad=1 nobias leaky
l2: softmax

conv 1 1 3 pad=valid
gap
fc 1
softmax
