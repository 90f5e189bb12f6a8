// Stage 6: pictures. What a network is (`dsl draw`: its checked graph as SVG or Graphviz dot)
// and what it learned (`dsl visualize`: the All-CNN paper's guided backpropagation beside the
// deconvnet and plain backpropagation, as PNG grids). The image and array formats (PNG, NumPy
// .npy) are written here with the toolchain only. README, "Pictures".
