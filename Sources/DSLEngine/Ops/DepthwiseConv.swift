// Depthwise convolution (groups = input channels = output channels), NHWC, any rectangular
// kernel, stride, padding and dilation.
// inp is (B,H,W,C), weight is (KH,KW,1,C), bias is (C), out is (B,OH,OW,C)
//     y[n,oh,ow,c] = b[c] + Σ_{kh,kw} x[n, oh·SH − padTop + kh·DH, ow·SW − padLeft + kw·DW, c]·w[kh,kw,c]
// Forward saves nothing (backward re-reads the input).
//
// It does ~KH·KW FMAs per value read, so it is memory-bound: the kernels stream the tensors
// once, 16 channels (one SIMD16<Float>, a 64-byte line) at a time, with the taps that fall
// inside the input precomputed once per layer (`TapList`: for every output row the valid
// (kh, input row) pairs, for every output column the valid (kw, input column) pairs; for
// backward-data the inverse lists, input row → (kh, output row)), so the loops have no bound
// checks and no division. `dsl`'s `DepthwiseBenchTests` reports GB/s against a stream copy.
//   forward         one job per band of output rows; each output vector is one FMA chain
//                   from the bias over the valid taps in (kh, kw) order.
//   backward-data   gather form, one job per band of input rows: dx[ih,iw] += Σ over the
//                   output pixels that read it of dy·w (no two jobs write the same dX).
//   backward-weights and bias: the output rows (n, oh) are cut into `depthwiseReductionChunks`
//                   fixed ranges (a function of the batch only), each summing x·dy and dy into
//                   its own partial (KH·KW·C + C floats in the shared convolution workspace);
//                   the partials are then added to dW and dB in chunk order.
// Every element is computed by one chain in a fixed order: 1 and 2 threads agree bit for bit.

// File-local vector load and store: DirectConv.swift's `ld`/`st` are not inlined across files
// in debug builds (no whole-module optimisation), which made every vector load a call.
@inline(__always) private func load(_ p: UnsafePointer<Float>) -> DV { UnsafeRawPointer(p).loadUnaligned(as: DV.self) }
@inline(__always) private func load(_ p: UnsafeMutablePointer<Float>) -> DV { UnsafeRawPointer(p).loadUnaligned(as: DV.self) }
@inline(__always) private func store(_ p: UnsafeMutablePointer<Float>, _ v: DV) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: DV.self)
}

/// Partial sums of the depthwise weight gradient (fixed, so results do not depend on threads).
let depthwiseReductionChunks = 16

/// For every output index i of one axis, the taps k whose input index i·stride − pad + k·dilation
/// lies inside 0..<size, as (k, input index) pairs; or the inverse (for every input index, the
/// (k, output index) pairs that read it).
struct TapList {
    /// start[i] ..< start[i+1] index `tap` and `other`.
    let start: UnsafeMutablePointer<Int>
    let tap: UnsafeMutablePointer<Int>
    let other: UnsafeMutablePointer<Int>
    let count: Int

    /// Output → input taps (inverse false) or input → output taps (inverse true).
    init(outSize: Int, inSize: Int, kernel: Int, stride: Int, pad: Int, dilation: Int, inverse: Bool) {
        var pairs: [[(Int, Int)]] = Array(repeating: [], count: inverse ? inSize : outSize)
        for o in 0..<outSize {
            for k in 0..<kernel {
                let i = o * stride - pad + k * dilation
                if i < 0 || i >= inSize { continue }
                if inverse { pairs[i].append((k, o)) } else { pairs[o].append((k, i)) }
            }
        }
        count = pairs.count
        let total = pairs.reduce(0) { $0 + $1.count }
        start = .allocate(capacity: count + 1)
        tap = .allocate(capacity: max(1, total))
        other = .allocate(capacity: max(1, total))
        var at = 0
        for (i, list) in pairs.enumerated() {
            start[i] = at
            for (k, j) in list { tap[at] = k; other[at] = j; at += 1 }
        }
        start[count] = at
    }

