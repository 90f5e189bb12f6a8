// A residual add fused into the convolution before it (graphs compiled for inference only).
// conv is (B,H,W,C); r, the add's other input, is (B,H,W,C_r) with C_r ≤ C; out is (B,H,W,C).
//
// A residual network ends each block with conv → batch norm → add(·, shortcut) (PyramidNet,
// ResNet, MobileNetV2's projections). In a graph compiled for inference only the batch norm is
// folded into the convolution (ConvKernel.foldedNorm); when nothing else reads the convolution's
// output and the add has two inputs and the convolution's channels, EngineGraph.compile lets the
// convolution add r as it stores its output (Winograd's output transform, the 1×1 GEMM's bias
// pass), and the add runs in place on it doing nothing (`AddKernel.fused`): the add's pass over
// three tensors disappears (PyramidNet-110's 54 adds were a tenth of its inference).
//
// The add sums in input order over a zero-padded first input (Add.swift):
//   r first:    out[c] = (c < C_r ? r[c] : +0) + conv[c]
//   conv first: out[c] = c < C_r ? conv[c] + r[c] : conv[c]
// Addition of two floats is commutative, so the fused store computes conv + r where r is
// present and, with r first, conv + (+0) where it is not (which turns −0 into +0 as the add's
// sum does), and leaves conv as it is otherwise: the same bits (ResidualAddTests).

/// The other input of the add that alone reads a convolution's output.
struct ConvResidual {
    /// r, (B,H,W,channels).
    let source: UnsafePointer<Float>
    /// C_r.
    let channels: Int
    /// Whether r is the add's first input.
    let isFirst: Bool

    /// conv + r for one pixel's channel c (`bias`-added value v), as the add computes it.
    @inline(__always)
    func added(_ v: Float, _ r: UnsafePointer<Float>, channel c: Int) -> Float {
        c < channels ? v + r[c] : isFirst ? v + 0 : v
    }
}
