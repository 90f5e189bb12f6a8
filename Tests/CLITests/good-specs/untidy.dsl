# An untidy spec for the rewrite goldens: blank lines, a comment column, odd spacing,
# four-space indentation, batch norm, and a block called with two widths.

network untidy
input 32x32x3


conv 3 1 32 bn          # 32x32
conv   3 1 32 bn        # oddly spaced
pool max 2              # 16x16

block stage(c) {
    conv 3 1 c bn       # four-space indentation
    dropout 0.1
    conv 3 1 c bn
    pool max 2
}
stage(64)               # 8x8
stage(128)              # 4x4

gap
fc 10                   # classes
softmax
