# repeat counts out of range or not whole
# expect: 6:8: error: repeat count must be from 0 to 100000, got 100001
# expect: 9:8: error: repeat count must be from 0 to 100000, got -1
# expect: 12:8: error: repeat count must be a whole number, got 2.5
input 32x32x3
repeat 100001 {
  relu
}
repeat -1 {
  relu
}
repeat 2.5 {
  relu
}
