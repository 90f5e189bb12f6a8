// Elementwise product of two or more inputs (squeeze-and-excitation's channel scaling).
// inp_i is (B,H,W,C) or (B,1,1,C) (broadcast over H×W), out is (B,H,W,C)
// y = Π_i x_i; backward dx_i += dy · Π_{j≠i} x_j, summed over H×W for a broadcast input
// (two inputs, the usual case, directly; more through a per-thread row of partial products).
// Forward saves nothing (backward re-reads the inputs, kept alive by the planner). Products
// run in input order; each output element, and each broadcast gradient (one sample's pixels in
// order), is computed by one chain whatever the thread count: results are bit-identical.

/// Product kernel with 1×1×C inputs broadcast over height and width.
final class MulKernel: EngineKernel {
    let pixels: Int
    let channels: Int
    let inputs: [UnsafeMutablePointer<Float>]
    /// Whether input i is 1×1×C broadcast over the output's pixels (and the output is larger).
    let broadcast: [Bool]
    let inputGrads: [UnsafeMutablePointer<Float>?]
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?
    /// The input pointers, hoisted out of Swift arrays for the loops.
    let inputPointers: UnsafeMutablePointer<UnsafePointer<Float>>
    let broadcastFlags: UnsafeMutablePointer<Bool>

    init(storage s: NodeStorage) {
        pixels = s.outputShape.height * s.outputShape.width
        channels = s.outputShape.channels
        inputs = s.inputs
        broadcast = s.inputShapes.map { $0.height * $0.width == 1 && s.outputShape.height * s.outputShape.width > 1 }
        inputGrads = s.inputGrads
        output = s.output
        outputGrad = s.outputGrad
        inputPointers = .allocate(capacity: inputs.count)
        broadcastFlags = .allocate(capacity: inputs.count)
        for i in inputs.indices {
            inputPointers[i] = UnsafePointer(inputs[i])
            broadcastFlags[i] = broadcast[i]
        }
    }

    deinit {
        inputPointers.deallocate()
        broadcastFlags.deallocate()
    }

    /// Bytes of the hoisted input pointers and flags (counted by the memory plan).
    static func ownedBytes(inputs: Int) -> Int { inputs * 9 }
    var ownedScratchBytes: Int { Self.ownedBytes(inputs: inputs.count) }

    /// out[p, c] = Π_{i ≠ skip} x_i[p, c] (skip = −1: all inputs) over the pixel rows `rows`
    /// (batch-wide pixel indices), written to `dst` (row stride C), or multiplied into it.
    @inline(__always)
    private func products(rows: Range<Int>, skip: Int, into dst: UnsafeMutablePointer<Float>, multiply: Bool) {
        let c = channels, pixels = pixels, n = inputs.count
        let xs = inputPointers, bc = broadcastFlags
        var first = !multiply
        for i in 0..<n where i != skip {
            let x = xs[i]
            if bc[i] {
                for p in rows {
                    let src = x + (p / pixels) * c, to = dst + (p - rows.lowerBound) * c
                    if first { to.update(from: src, count: c) } else { for ch in 0..<c { to[ch] *= src[ch] } }
                }
            } else {
                let src = x + rows.lowerBound * c, count = rows.count * c
                if first { dst.update(from: src, count: count) } else { for j in 0..<count { dst[j] *= src[j] } }
            }
            first = false
        }
    }

    func forward(batch: Int, training: Bool) {
        let total = batch * pixels, c = channels
        let y = output
        let chunks = elementwiseChunks(total * c)
        parallelFor(chunks) { chunk in
            let rows = chunkRange(chunk, of: chunks, count: total)
            self.products(rows: rows, skip: -1, into: y + rows.lowerBound * c, multiply: false)
        }
    }

    func backward(batch: Int) {
        guard let dOut = outputGrad else { return }
        let c = channels, pixels = pixels
        let dy = UnsafePointer(dOut)
        for (i, grad) in inputGrads.enumerated() {
            guard let dx = grad else { continue }
            if inputs.count == 2 {
                // Two inputs (squeeze-and-excitation): dx_i += dy · x_other, directly.
                let other = UnsafePointer(inputs[1 - i]), otherBroadcast = broadcast[1 - i]
                if broadcast[i] {
                    // dx[n, c] += Σ_p dy[n, p, c] · other[n, p, c], one job per sample, pixels in order.
                    parallelFor(batch) { sample in
                        let to = dx + sample * c
                        for p in (sample * pixels)..<((sample + 1) * pixels) {
                            let g = dy + p * c, o = otherBroadcast ? other + sample * c : other + p * c
                            for ch in 0..<c { to[ch] += g[ch] * o[ch] }
                        }
                    }
                } else {
                    let total = batch * pixels
                    let chunks = elementwiseChunks(total * c)
                    parallelFor(chunks) { chunk in
                        for p in chunkRange(chunk, of: chunks, count: total) {
                            let g = dy + p * c, to = dx + p * c, o = otherBroadcast ? other + (p / pixels) * c : other + p * c
                            for ch in 0..<c { to[ch] += g[ch] * o[ch] }
                        }
                    }
                }
                continue
            }
            if broadcast[i] {
                // dx[n, c] += Σ_p dy[n, p, c] · Π_{j≠i} x_j[n, p, c]: one job per sample, a row
                // of the product at a time in a per-thread scratch row, summed in pixel order.
                parallelFor(batch) { sample in
                    let row = broadcastScratch.floats(c)
                    let to = dx + sample * c
                    for p in (sample * pixels)..<((sample + 1) * pixels) {
                        self.products(rows: p..<(p + 1), skip: i, into: row, multiply: false)
                        let g = dy + p * c
                        for ch in 0..<c { to[ch] += g[ch] * row[ch] }
                    }
                }
            } else {
                let total = batch * pixels
                let chunks = elementwiseChunks(total * c)
                parallelFor(chunks) { chunk in
                    let rows = chunkRange(chunk, of: chunks, count: total)
                    // dx += dy · Π_{j≠i} x_j, a band of ≤ 64 pixel rows at a time (per-thread scratch).
                    let band = 64
                    let scratch = broadcastScratch.floats(band * c)
                    var start = rows.lowerBound
                    while start < rows.upperBound {
                        let end = min(rows.upperBound, start + band)
                        self.products(rows: start..<end, skip: i, into: scratch, multiply: false)
                        let g = dy + start * c, to = dx + start * c
                        for j in 0..<((end - start) * c) { to[j] += g[j] * scratch[j] }
                        start = end
                    }
                }
            }
        }
    }
}

/// Per-thread rows of partial products for `MulKernel.backward`.
private let broadcastScratch = ThreadScratch()
