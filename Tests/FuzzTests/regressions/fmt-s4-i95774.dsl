# fuzz regression (dsl-fuzz --seed 4, input 95774): fmt: the formatted text parses to different statements (a valueless option moved in front of the others)
input 9x9x49
conv 1 1 50 bias=off
pool max 1 2 ceil  # 
conv 1 1 (-(-64)) act=linear bias