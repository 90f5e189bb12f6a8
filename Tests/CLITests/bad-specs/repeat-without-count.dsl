# repeat needs a count
# expect: 4:8: error: expected a repeat count after 'repeat'
input 32x32x3
repeat {
  relu
}
