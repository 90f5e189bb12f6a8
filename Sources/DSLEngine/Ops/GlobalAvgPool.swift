// Global average pooling.
// inp is (B,H,W,C), out is (B,1,1,C)
// Forward saves nothing.

/// Global-average-pooling kernel: out[n,c] = mean over h,w of inp[n,h,w,c].
final class GlobalAvgPoolKernel: EngineKernel {
    let inShape: EngineShape
    let input: UnsafeMutablePointer<Float>
    let inputGrad: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?

    init(storage s: NodeStorage) {
        inShape = s.inputShapes[0]
        input = s.inputs[0]
        inputGrad = s.inputGrads[0]
        output = s.output
        outputGrad = s.outputGrad
    }

    func forward(batch: Int, training: Bool) {
        let pixels = inShape.height * inShape.width, c = inShape.channels
        let (x, y) = (UnsafePointer(input), output)
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
        guard let dIn = inputGrad, let dOut = outputGrad else { return }
        let pixels = inShape.height * inShape.width, c = inShape.channels
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
