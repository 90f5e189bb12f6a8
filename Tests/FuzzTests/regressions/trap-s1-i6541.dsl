# fuzz regression (dsl-fuzz --seed 1, input 6541): trap: the process died: at Sources/DSLEngine/Ops/DirectConv.swift:86 crashed: Bad pointer dereference at 
input 7x8x1
conv 3 1 * 1 50 pad=same
conv 1 1 32 relu
