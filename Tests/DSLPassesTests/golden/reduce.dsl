# Golden input for reduce: a plain stack and an inception module with zero columns.

network golden-reduce
input 28x28x64

conv 3 1 64             # reads the input: not reduced
conv 3 1 64 bn          # reduced (3x3)
conv 5 1 64             # reduced (5x5)
conv 1 1 32
conv 3 1 64             # already behind a 1x1
a: inception<32, 0, 64, 0, 16, 0>
gap
fc 10
