# fuzz regression (dsl-fuzz --seed 1, input 17790): engine: engine: check accepted the network but the engine refused it: layer 'add1': node 'add1' (add): softmax 'softmax1' must be the final node
input 35x35x6
add zeropad {
  conv (2 + 1) 1 2 bias=on
} {
  softmax
}
gap
fc 12
softmax
