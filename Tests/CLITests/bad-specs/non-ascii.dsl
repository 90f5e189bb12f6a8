# non-ASCII outside comments (fine inside: × α)
# expect: 5:12: error: unexpected character '×' (specs are plain ASCII outside comments)
# expect: 7:10: error: unexpected character 'α' (specs are plain ASCII outside comments)
input 32x32x3
conv 3 1 8 × 2
dropout 0.5 # 50 % — fine here
conv 3 1 α
