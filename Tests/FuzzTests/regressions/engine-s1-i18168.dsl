# fuzz regression (dsl-fuzz --seed 1, input 18168): engine: engine: check accepted the network but the engine refused it: layer 'concat1': node 'concat1' (concat): softmax 'softmax1' must be the final node
input 11x11x1
pool avg 5 pad=0 ceil
conv 1 * 2 2 5
concat {
softmax
} {
}
repeat 2 {
  conv 3 1 * 1 17
  pool avg
  conv 1 1 * 1 24 bn=off
}
conv 3 1 (1 + 1) bn act=linear bias=off
inception<14,3,1 * 4,3,1,4> bn
gap
fc 9
softmax
