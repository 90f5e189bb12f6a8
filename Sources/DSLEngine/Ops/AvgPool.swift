// Average pooling, PyTorch semantics with count_include_pad=True: the divisor counts the window
// clipped to input+padding (padded zeros included), the sum runs over the window clipped to the input.
// inp is (B,H,W,C), out is (B,OH,OW,C)
// Forward saves nothing.

/// Average-pooling kernel.
final class AvgPoolKernel: EngineKernel {
    let io: UnaryTensors
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
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let (k, s, p) = (kernel, stride, pad)
        let (x, y) = (UnsafePointer(io.input), io.output)
        parallelFor(batch * oh) { job in
            let sample = job / oh, outRow = job % oh
            let xs = x + sample * h * w * c
            let top = outRow * s - p
            let rowStart = max(0, top), rowEnd = min(h, top + k)
            let paddedRows = min(top + k, h + p) - top
            for outCol in 0..<ow {
                let left = outCol * s - p
                let colStart = max(0, left), colEnd = min(w, left + k)
                let scale = 1 / Float(paddedRows * (min(left + k, w + p) - left))
                let dst = y + (job * ow + outCol) * c
                dst.update(repeating: 0, count: c)
                for ih in rowStart..<rowEnd {
                    for iw in colStart..<colEnd {
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
        let (k, s, p) = (kernel, stride, pad)
        // One job per sample: windows overlap within a sample, so a sample is one sequential job.
        parallelFor(batch) { sample in
            let dx = dIn + sample * h * w * c
            for outRow in 0..<oh {
                let top = outRow * s - p
                let rowStart = max(0, top), rowEnd = min(h, top + k)
                let paddedRows = min(top + k, h + p) - top
                for outCol in 0..<ow {
                    let left = outCol * s - p
                    let colStart = max(0, left), colEnd = min(w, left + k)
                    let scale = 1 / Float(paddedRows * (min(left + k, w + p) - left))
                    let dy = dOut + ((sample * oh + outRow) * ow + outCol) * c
                    for ih in rowStart..<rowEnd {
                        for iw in colStart..<colEnd {
                            let dst = dx + (ih * w + iw) * c
                            for ch in 0..<c { dst[ch] += dy[ch] * scale }
                        }
                    }
                }
            }
        }
    }
}
