# fuzz regression (dsl-fuzz --seed 1, input 1517): engine: engine: check accepted the network but the engine refused it: layer 'relu1.relu': node 'relu1.relu' (relu): softmax 'softmax1' must be the final node
# 
network a_b.c
input 28x28x3
l1: conv 3 3 17 leaky  # 
softmax
relu
