# issue 11: a softmax that is not the last layer was refused by the engine
input 8x8x3
softmax
conv 1 1 4
gap
fc 3
softmax
