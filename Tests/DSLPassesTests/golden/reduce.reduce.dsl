# Golden input for reduce: a plain stack and an inception module with zero columns.

network golden-reduce
input 28x28x64

conv 3 1 64             # reads the input: not reduced
conv 1 1 32 bn          # reduce: 1x1 reduction 64 -> 32 before the 3x3 conv at line 7
conv 3 1 64 bn          # reduced (3x3)
conv 1 1 16             # reduce: 1x1 reduction 64 -> 16 before the 5x5 conv at line 8
conv 5 1 64             # reduced (5x5)
conv 1 1 32
conv 3 1 64             # already behind a 1x1
a: inception<32, 32, 64, 16, 16, 16>  # reduce: #3x3 reduce 0 -> 32, #5x5 reduce 0 -> 16, pool proj 0 -> 16
gap
fc 10
