# a statement must start with a word
# expect: 5:1: error: expected a layer or statement, found '='
# expect: 6:1: error: expected a layer or statement, found '('
input 32x32x3
= conv 3 1 8
(relu)
