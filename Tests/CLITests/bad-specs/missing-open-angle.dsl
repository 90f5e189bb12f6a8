# inception without '<'
# expect: 4:11: error: expected '<' after 'inception' (inception<#1x1, #3x3 reduce, #3x3, #5x
input 28x28x192
inception 64 96
