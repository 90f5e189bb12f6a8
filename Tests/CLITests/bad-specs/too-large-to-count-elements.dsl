# the input alone, and a network whose activations would overflow the memory figures
# expect: 3:1: error: the input has 1152921504606846976 elements; at most 68719476736 are supported
input 1048576x1048576x1048576
conv 3 1 8
