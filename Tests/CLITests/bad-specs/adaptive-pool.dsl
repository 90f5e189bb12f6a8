# adaptive pooling: average only, a size
# expect: 9:6: error: adaptive pooling is average pooling only: write 'pool avg to HEIGHTxWIDTH'
# expect: 10:6: error: adaptive pooling needs its kind: write 'pool avg to HEIGHTxWIDTH'
# expect: 11:10: error: 'pool avg to' needs the output size (pool avg to HEIGHTxWIDTH, e.g. 'pool avg to 7x7')
# expect: 12:15: error: too many arguments to 'pool avg to': expected one output size (pool avg to HEIGHTxWIDTH)
# expect: 13:13: error: adaptive pooling output size must be from 1 to 1048576 on each axis, got 0 in '0x4'
# expect: 14:17: error: unknown option 'ceil' for 'pool'; it takes no options
input 7x7x8
pool max to 2x2
pool to 2
pool avg to
pool avg to 2 2
pool avg to 0x4
pool avg to 2x2 ceil
