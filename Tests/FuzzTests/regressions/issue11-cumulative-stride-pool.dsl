# issue 11: the cumulative stride overflowed through pooling
input 1x1x1
repeat 63 { pool max 1 2 }
