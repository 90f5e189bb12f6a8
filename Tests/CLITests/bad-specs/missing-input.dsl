# layers without an input declaration
# expect: 3:1: error: missing 'input' declaration (e.g. 'input 32x32x3' before the first lay
network no-input
conv 3 1 8
