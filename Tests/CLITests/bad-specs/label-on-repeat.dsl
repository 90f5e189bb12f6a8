# labels on a repeat or an input name nothing
# expect: 4:1: error: an input declaration cannot have a label
# expect: 5:1: error: a repeat cannot have a label; label the layers inside it
x: input 8x8x3
r: repeat 2 {
  conv 3 1 8
}
