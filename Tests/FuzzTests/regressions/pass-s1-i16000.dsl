# fuzz regression (dsl-fuzz --seed 1, input 16000): pass: pass: reduce, gap-head: 3:1: verification failed after pass 'reduce': the network's output shape changed from 10x10x14 to 10x10x10
input 10x10x7
conv (-(-1)) 1 8 act=linear
inception<4,1,1,3,1,0> bn