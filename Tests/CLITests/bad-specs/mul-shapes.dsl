# mul: every branch H x W x C or 1 x 1 x C, and two branches at least
# expect: 4:1: error: cannot multiply branches of shapes 8x8x16 (branch 1) and 4x4x16 (branch 2): each branch mu
input 8x8x16
mul {} { conv 1 2 16 }
