# a label on a block definition and on the network
# expect: 4:1: error: a network declaration cannot have a label
# expect: 6:1: error: a block definition cannot have a label
n: network labelled
input 32x32x3
b: block f() {
  relu
}
f()
