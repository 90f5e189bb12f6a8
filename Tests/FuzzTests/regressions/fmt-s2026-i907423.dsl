# fuzz regression (dsl-fuzz --seed 2026, input 907423): fmt: a file of only CRLF formats to no text (an oracle false positive: text without a line break has no line ending)

