# control bytes outside comments
# expect: 5:7: error: unexpected byte 0x01 (specs are plain ASCII outside comments)
# expect: 6:5: error: unexpected byte 0x7F (specs are plain ASCII outside comments)
input 32x32x3
conv 3 1 8
relu
