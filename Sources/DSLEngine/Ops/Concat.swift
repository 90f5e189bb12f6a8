// Channel concatenation of inputs with equal height and width.
// inp_i is (B,H,W,C_i), out is (B,H,W,ΣC_i); input i occupies channels [offset_i, offset_i + C_i)
// Forward saves nothing; backward adds each channel slice of dout to its input's gradient.

/// Concatenation kernel.
final class ConcatKernel: EngineKernel {
    /// The merge's tensors and channel counts.
    let t: MergeTensors

    init(storage s: NodeStorage) { t = MergeTensors(s) }

    func forward(batch: Int, training: Bool) {
        let pixels = batch * t.pixelsPerSample, oc = t.outChannels
        var offset = 0
        for (index, x) in t.inputs.enumerated() {
            let c = t.inputChannels[index]
            let (src, dst) = (UnsafePointer(x), t.output + offset)
            let chunks = elementwiseChunks(pixels * c)
            parallelFor(chunks) { chunk in
                for p in chunkRange(chunk, of: chunks, count: pixels) {
                    (dst + p * oc).update(from: src + p * c, count: c)
                }
            }
            offset += c
        }
    }

    /// Inputs whose gradient backward stores (`storeInputGradient`).
    lazy var storesInputGradient = [Bool](repeating: false, count: t.inputGrads.count)
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient[input] = true; return true }

    func backward(batch: Int) {
        guard let dOut = t.outputGrad else { return }
        let pixels = batch * t.pixelsPerSample, oc = t.outChannels
        var offset = 0
        for (index, grad) in t.inputGrads.enumerated() {
            let c = t.inputChannels[index]
            defer { offset += c }
            guard let dx = grad else { continue }
            let (dy, store) = (UnsafePointer(dOut + offset), storesInputGradient[index])
            let chunks = elementwiseChunks(pixels * c)
            parallelFor(chunks) { chunk in
                for p in chunkRange(chunk, of: chunks, count: pixels) {
                    let (from, to) = (dy + p * oc, dx + p * c)
                    updateGradient(to, 0..<c, store: store) { ch in from[ch] }
                }
            }
        }
    }
}
