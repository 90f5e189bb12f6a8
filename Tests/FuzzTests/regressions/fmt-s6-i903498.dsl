# fuzz regression (dsl-fuzz --seed 6, input 903498): fmt: the formatted text does not parse (an argument starting with the flag word bn lost its parentheses)
# 3×3, α = 48
input 2x2x14
conv 3 1 2
add {
} {
  conv 2 / 2 1 3 bn
  conv (-(-3)) 1 48 bn
  conv 1 (bn-(-1e-9)) 16 bias=on
} {
  conv 3 w 48 bn=off act=leaky slope=0
  conv 3 1 50
  conv 1 (-(-1)) 17
}
# a comment
conv 3 1 8
conv 3 1 48 bn
# 
