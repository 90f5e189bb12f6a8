// Adaptive average pooling to OH×OW with PyTorch's bins (AdaptiveAvgPool2d).
// inp is (B,H,W,C), out is (B,OH,OW,C)
// Output row i averages input rows floor(i·H/OH) ..< ceil((i+1)·H/OH) (columns alike); bins
// may overlap (H not a multiple of OH) and, when OH > H, repeat rows.
// Forward saves nothing; backward spreads dy/area over each bin. Both are `WindowAverage`'s
// (AvgPool.swift) with these bins as windows: forward runs one job per output row (disjoint
// outputs), backward one job per sample (bins of a sample may overlap), each in a fixed order:
// results do not depend on the thread count.

/// The first and one-past-last input index of adaptive bin `i` of `outSize` over `inSize`.
@inline(__always) func adaptiveBin(_ i: Int, _ outSize: Int, _ inSize: Int) -> Range<Int> {
    (i * inSize / outSize)..<(((i + 1) * inSize + outSize - 1) / outSize)
}

/// Adaptive bin `i` as a pooling window: averages the inputs it covers.
@inline(__always) func adaptiveWindow(_ i: Int, _ outSize: Int, _ inSize: Int) -> PoolWindow {
    let bin = adaptiveBin(i, outSize, inSize)
    return PoolWindow(summed: bin, divisor: bin.count)
}

/// Adaptive-average-pooling kernel.
final class AdaptiveAvgPoolKernel: EngineKernel {
    let io: UnaryTensors

    init(storage s: NodeStorage) {
        io = UnaryTensors(s)
    }

    func forward(batch: Int, training: Bool) {
        let (h, w, oh, ow) = (io.inShape.height, io.inShape.width, io.outShape.height, io.outShape.width)
        WindowAverage.forward(io, batch: batch, rows: { adaptiveWindow($0, oh, h) }, cols: { adaptiveWindow($0, ow, w) })
    }

    /// Backward stores the input gradient (`storeInputGradient`).
    var storesInputGradient = false
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient = true; return true }

    func backward(batch: Int) {
        let (h, w, oh, ow) = (io.inShape.height, io.inShape.width, io.outShape.height, io.outShape.width)
        WindowAverage.backward(io, batch: batch, zeroFirst: storesInputGradient, rows: { adaptiveWindow($0, oh, h) },
                               cols: { adaptiveWindow($0, ow, w) })
    }
}
