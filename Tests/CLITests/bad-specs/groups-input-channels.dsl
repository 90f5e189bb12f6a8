# groups must divide the input's channels (known only from the shapes)
# expect: 4:1: error: groups=4 does not divide the input's 6 channels (groups must divide the input channels and
input 8x8x6
conv 3 1 8 groups=4
