# more than 64 nested braces
# expect: 68:8: error: nesting is too deep (more than 64 levels)
input 8x8x3
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
repeat 1 {
relu
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
}
