# fuzz regression (dsl-fuzz --seed 1, input 8963): fmt: fmt: formatting changed the comments: 1 before, 1 after
input 31x31x4  # 3×3, α = 48
network x
conv 6