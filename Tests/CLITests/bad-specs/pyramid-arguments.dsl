# pyramid arguments and options
# expect: 6:9: error: 'pyramid' expects 2 arguments (pyramid ALPHA UNITS_PER_STAGE); missing
# expect: 7:12: error: units per stage must be from 1 to 10000, got 0
# expect: 8:20: error: 'widen' must be one of add, mul
input 32x32x16
pyramid 48
pyramid 48 0
pyramid 48 2 widen=foo
