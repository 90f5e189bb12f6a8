# no size after input
# expect: 3:7: error: expected input size like 32x32x3 (height x width x channels) after 'in
input rgb
conv 3 1 8
