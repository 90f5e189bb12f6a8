# a standalone ReLU after the classifier, ending the network
# expect: 6:1: warning: a ReLU on the logits at the network's end: the class scores cannot go below 0 (or are squashed), which slows or stops learning; remove 'relu1'
input 8x8x3
conv 3 1 8 act=linear
fc 10
relu
