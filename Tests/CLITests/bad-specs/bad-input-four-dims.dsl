# four dimensions
# expect: 3:7: error: input size needs three numbers, height x width x channels (got 4)
input 32x32x3x1
