// Elementwise sum of inputs with equal height and width (PyramidNet shortcut semantics).
// inp_i is (B,H,W,C_i), out is (B,H,W,C) with C = max C_i; input i is zero-padded to C channels
// (it fills channels [0, C_i)). Sums in input order, so results do not depend on threads.
// Forward saves nothing; backward adds the first C_i channels of dout to input i's gradient.

/// Addition kernel with zero-padded channels.
final class AddKernel: EngineKernel {
    /// The merge's tensors and channel counts.
    let t: MergeTensors

    init(storage s: NodeStorage) {
        t = MergeTensors(s)
        storesInputGradient = [Bool](repeating: false, count: s.inputs.count)
    }

    /// Set at compile time (inference only) when the convolution whose output is one input adds
    /// the other as it stores, in place of this output (ResidualAdd.swift): forward does nothing.
    var fused = false

    func forward(batch: Int, training: Bool) {
        if fused && !training { return }
        let pixels = batch * t.pixelsPerSample, oc = t.outChannels
        let y = t.output
        for (index, x) in t.inputs.enumerated() {
            let c = t.inputChannels[index]
            let src = UnsafePointer(x)
            let isFirst = index == 0
            let chunks = elementwiseChunks(pixels * oc)
            parallelFor(chunks) { chunk in
                let rows = chunkRange(chunk, of: chunks, count: pixels)
                if c == oc {
                    let range = (rows.lowerBound * oc)..<(rows.upperBound * oc)
                    if isFirst {
                        (y + range.lowerBound).update(from: src + range.lowerBound, count: range.count)
                    } else {
                        for i in range { y[i] += src[i] }
                    }
                    return
                }
                for p in rows {
                    let (from, to) = (src + p * c, y + p * oc)
                    if isFirst {
                        to.update(from: from, count: c)
                        (to + c).update(repeating: 0, count: oc - c)
                    } else {
                        for ch in 0..<c { to[ch] += from[ch] }
                    }
                }
            }
        }
    }

    /// Inputs whose gradient backward stores (`storeInputGradient`).
    var storesInputGradient: [Bool]
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient[input] = true; return true }

    func backward(batch: Int) {
        guard let dOut = t.outputGrad else { return }
        let pixels = batch * t.pixelsPerSample, oc = t.outChannels
        let dy = UnsafePointer(dOut)
        for (index, grad) in t.inputGrads.enumerated() {
            guard let dx = grad else { continue }
            let (c, store) = (t.inputChannels[index], storesInputGradient[index])
            let chunks = elementwiseChunks(pixels * c)
            parallelFor(chunks) { chunk in
                let rows = chunkRange(chunk, of: chunks, count: pixels)
                if c == oc {
                    updateGradient(dx, (rows.lowerBound * c)..<(rows.upperBound * c), store: store) { i in dy[i] }
                    return
                }
                for p in rows {
                    let (from, to) = (dy + p * oc, dx + p * c)
                    updateGradient(to, 0..<c, store: store) { ch in from[ch] }
                }
            }
        }
    }
}
