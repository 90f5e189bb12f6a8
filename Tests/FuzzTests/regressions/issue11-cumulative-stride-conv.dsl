# issue 11: the cumulative stride overflowed (arithmetic-overflow trap in Costs.swift)
input 1x1x1
repeat 63 { conv 1 2 1 }
