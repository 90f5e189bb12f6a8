# A small All-CNN-style network (Springenberg et al.): strided convolutions instead of
# pooling, dropout, 1x1 convolutions and global average pooling; no batch norm.
network allcnn-small
input 32x32x3
dropout 0.2
conv 3 1 16
conv 3 2 24            # 16x16
dropout 0.3
conv 3 1 32
conv 3 2 32            # 8x8
conv 3 1 32 pad=valid  # 6x6
conv 1 1 10
gap
softmax
