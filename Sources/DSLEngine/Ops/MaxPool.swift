// Max pooling, PyTorch semantics (padding acts as −∞; windows clipped to the input).
// inp is (B,H,W,C), out is (B,OH,OW,C), argmax is (B,OH,OW,C) Int32 offsets into one input sample
// Forward saves only the argmax indices (training); backward scatters dY to them.

/// Max-pooling kernel; ties pick the first maximum in (kh, kw) order, like PyTorch.
final class MaxPoolKernel: EngineKernel {
    let inShape: EngineShape
    let outShape: EngineShape
    let kernel: Int
    let stride: Int
    let pad: Int
    let input: UnsafeMutablePointer<Float>
    let inputGrad: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?
    let argmax: UnsafeMutablePointer<Int32>?

    init(kernel: Int, stride: Int, pad: Int, storage s: NodeStorage) {
        inShape = s.inputShapes[0]
        outShape = s.outputShape
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
        input = s.inputs[0]
        inputGrad = s.inputGrads[0]
        output = s.output
        outputGrad = s.outputGrad
        argmax = s.saved.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Int32.self) }
    }

    func forward(batch: Int, training: Bool) {
        let (h, w, c) = (inShape.height, inShape.width, inShape.channels)
        let (oh, ow) = (outShape.height, outShape.width)
        let (k, s, p) = (kernel, stride, pad)
        let (x, y) = (UnsafePointer(input), output)
        let indices = training ? argmax : nil
        parallelFor(batch * oh) { job in
            let sample = job / oh, outRow = job % oh
            let xs = x + sample * h * w * c
            let rowStart = max(0, outRow * s - p), rowEnd = min(h, outRow * s - p + k)
            for outCol in 0..<ow {
                let colStart = max(0, outCol * s - p), colEnd = min(w, outCol * s - p + k)
                let outOffset = (job * ow + outCol) * c
                let dst = y + outOffset
                dst.update(repeating: -Float.infinity, count: c)
                if let indices = indices {
                    let idx = indices + outOffset
                    idx.update(repeating: 0, count: c)
                    for ih in rowStart..<rowEnd {
                        for iw in colStart..<colEnd {
                            let offset = (ih * w + iw) * c
                            let src = xs + offset
                            for ch in 0..<c {
                                let v = src[ch], better = v > dst[ch]
                                dst[ch] = better ? v : dst[ch]
                                idx[ch] = better ? Int32(offset + ch) : idx[ch]
                            }
                        }
                    }
                } else {
                    for ih in rowStart..<rowEnd {
                        for iw in colStart..<colEnd {
                            let src = xs + (ih * w + iw) * c
                            for ch in 0..<c { dst[ch] = max(dst[ch], src[ch]) }
                        }
                    }
                }
            }
        }
    }

    func backward(batch: Int) {
        guard let dIn = inputGrad, let dOut = outputGrad, let indices = argmax else { return }
        let inCount = inShape.count, outCount = outShape.count
        // One job per sample: samples scatter into disjoint parts of dIn, in a fixed order.
        parallelFor(batch) { sample in
            let dx = dIn + sample * inCount
            let dy = dOut + sample * outCount
            let idx = indices + sample * outCount
            for i in 0..<outCount { dx[Int(idx[i])] += dy[i] }
        }
    }
}