    var bytes: Int { 8 * (count + 1 + 2 * max(1, start[count])) }

    func deallocate() {
        start.deallocate(); tap.deallocate(); other.deallocate()
    }
}

/// The loops of the depthwise kernel, on hoisted pointers and sizes (a value captured by the
/// parallel closures).
struct DepthwiseLoops {
    let h: Int, w: Int, c: Int, oh: Int, ow: Int, kw: Int, area: Int
    let rows: TapList, cols: TapList, rowsBack: TapList, colsBack: TapList

    /// y row `r` (= n·OH + oh) = bias + Σ taps x·w (`bias` holds C floats, zeros without a bias).
    @inline(__always)
    func forwardRow(_ r: Int, x: UnsafePointer<Float>, wt: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                    y: UnsafeMutablePointer<Float>) {
        let (n, o) = (r / oh, r % oh)
        let (w, c, kw) = (w, c, kw)
        let xs = x + n * h * w * c
        let (r0, r1) = (rows.start[o], rows.start[o + 1])
        let (rowTap, rowOther) = (rows.tap, rows.other)
        let (colStart, colTap, colOther) = (cols.start, cols.tap, cols.other)
        let c16 = c & ~15
        for q in 0..<ow {
            let (c0, c1) = (colStart[q], colStart[q + 1])
            let dst = y + (r * ow + q) * c
            var ch = 0
            while ch < c16 {
                var acc = load(bias + ch)
                for a in r0..<r1 {
                    let xr = xs + rowOther[a] * w * c + ch, wr = wt + rowTap[a] * kw * c + ch
                    for b in c0..<c1 { acc.addProduct(load(xr + colOther[b] * c), load(wr + colTap[b] * c)) }
                }
                store(dst + ch, acc)
                ch += 16
            }
            while ch < c {
                var acc = bias[ch]
                for a in r0..<r1 {
                    let xr = xs + rowOther[a] * w * c + ch, wr = wt + rowTap[a] * kw * c + ch
                    for b in c0..<c1 { acc = acc.addingProduct(xr[colOther[b] * c], wr[colTap[b] * c]) }
                }
                dst[ch] = acc
                ch += 1
            }
        }
    }

    /// dx row `r` (= n·H + ih) += Σ over the output pixels reading it of dy·w.
    @inline(__always)
    func dataRow(_ r: Int, dy: UnsafePointer<Float>, wt: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let (n, i) = (r / h, r % h)
        let dys = dy + n * oh * ow * c
        let (r0, r1) = (rowsBack.start[i], rowsBack.start[i + 1])
        let c16 = c & ~15
        for q in 0..<w {
            let (c0, c1) = (colsBack.start[q], colsBack.start[q + 1])
            let dst = dx + (r * w + q) * c
            var ch = 0
            while ch < c16 {
                var acc = load(dst + ch)
                for a in r0..<r1 {
                    let gr = dys + rowsBack.other[a] * ow * c + ch, wr = wt + rowsBack.tap[a] * kw * c + ch
                    for b in c0..<c1 { acc.addProduct(load(gr + colsBack.other[b] * c), load(wr + colsBack.tap[b] * c)) }
                }
                store(dst + ch, acc)
                ch += 16
            }
            while ch < c {
                var acc = dst[ch]
                for a in r0..<r1 {
                    let gr = dys + rowsBack.other[a] * ow * c + ch, wr = wt + rowsBack.tap[a] * kw * c + ch
                    for b in c0..<c1 { acc = acc.addingProduct(gr[colsBack.other[b] * c], wr[colsBack.tap[b] * c]) }
                }
                dst[ch] = acc
                ch += 1
            }
        }
    }

