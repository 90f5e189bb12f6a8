# fuzz regression (dsl-fuzz --seed 1, input 6204): trap: the process died: at Sources/DSLEngine/Ops/DirectConv.swift:86 crashed: Bad pointer dereference at 
network x
input 10x10x2
conv 3 2 97
gap
fc 1
softmax
