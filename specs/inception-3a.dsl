# Inception (3a) with 1x1 reductions: Szegedy et al., "Going Deeper with Convolutions",
# Figure 2(b) and Table 1. Worked example: 1x1x192x64 + (1x1x192x96 + 3x3x96x128)
# + (1x1x192x16 + 5x5x16x32) = 157,184 weights (plus 192x32 for the pool projection:
# 163,328 weights, 128,049,152 MACs, as in Table 1).

network inception-3a
input 28x28x192

3a: inception<64, 96, 128, 16, 32, 32>
