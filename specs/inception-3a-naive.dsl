# Inception (3a) without 1x1 reductions: the "naive" module of Szegedy et al., "Going Deeper
# with Convolutions", Figure 2(a), with the widths of Table 1. A reduce width of 0 means no
# reduction. Worked example: 1x1x192x64 + 3x3x192x128 + 5x5x192x32 = 387,072 weights
# (plus 192x32 for the pool projection).

network inception-3a-naive
input 28x28x192

3a: inception<64, 0, 128, 0, 32, 32>
