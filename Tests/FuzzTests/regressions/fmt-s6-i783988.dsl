# fuzz regression (dsl-fuzz --seed 6, input 783988): fmt: the formatted text does not parse (an argument starting with the flag word floor lost its parentheses)
network fuzz-1
input 8x8x7  # 3×3, α = 48
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) # c 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
x_y: conv 3 (0 + 1) 64 bn=off
conv 1 2 8 bias=off
conv 1 (1 + 1) 1
conv 3 2 24 bn=off  # conv 3 1 8 { } # not code
pyramid 0.5 1
conv 2 / 2 1 * 2 (floor-(-97)) bn=off act=relu pad=valid
pool 