# input sizes that are not HxWxC
# expect: 3:7: error: input size needs three numbers, height x width x channels (got 2)
input 32x32
