# issue 11: fmt refused a comment after a closing brace ("formatting would lose comments")
input 8x8x3
repeat 2 {
  conv 3 1 8
} # end of the repeat
add {
  conv 3 1 8
} { # identity
}  # merged
