# add needs two branches
# expect: 4:1: error: 'add' needs at least two branches (use '{}' for the identity shortcut)
input 32x32x3
add {
  conv 3 1 3
}
