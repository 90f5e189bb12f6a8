// Tensor layouts of the CPU engine.
//
// Activations are NHWC fp32: a tensor of shape (B,H,W,C) stores element (n,h,w,c) at
// ((n·H + h)·W + w)·C + c, channels innermost. Every activation buffer is sized for `maxBatch`
// samples; a pass over `batch` samples uses the first batch·H·W·C floats.
//
// Convolution weights are (KH,KW,IC,OC), so that with im2col of an NHWC input, whose row
// (n,oh,ow) holds the KH·KW·IC values under the kernel window in (kh,kw,ic) order, a convolution
// is one plain row-major GEMM:
//     out[B·OH·OW, OC] = col[B·OH·OW, KH·KW·IC] × W[KH·KW·IC, OC]
// A 1×1 stride-1 unpadded convolution skips im2col (the input already is `col`). Other
// convolutions run direct kernels that form these im2col rows on the fly (Ops/DirectConv.swift);
// im2col + GEMM remains the fallback.
// Backward-data:    dcol = dY × Wᵀ, then col2im accumulates dcol into dX.
// Backward-weights: dW  += colᵀ × dY.
//
// Linear weights are (IN,OUT) with IN = H·W·C of the flattened NHWC input:
//     out[B, OUT] = inp[B, H·W·C] × W[H·W·C, OUT]
//
// Parameters live in one contiguous block (values) and a second one of equal size (gradients),
// in node order, weight before bias. Gradients are always accumulated (+=): backward zeroes
// the parameter gradients once, and each activation gradient right before its first writer.

/// The per-sample shape of an activation tensor: height × width × channels (NHWC, batch outermost).
public struct EngineShape: Equatable, Hashable, CustomStringConvertible {
    /// Rows of the feature map.
    public var height: Int
    /// Columns of the feature map.
    public var width: Int
    /// Channels (innermost in memory).
    public var channels: Int

    /// Creates a shape from height, width and channels.
    public init(height: Int, width: Int, channels: Int) {
        self.height = height
        self.width = width
        self.channels = channels
    }

    /// Number of floats of one sample: height·width·channels.
    public var count: Int { height * width * channels }

    /// "H×W×C".
    public var description: String { "\(height)×\(width)×\(channels)" }
}

/// A shape error found while adding a node to an `EngineGraph`.
public struct EngineGraphError: Error, Equatable, CustomStringConvertible {
    /// What is wrong, naming the node.
    public let message: String

    /// Creates an error with the given message.
    public init(_ message: String) { self.message = message }

    /// The message.
    public var description: String { message }
}
