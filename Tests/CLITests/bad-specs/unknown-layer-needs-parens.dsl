# an unknown word that is not close to a layer: block calls need parentheses
# expect: 4:1: error: unknown layer 'stem'; a block call needs parentheses, e.g. 'stem()'
input 32x32x3
stem 3 1
