# the same option (or two spellings of it) given twice
# expect: 5:15: error: option 'bn' is given twice
# expect: 6:18: error: option 'valid' is given twice
input 32x32x3
conv 3 1 8 bn bn
conv 3 1 8 pad=1 valid
