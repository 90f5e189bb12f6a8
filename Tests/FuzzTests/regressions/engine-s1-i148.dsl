# fuzz regression (dsl-fuzz --seed 1, input 148): engine: engine: check accepted the network but the engine refused it: layer 'avgpool2': node 'avgpool2' (avgPool3x3/s3/p0/ceil): softmax 'l1' must be the final node
network net
input 9x9x1
block b1() {
  conv 1 1 24
  # a comment
  conv (-(-1)) 1 (49 + 1) relu bn=on
  conv (2 + 1) 1 8 nobias act=linear
}
block b2(c, k) {
  b1()
}
block b3(c) {
  conv 3 1 2 bn
}
pool avg ceil
l1: softmax

pool avg (2 + 1) 3 ceil  # TODO: widen
pool max (1 + 1)
gap
fc 11
softmax
