# an activation on the logits: the scores cannot go below 0
# expect: 6:1: warning: a ReLU on the logits right before softmax: the class scores cannot go below 0 (or are squashed), which slows or stops learning; write act=linear on 'fc1'
input 8x8x3
conv 3 1 8
gap
fc 10 act=relu
softmax