    /// partial[(kh·KW + kw)·C + c] += Σ x·dy and partial[KH·KW·C + c] += Σ dy over output row `r`.
    @inline(__always)
    func weightRow(_ r: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, partial: UnsafeMutablePointer<Float>) {
        let (n, o) = (r / oh, r % oh)
        let xs = x + n * h * w * c
        let (r0, r1) = (rows.start[o], rows.start[o + 1])
        let c16 = c & ~15
        let pb = partial + area * c
        for q in 0..<ow {
            let (c0, c1) = (cols.start[q], cols.start[q + 1])
            let g = dy + (r * ow + q) * c
            var ch = 0
            while ch < c16 {
                let gv = load(g + ch)
                store(pb + ch, load(pb + ch) + gv)
                for a in r0..<r1 {
                    let xr = xs + rows.other[a] * w * c + ch, pr = partial + rows.tap[a] * kw * c + ch
                    for b in c0..<c1 {
                        let p = pr + cols.tap[b] * c
                        var v = load(p)
                        v.addProduct(load(xr + cols.other[b] * c), gv)
                        store(p, v)
                    }
                }
                ch += 16
            }
            while ch < c {
                let gv = g[ch]
                pb[ch] += gv
                for a in r0..<r1 {
                    let xr = xs + rows.other[a] * w * c + ch, pr = partial + rows.tap[a] * kw * c + ch
                    for b in c0..<c1 { pr[cols.tap[b] * c] = pr[cols.tap[b] * c].addingProduct(xr[cols.other[b] * c], gv) }
                }
                ch += 1
            }
        }
    }
}

/// Depthwise convolution kernel (multiplier 1), forward and backward on NHWC with SIMD16 over channels.
final class DepthwiseConvKernel: EngineKernel {
    let g: ConvGeometry
    let loops: DepthwiseLoops
    let input: UnsafeMutablePointer<Float>
    let inputGrad: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?
    let weight: UnsafeMutablePointer<Float>
    let weightGrad: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>?
    let biasGrad: UnsafeMutablePointer<Float>?
    /// depthwiseReductionChunks partial sums of `partialFloats` floats each.
    let partials: UnsafeMutablePointer<Float>
    let partialFloats: Int
    let ownBlock: MemoryBlock?
    /// The bias, or C zeros without one (so that forward has one code path).
    let biasOrZeros: UnsafeMutablePointer<Float>

    init(_ g: ConvGeometry, storage s: NodeStorage) throws {
        self.g = g
        let (x, y) = (s.inputShapes[0], s.outputShape)
        loops = DepthwiseLoops(
            h: x.height, w: x.width, c: x.channels, oh: y.height, ow: y.width, kw: g.kernelWidth,
            area: g.kernelHeight * g.kernelWidth,
            rows: TapList(outSize: y.height, inSize: x.height, kernel: g.kernelHeight, stride: g.strideHeight,
                          pad: g.padTop, dilation: g.dilationHeight, inverse: false),
            cols: TapList(outSize: y.width, inSize: x.width, kernel: g.kernelWidth, stride: g.strideWidth,
                          pad: g.padLeft, dilation: g.dilationWidth, inverse: false),
            rowsBack: TapList(outSize: y.height, inSize: x.height, kernel: g.kernelHeight, stride: g.strideHeight,
                              pad: g.padTop, dilation: g.dilationHeight, inverse: true),
            colsBack: TapList(outSize: y.width, inSize: x.width, kernel: g.kernelWidth, stride: g.strideWidth,
                              pad: g.padLeft, dilation: g.dilationWidth, inverse: true))
        input = s.inputs[0]
        inputGrad = s.inputGrads[0]
        output = s.output
        outputGrad = s.outputGrad
        weight = s.parameters[0]
        weightGrad = s.parameterGrads[0]
        bias = s.parameters.count > 1 ? s.parameters[1] : nil
        biasGrad = s.parameterGrads.count > 1 ? s.parameterGrads[1] : nil
        let plan = GroupedConvPlan(g, input: x, output: y, maxBatch: s.maxBatch)
        partialFloats = plan.depthwisePartialFloats
        let base: UnsafeMutableRawPointer
        if let shared = s.workspace, s.workspaceBytes >= plan.workspace.bytes {
            ownBlock = nil
            base = shared
        } else {
            let block = try MemoryBlock(plan.workspace)
            ownBlock = block
            base = block.base
        }
        partials = (base + plan.depthwisePartials).assumingMemoryBound(to: Float.self)
        if let bias { biasOrZeros = bias } else {
            biasOrZeros = .allocate(capacity: x.channels)
            biasOrZeros.initialize(repeating: 0, count: x.channels)
        }
    }

