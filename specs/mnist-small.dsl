# A small convolutional network for MNIST (28x28 grayscale digits): two conv + max-pool
# stages and a global-average-pooling head, batch norm after every convolution.
# Trains to about 98% test accuracy in under two minutes on 2 cores (README, "Benchmarks").

network mnist-small
input 28x28x1

conv 3 1 32 bn
pool max 2 2            # 14x14
conv 3 1 64 bn
pool max 2 2            # 7x7
conv 3 1 128 bn
gap
fc 10
softmax
