// Sibling 1×1 convolutions as one GEMM (graphs compiled for inference only).
// inp is (B,H,W,IC); sibling s is a 1×1, stride-1, unpadded convolution of inp with weight
// (1,1,IC,OC_s) and bias (OC_s); out_s is (B,H,W,OC_s).
//
// An inception module's 1×1 branch and its 3×3 and 5×5 reductions read one tensor. GoogLeNet's
// 3a runs (12544×192)·(192×64), (12544×192)·(192×96) and (12544×192)·(192×16): alone, the 16-
// column product runs the micro-kernel's 8×16 variant, which multiplies one column group per
// broadcast of A (Gemm.swift; the 64-column one did too before the 6×64 tile), and the input
// is read three times; side by side they are one (12544×192)·(192×176) product of whole
// 48-column panels but one.
//
// EngineGraph.compile (inference only, `EngineGraph.fusesPointwiseSiblings`) makes the first
// sibling in node order the group's leader: its forward runs the group (each sibling alone, in
// node order, when a call has fewer than `pointwiseSiblingMinRows` rows), the others' forward
// does nothing (`ConvKernel.runBySibling`), and the memory plan keeps every sibling's output
// from the leader's step on. The leader cuts the rows into chunks of `pointwiseSiblingChunkRows`
// (so that the side-by-side result C of a chunk stays in the last-level cache), and per chunk
//   C = inp[rows] · [W_0 | W_1 | …]            (sgemm, beta 0, weights copied side by side)
//   out_s[rows] = C[rows, cols of s] + bias_s  (max(·, 0) with a fused ReLU; copied as it is
//                                              when s has neither; storeConvRow, as ConvKernel)
// Every element of C is the chain acc = fma(a, b, acc) in k order from +0 whatever the shape
// of the product (Gemm.swift), and the bias and ReLU are applied by the same function as in
// `ConvKernel.forward` (storeConvRow): the outputs are bit for bit those of the separate convolutions
// (PointwiseSiblingTests). A batch norm folded into a sibling (`foldedNorm`) is folded into the
// weights copied for it.

/// Rows (pixels) per chunk (a test hook). Each chunk's sgemm splits its rows into tasks that
/// pack the side-by-side weights (up to IC·N floats) each: GoogLeNet's 5b (784 rows, N = 624,
/// IC = 832) took 7.9 ms in chunks of 1 MiB of result against 5.5 ms as separate GEMMs, 3b's
/// 16.0 ms against 16.2; in chunks of 4096 rows (a result of 4.5 MiB for 3b, N = 288) the
/// packing is amortised as in one GEMM over all rows.
nonisolated(unsafe) var pointwiseSiblingChunkRows = 4096

/// Fewest rows (batch × pixels) for which a call runs the group as one GEMM; below, each
/// sibling runs its own (a test hook). Measured (PointwiseSiblingBenchTests, DSL_BENCH_GROUPS=1,
/// GoogLeNet at batch 16): 14×14 maps (3136 rows) 6.3-11.1 ms as one GEMM against 7.7-12.2 ms
/// separately; 7×7 maps (784 rows, 448-624 columns) 4.8 and 6.8 ms against 4.8 and 5.9 ms,
/// where copying the side-by-side weights (IC·N floats) per call weighs against few rows.
nonisolated(unsafe) var pointwiseSiblingMinRows = 2048

/// The leader's buffers in the graph's shared convolution workspace.
struct PointwiseSiblingLayout {
    /// Rows per chunk.
    let chunkRows: Int
    /// Byte offsets of the side-by-side weights (IC × N), biases (N) and chunk result (rows × N).
    let weights: Int, bias: Int, result: Int
    let layout: MemoryLayout64

    /// For `inChannels` input channels, `columns` output channels in all and at most `maxRows`
    /// pixels per call.
    init(inChannels: Int, columns: Int, maxRows: Int) {
        chunkRows = max(1, min(maxRows, pointwiseSiblingChunkRows))
        var l = MemoryLayout64()
        weights = l.floats(inChannels * columns)
        bias = l.floats(columns)
        result = l.floats(chunkRows * columns)
        layout = l
    }
}

extension ConvKernel {
    /// Makes this convolution the leader of `group` (itself first, then the other 1×1
    /// convolutions of the same input), with its buffers at `workspace` (at least
    /// `PointwiseSiblingLayout(...).layout.bytes`); the others' forward then does nothing.
    func lead(_ group: [ConvKernel], workspace: UnsafeMutableRawPointer, maxBatch: Int) {
        require(group.first === self && group.allSatisfy { $0.isPointwise && $0.io.input == io.input })
        siblings = group
        siblingWorkspace = workspace
        siblingLayout = PointwiseSiblingLayout(inChannels: io.inShape.channels,
                                               columns: group.reduce(0) { $0 + $1.io.outShape.channels },
                                               maxRows: maxBatch * io.inShape.height * io.inShape.width)
        for s in group.dropFirst() { s.runBySibling = true }
    }

    /// The group's forward pass (see the top of the file).
    func forwardSiblings(batch: Int) {
        let rows = batch * io.inShape.height * io.inShape.width
        if rows < pointwiseSiblingMinRows {
            for s in siblings { s.forwardAlone(batch: batch, training: false) }
            return
        }
        let ic = io.inShape.channels
        let n = siblings.reduce(0) { $0 + $1.io.outShape.channels }
        // The layout compiled for; chunks of fewer rows if the hook was lowered since (never more:
        // the workspace holds `plan.chunkRows` rows of result).
        let plan = siblingLayout!
        let chunkRows = max(1, min(plan.chunkRows, pointwiseSiblingChunkRows))
        let base = siblingWorkspace!
        let weights = (base + plan.weights).assumingMemoryBound(to: Float.self)
        let biases = (base + plan.bias).assumingMemoryBound(to: Float.self)
        let result = (base + plan.result).assumingMemoryBound(to: Float.self)
        // Weights and biases side by side; what each sibling stores.
        var targets: [(output: UnsafeMutablePointer<Float>, column: Int, width: Int, bias: UnsafePointer<Float>?, relu: Bool)] = []
        var column = 0
        for s in siblings {
            let oc = s.io.outShape.channels
            let (w, b) = s.forwardParameters(training: false)
            for r in 0..<ic { (weights + r * n + column).update(from: w + r * oc, count: oc) }
            if let b { (biases + column).update(from: b, count: oc) } else { (biases + column).update(repeating: 0, count: oc) }
            targets.append((s.io.output, column, oc, b != nil || s.fusedReLU ? UnsafePointer(biases + column) : nil, s.fusedReLU))
            column += oc
        }
        targets.withUnsafeBufferPointer { targets in
            var r0 = 0
            while r0 < rows {
                let m = min(chunkRows, rows - r0)
                sgemm(false, false, m: m, n: n, k: ic, a: UnsafePointer(io.input + r0 * ic), lda: ic,
                      b: UnsafePointer(weights), ldb: n, beta: 0, c: result, ldc: n)
                let chunks = elementwiseChunks(m * n)
                parallelFor(chunks) { chunk in
                    for r in chunkRange(chunk, of: chunks, count: m) {
                        let src = result + r * n
                        for t in targets {
                            storeConvRow(t.output + (r0 + r) * t.width, from: src + t.column, count: t.width, bias: t.bias, relu: t.relu)
                        }
                    }
                }
                r0 += m
            }
        }
    }
}
