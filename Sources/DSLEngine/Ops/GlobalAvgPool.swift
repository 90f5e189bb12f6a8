// Global average pooling.
// inp is (B,H,W,C), out is (B,1,1,C)
// Forward saves nothing. Forward and backward are `WindowAverage`'s (AvgPool.swift) with one
// window covering the whole map.

/// Global-average-pooling kernel: out[n,c] = mean over h,w of inp[n,h,w,c].
final class GlobalAvgPoolKernel: EngineKernel {
    let io: UnaryTensors

    init(storage s: NodeStorage) {
        io = UnaryTensors(s)
    }

    func forward(batch: Int, training: Bool) {
        let rows = wholeWindow(io.inShape.height), cols = wholeWindow(io.inShape.width)
        WindowAverage.forward(io, batch: batch, rows: { _ in rows }, cols: { _ in cols })
    }

    /// Backward stores the input gradient (`storeInputGradient`).
    var storesInputGradient = false
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient = true; return true }

    func backward(batch: Int) {
        let rows = wholeWindow(io.inShape.height), cols = wholeWindow(io.inShape.width)
        WindowAverage.backward(io, batch: batch, zeroFirst: storesInputGradient, rows: { _ in rows }, cols: { _ in cols })
    }

    /// The one window along an axis of `size` inputs: all of them.
    private func wholeWindow(_ size: Int) -> PoolWindow { PoolWindow(summed: 0..<size, divisor: size) }
}
