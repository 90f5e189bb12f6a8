# A fast CIFAR-10 network for the 15-minute benchmark (README, "Benchmarks"): six 3x3
# convolutions with batch norm, widths 32-64-128, strided convolutions instead of pooling
# (the All-CNN idea), a global-average-pooling head. 288,746 parameters, 38.6 M MACs.
# Trained on the 10,000 images of data_batch_1.bin it passes 70% test accuracy within
# 15 minutes on 2 cores: dsl train specs/cifar-fast.dsl --data DIR --epochs 20 --lr 0.1
# --weight-decay 5e-4 --nesterov

network cifar-fast
input 32x32x3

conv 3 1 32 bn
conv 3 1 32 bn
conv 3 2 64 bn          # 16x16
conv 3 1 64 bn
conv 3 2 128 bn         # 8x8
conv 3 1 128 bn
gap
fc 10
softmax
