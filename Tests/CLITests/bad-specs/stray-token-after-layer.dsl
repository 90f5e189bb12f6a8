# something that is neither an argument nor an option after a layer
# expect: 5:6: error: expected an option such as 'pad=valid' or 'bn', found ')'
# expect: 6:12: error: expected an option such as 'pad=valid' or 'bn', found ','
input 32x32x3
relu )
conv 3 1 8 , 2
