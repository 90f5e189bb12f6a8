# fuzz regression (dsl-fuzz --seed 4, input 187113): fmt: the formatted text parses to different statements (a valueless option moved in front of the others)
network a_b.c
block w() {
input 2x2x1  # 
block b1(c, k) {
  conv 3 1 32 bn=off
  conv 1 k 50 relu bias # }=on
  conv 3 1 17
}
block b2(c, k) {
}  # end
block b3(c, k) {
  conv k 1 13 slope=1 leaky
}
w()
}
l1: gap
repeat 5 {
  conv 1 1 16 / 2 bn
}
fc 4 act=leaky slope=0.2
conv1: pool 1 3
l3: inception<2,4,1 * 0,2,4,0 / 2> act=leaky
