# two network and two input declarations
# expect: 5:1: error: duplicate 'network' declaration
# expect: 7:1: error: duplicate 'input' declaration
network a
network b
input 32x32x3
input 16x16x3
conv 3 1 8
