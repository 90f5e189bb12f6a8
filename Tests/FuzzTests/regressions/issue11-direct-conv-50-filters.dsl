# issue 11: the engine segfaulted in gatherTile8x48 (few input channels, >= 48 filters not a multiple of 16)
input 8x8x3
conv 3 1 50
