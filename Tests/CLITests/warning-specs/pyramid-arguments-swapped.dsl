# pyramid ALPHA UNITS: here alpha (2) is smaller than the units per stage (6)
# expect: 4:1: warning: 'pyramid 2 6' widens by α = 2 over 3 x 6 units; the arguments are α, then units per stage: did you mean 'pyramid 6 2'?
input 32x32x16
pyramid 2 6
