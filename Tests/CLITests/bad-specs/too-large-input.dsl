# input dimensions above 2^20
# expect: 3:7: error: input dimension '99999999999999999999' must be a whole number from 1 t
input 99999999999999999999x32x3
conv 3 1 8
