# issue 11: pyramid shortcuts (2x2/2 ceil average pooling) on 1x1 maps were refused by the engine
input 1x1x4
pyramid 2 2
gap
fc 3
softmax
