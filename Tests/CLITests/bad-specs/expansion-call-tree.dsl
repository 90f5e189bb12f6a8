# a tree of calls: 2,222,222 module instances (an exponential tree took 3 GB and 20 s, then aborted)
# expect: 7:66: error: the network expands to more than 2000000 module instances
input 8x8x3
block b1() {
}
block b2() {
  b1() ; b1() ; b1() ; b1() ; b1() ; b1() ; b1() ; b1() ; b1() ; b1()
}
block b3() {
  b2() ; b2() ; b2() ; b2() ; b2() ; b2() ; b2() ; b2() ; b2() ; b2()
}
block b4() {
  b3() ; b3() ; b3() ; b3() ; b3() ; b3() ; b3() ; b3() ; b3() ; b3()
}
block b5() {
  b4() ; b4() ; b4() ; b4() ; b4() ; b4() ; b4() ; b4() ; b4() ; b4()
}
block b6() {
  b5() ; b5() ; b5() ; b5() ; b5() ; b5() ; b5() ; b5() ; b5() ; b5()
}
block b7() {
  b6() ; b6() ; b6() ; b6() ; b6() ; b6() ; b6() ; b6() ; b6() ; b6()
}
block b8() {
  b7()
  b7()
}
b8()
