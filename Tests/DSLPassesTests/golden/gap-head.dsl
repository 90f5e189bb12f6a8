# Golden input for gap-head.

network golden-head
input 32x32x3

conv 3 1 16
gap
dropout 0.5
# the classifier
fc 10 nobias            # 10 classes
softmax
