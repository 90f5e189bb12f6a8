# slope= only means something with a leaky activation
# expect: 5:12: error: 'slope' only applies to a leaky activation
# expect: 7:6: error: 'slope' only applies to a leaky activation
input 8x8x3
conv 3 1 8 slope=0.2
conv 3 1 8 leaky slope=0.2
fc 3 slope=0.1
