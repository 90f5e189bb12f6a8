# mul needs two branches; zeropad is add's option
# expect: 5:1: error: 'mul' needs at least two branches (use '{}' for the identity)
# expect: 6:5: error: unknown option 'zeropad' for 'mul'; it takes no options
input 8x8x16
mul { relu }
mul zeropad {} {}
