# concat and add need braced branches
# expect: 5:8: error: expected '{' to start the first branch of 'concat'
# expect: 6:1: error: expected '{' to start the first branch of 'add'
input 32x32x3
concat relu
add
