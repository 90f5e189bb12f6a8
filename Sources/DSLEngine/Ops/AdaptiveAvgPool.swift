// Adaptive average pooling to OH×OW with PyTorch's bins (AdaptiveAvgPool2d).
// inp is (B,H,W,C), out is (B,OH,OW,C)
// Output row i averages input rows floor(i·H/OH) ..< ceil((i+1)·H/OH) (columns alike); bins
// may overlap (H not a multiple of OH) and, when OH > H, repeat rows.
// Forward saves nothing; backward spreads dy/area over each bin. Forward runs one job per
// output row (disjoint outputs); backward one job per sample (bins of a sample may overlap),
// each in a fixed order: results do not depend on the thread count.

/// The first and one-past-last input index of adaptive bin `i` of `outSize` over `inSize`.
@inline(__always) func adaptiveBin(_ i: Int, _ outSize: Int, _ inSize: Int) -> Range<Int> {
    (i * inSize / outSize)..<(((i + 1) * inSize + outSize - 1) / outSize)
}

/// Adaptive-average-pooling kernel.
final class AdaptiveAvgPoolKernel: EngineKernel {
    let io: UnaryTensors

    init(storage s: NodeStorage) {
        io = UnaryTensors(s)
    }

    func forward(batch: Int, training: Bool) {
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let (x, y) = (UnsafePointer(io.input), io.output)
        parallelFor(batch * oh) { job in
            let sample = job / oh, outRow = job % oh
            let xs = x + sample * h * w * c
            let rows = adaptiveBin(outRow, oh, h)
            for outCol in 0..<ow {
                let cols = adaptiveBin(outCol, ow, w)
                let scale = 1 / Float(rows.count * cols.count)
                let dst = y + (job * ow + outCol) * c
                dst.update(repeating: 0, count: c)
                for ih in rows {
                    for iw in cols {
                        let src = xs + (ih * w + iw) * c
                        for ch in 0..<c { dst[ch] += src[ch] }
                    }
                }
                for ch in 0..<c { dst[ch] *= scale }
            }
        }
    }

    func backward(batch: Int) {
        guard let dIn = io.inputGrad, let dOut = io.outputGrad else { return }
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let dy = UnsafePointer(dOut)
        parallelFor(batch) { sample in
            let dx = dIn + sample * h * w * c
            for outRow in 0..<oh {
                let rows = adaptiveBin(outRow, oh, h)
                for outCol in 0..<ow {
                    let cols = adaptiveBin(outCol, ow, w)
                    let scale = 1 / Float(rows.count * cols.count)
                    let g = dy + ((sample * oh + outRow) * ow + outCol) * c
                    for ih in rows {
                        for iw in cols {
                            let dst = dx + (ih * w + iw) * c
                            for ch in 0..<c { dst[ch] += g[ch] * scale }
                        }
                    }
                }
            }
        }
    }
}
