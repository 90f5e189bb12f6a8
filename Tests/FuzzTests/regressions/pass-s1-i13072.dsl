# fuzz regression (dsl-fuzz --seed 1, input 13072): pass: pass: reduce, gap-head: 2:1: verification failed after pass 'reduce': the network's output shape changed from 5x5x21 to 5x5x20
input 5x5x2
inception<3,0,12,15,4,0>
