# fuzz regression (dsl-fuzz --seed 1, input 15306): fmt: fmt: formatting changed the comments: 1 before, 0 after
network fuzz-1
input 9x9x3
repeat (-(-1)) {
}  # end
