// Global average pooling.
// inp is (B,H,W,C), out is (B,1,1,C)
// Forward saves nothing.

/// Global-average-pooling kernel: out[n,c] = mean over h,w of inp[n,h,w,c].
final class GlobalAvgPoolKernel: EngineKernel {
    let io: UnaryTensors

    init(storage s: NodeStorage) {
        io = UnaryTensors(s)
    }

    func forward(batch: Int, training: Bool) {
        let pixels = io.inShape.height * io.inShape.width, c = io.inShape.channels
        let (x, y) = (UnsafePointer(io.input), io.output)
        let scale = 1 / Float(pixels)
        parallelFor(batch) { sample in
            let xs = x + sample * pixels * c
            let dst = y + sample * c
            dst.update(repeating: 0, count: c)
            for pixel in 0..<pixels {
                let src = xs + pixel * c
                for ch in 0..<c { dst[ch] += src[ch] }
            }
            for ch in 0..<c { dst[ch] *= scale }
        }
    }

    func backward(batch: Int) {
        guard let dIn = io.inputGrad, let dOut = io.outputGrad else { return }
        let pixels = io.inShape.height * io.inShape.width, c = io.inShape.channels
        let scale = 1 / Float(pixels)
        parallelFor(batch) { sample in
            let dx = dIn + sample * pixels * c
            let dy = dOut + sample * c
            for pixel in 0..<pixels {
                let dst = dx + pixel * c
                for ch in 0..<c { dst[ch] += dy[ch] * scale }
            }
        }
    }
}
