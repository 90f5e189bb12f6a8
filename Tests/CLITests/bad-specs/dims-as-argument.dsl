# kernels are square: 3x3 is not an argument
# expect: 4:6: error: unexpected size '3x3' here; kernels are square, write a single number 
input 32x32x3
conv 3x3 1 8
