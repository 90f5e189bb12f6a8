// Average pooling, PyTorch semantics with count_include_pad=True: the divisor counts the window
// clipped to input+padding (padded zeros included), the sum runs over the window clipped to the input.
// inp is (B,H,W,C), out is (B,OH,OW,C)
// Forward saves nothing. Forward and backward are `WindowAverage`'s (below), shared with adaptive
// and global average pooling, which differ only in their windows.

/// One output index's window along one axis of an average pooling: the input indices summed, and
/// the window's extent that the divisor counts along this axis (it may include padding).
struct PoolWindow {
    let summed: Range<Int>
    let divisor: Int
}

/// Window `i` of average pooling along an axis of `size` inputs (kernel k, stride s, padding p
/// each side): sums the inputs it covers, divides by its extent clipped to input+padding.
@inline(__always) func paddedWindow(_ i: Int, size: Int, kernel k: Int, stride s: Int, pad p: Int) -> PoolWindow {
    let start = i * s - p
    return PoolWindow(summed: max(0, start)..<min(size, start + k), divisor: min(start + k, size + p) - start)
}

/// Window averages on NHWC: out[n,i,j,c] = Σ inp[n, rows(i).summed × cols(j).summed, c] /
/// (rows(i).divisor · cols(j).divisor), and its backward. `rows` and `cols` give each output
/// row's and column's window.
enum WindowAverage {
    /// inp (B,H,W,C) → out (B,OH,OW,C). One job per output row (disjoint outputs); each cell sums
    /// its window row by row, then scales.
    @inline(__always)
    static func forward(_ io: UnaryTensors, batch: Int, rows: (Int) -> PoolWindow, cols: (Int) -> PoolWindow) {
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let (x, y) = (UnsafePointer(io.input), io.output)
        parallelFor(batch * oh) { job in
            let sample = job / oh, outRow = job % oh
            let xs = x + sample * h * w * c
            let row = rows(outRow)
            for outCol in 0..<ow {
                let col = cols(outCol)
                let scale = 1 / Float(row.divisor * col.divisor)
                let dst = y + (job * ow + outCol) * c
                dst.update(repeating: 0, count: c)
                for ih in row.summed {
                    for iw in col.summed {
                        let src = xs + (ih * w + iw) * c
                        for ch in 0..<c { dst[ch] += src[ch] }
                    }
                }
                for ch in 0..<c { dst[ch] *= scale }
            }
        }
    }

    /// dX[window] += dY · scale for every output cell. One job per sample (windows of a sample
    /// may overlap), in a fixed order: results do not depend on the thread count.
    @inline(__always)
    /// `zeroFirst`: the gradient is stored (`EngineKernel.storeInputGradient`), each sample's
    /// part zeroed by its own job before the windows add to it.
    static func backward(_ io: UnaryTensors, batch: Int, zeroFirst: Bool, rows: (Int) -> PoolWindow,
                         cols: (Int) -> PoolWindow) {
        guard let dIn = io.inputGrad, let dOut = io.outputGrad else { return }
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let dy = UnsafePointer(dOut)
        parallelFor(batch) { sample in
            let dx = dIn + sample * h * w * c
            if zeroFirst { dx.update(repeating: 0, count: h * w * c) }
            for outRow in 0..<oh {
                let row = rows(outRow)
                for outCol in 0..<ow {
                    let col = cols(outCol)
                    let scale = 1 / Float(row.divisor * col.divisor)
                    let g = dy + ((sample * oh + outRow) * ow + outCol) * c
                    for ih in row.summed {
                        for iw in col.summed {
                            let dst = dx + (ih * w + iw) * c
                            for ch in 0..<c { dst[ch] += g[ch] * scale }
                        }
                    }
                }
            }
        }
    }
}

/// Average-pooling kernel.
final class AvgPoolKernel: EngineKernel {
    let io: UnaryTensors
    /// Backward stores the input gradient (`storeInputGradient`).
    var storesInputGradient = false
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient = true; return true }
    let kernel: Int
    let stride: Int
    let pad: Int

    init(kernel: Int, stride: Int, pad: Int, storage s: NodeStorage) {
        io = UnaryTensors(s)
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
    }

    func forward(batch: Int, training: Bool) {
        let (h, w, k, s, p) = (io.inShape.height, io.inShape.width, kernel, stride, pad)
        WindowAverage.forward(io, batch: batch,
                              rows: { paddedWindow($0, size: h, kernel: k, stride: s, pad: p) },
                              cols: { paddedWindow($0, size: w, kernel: k, stride: s, pad: p) })
    }

    func backward(batch: Int) {
        let (h, w, k, s, p) = (io.inShape.height, io.inShape.width, kernel, stride, pad)
        WindowAverage.backward(io, batch: batch, zeroFirst: storesInputGradient,
                               rows: { paddedWindow($0, size: h, kernel: k, stride: s, pad: p) },
                               cols: { paddedWindow($0, size: w, kernel: k, stride: s, pad: p) })
    }
}
