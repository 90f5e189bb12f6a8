# Golden input for gap-head.

network golden-head
input 32x32x3

conv 3 1 16
dropout 0.5
# the classifier
conv 1 1 10 nobias act=linear  # gap-head: replaces fc at line 10 (old comment: "10 classes")
gap
softmax