    deinit {
        if bias == nil { biasOrZeros.deallocate() }
        loops.rows.deallocate(); loops.cols.deallocate(); loops.rowsBack.deallocate(); loops.colsBack.deallocate()
    }

    /// Bytes of the four tap lists of a layer (counted by the memory plan).
    static func tapListBytes(_ g: ConvGeometry, input x: EngineShape, output y: EngineShape) -> Int {
        func list(_ outSize: Int, _ inSize: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int) -> Int {
            var valid = 0
            for o in 0..<outSize { for t in 0..<k where (0..<inSize).contains(o * s - p + t * d) { valid += 1 } }
            return 8 * (2 * max(1, valid))
        }
        let rows = list(y.height, x.height, g.kernelHeight, g.strideHeight, g.padTop, g.dilationHeight)
        let cols = list(y.width, x.width, g.kernelWidth, g.strideWidth, g.padLeft, g.dilationWidth)
        return 2 * (rows + cols) + 8 * (y.height + 1 + y.width + 1 + x.height + 1 + x.width + 1)
    }

    var ownedScratchBytes: Int {
        (ownBlock?.bytes ?? 0) + (bias == nil ? 4 * loops.c : 0) + loops.rows.bytes + loops.cols.bytes + loops.rowsBack.bytes + loops.colsBack.bytes
    }
    var algorithm: String? { "depthwise" }

    /// Jobs of a pass over `rows` rows: bands of whole rows, at most 64 (each row is a job's
    /// unit, so the split does not change any result).
    private static func jobs(_ rows: Int) -> Int { max(1, min(64, rows)) }

    func forward(batch: Int, training: Bool) {
        let loops = loops
        let (x, wt, b, y) = (UnsafePointer(input), UnsafePointer(weight), UnsafePointer(biasOrZeros), output)
        let rows = batch * loops.oh, jobs = Self.jobs(rows)
        parallelFor(jobs) { job in
            for r in chunkRange(job, of: jobs, count: rows) { loops.forwardRow(r, x: x, wt: wt, bias: b, y: y) }
        }
    }

    func backward(batch: Int) {
        guard let dOut = outputGrad else { return }
        let loops = loops
        let (x, wt, dy) = (UnsafePointer(input), UnsafePointer(weight), UnsafePointer(dOut))
        // dW and dB: fixed partial sums over ranges of output rows, then added in order.
        let rows = batch * loops.oh
        let chunks = min(depthwiseReductionChunks, rows)
        let (partials, pf) = (partials, partialFloats)
        parallelFor(chunks) { chunk in
            let p = partials + chunk * pf
            p.update(repeating: 0, count: pf)
            for r in chunkRange(chunk, of: chunks, count: rows) { loops.weightRow(r, x: x, dy: dy, partial: p) }
        }
        let weights = loops.area * loops.c, c = loops.c
        let (dW, dB) = (weightGrad, biasGrad)
        let sums = elementwiseChunks(weights + c)
        parallelFor(sums) { part in
            for i in chunkRange(part, of: sums, count: weights + c) {
                var total: Float = 0
                for k in 0..<chunks { total += partials[k * pf + i] }
                if i < weights { dW[i] += total } else if let dB { dB[i - weights] += total }
            }
        }
        // dX: gather over the output pixels that read each input pixel.
        if let dIn = inputGrad {
            let inRows = batch * loops.h, jobs = Self.jobs(inRows)
            parallelFor(jobs) { job in
                for r in chunkRange(job, of: jobs, count: inRows) { loops.dataRow(r, dy: dy, wt: wt, dx: dIn) }
            }
        }
    }
}
