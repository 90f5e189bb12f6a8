# the squeeze-and-excitation branch must end with the channels it scales
# expect: 4:1: error: cannot multiply branches of shapes 8x8x16 (branch 1) and 1x1x8 (branch 2): each branch mus
input 8x8x16
mul {} { gap ; conv 1 1 4 act=relu ; conv 1 1 8 act=sigmoid }
