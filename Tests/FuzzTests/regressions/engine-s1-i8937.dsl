# fuzz regression (dsl-fuzz --seed 1, input 8937): engine: engine: check accepted the network but the engine refused it: layer 'concat1': node 'concat1' (concat): softmax 'l1' must be the final node
input 12x12x3  # 
inception<4, 3, 2, 15, 4, 2> act=leaky
concat {
  conv 3 1 48 bn
  conv 3 2 / 2 32
  # a comment
  conv 1 1 17
} {
  l1: softmax
}  # end
conv 4 1 5 valid
