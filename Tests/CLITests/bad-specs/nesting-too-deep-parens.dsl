# more than 64 nested parentheses
# expect: 4:42: error: nesting is too deep (more than 64 levels)
input 8x8x3
conv 3 1 ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((8))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))))
