# '{' on the line after its statement: one error each, and the bodies are still checked
# expect: 7:1: error: '{' must be on the same line as the repeat it opens
# expect: 11:1: error: '{' must be on the same line as the block it opens
# expect: 12:12: error: number of filters must be a whole number, got 2.5
input 8x8x3
repeat 2
{
  relu
}
block f()
{
  conv 3 1 2.5
}
f()
