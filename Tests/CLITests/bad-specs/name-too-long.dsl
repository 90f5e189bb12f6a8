# a label of 200 characters (a 100 KB label in a repeat took 4 GB of names)
# expect: 5:3: error: name 'xxxxxxxxxxxxxxxxxxxxxxxx...' is too long (200 characters; at most 128)
input 8x8x3
repeat 100000 {
  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx: relu
}
