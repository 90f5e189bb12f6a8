# inception needs six column widths
# expect: 5:1: error: inception takes 6 column widths <#1x1, #3x3 reduce, #3x3, #5x5 reduce,
# expect: 6:32: error: inception column pool proj must be a whole number, got 2.5
input 28x28x192
inception<64, 96, 128>
inception<64, 96, 128, 16, 32, 2.5>
