// Channel concatenation of inputs with equal height and width.
// inp_i is (B,H,W,C_i), out is (B,H,W,ΣC_i); input i occupies channels [offset_i, offset_i + C_i)
// Forward saves nothing; backward adds each channel slice of dout to its input's gradient.

/// Concatenation kernel.
final class ConcatKernel: EngineKernel {
    let pixelsPerSample: Int
    let outChannels: Int
    let inputChannels: [Int]
    let inputs: [UnsafeMutablePointer<Float>]
    let inputGrads: [UnsafeMutablePointer<Float>?]
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?

    init(storage s: NodeStorage) {
        pixelsPerSample = s.outputShape.height * s.outputShape.width
        outChannels = s.outputShape.channels
        inputChannels = s.inputShapes.map(\.channels)
        inputs = s.inputs
        inputGrads = s.inputGrads
        output = s.output
        outputGrad = s.outputGrad
    }

    func forward(batch: Int, training: Bool) {
        let pixels = batch * pixelsPerSample, oc = outChannels
        var offset = 0
        for (index, x) in inputs.enumerated() {
            let c = inputChannels[index]
            let (src, dst) = (UnsafePointer(x), output + offset)
            let chunks = elementwiseChunks(pixels * c)
            parallelFor(chunks) { chunk in
                for p in chunkRange(chunk, of: chunks, count: pixels) {
                    (dst + p * oc).update(from: src + p * c, count: c)
                }
            }
            offset += c
        }
    }

    func backward(batch: Int) {
        guard let dOut = outputGrad else { return }
        let pixels = batch * pixelsPerSample, oc = outChannels
        var offset = 0
        for (index, grad) in inputGrads.enumerated() {
            let c = inputChannels[index]
            defer { offset += c }
            guard let dx = grad else { continue }
            let dy = UnsafePointer(dOut + offset)
            let chunks = elementwiseChunks(pixels * c)
            parallelFor(chunks) { chunk in
                for p in chunkRange(chunk, of: chunks, count: pixels) {
                    let (from, to) = (dy + p * oc, dx + p * c)
                    for ch in 0..<c { to[ch] += from[ch] }
                }
            }
        }
    }
}
