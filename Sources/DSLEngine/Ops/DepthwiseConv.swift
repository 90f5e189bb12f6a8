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
// checks and no division. Pixels whose taps all lie inside (the interior) skip the lists:
// their taps sit at fixed offsets, and for 3×3 the nine weight vectors or dW accumulators of a
// channel block stay in registers while it sweeps a row. `DepthwiseBenchTests` (DSL_BENCH=1)
// reports GB/s against a stream copy measured the same way.
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
/// parallel closures). Pixels whose taps all lie inside the input (forward and backward-weights;
/// backward-data at stride 1) take a fast path with the taps at fixed offsets; for 3×3
/// (MobileNets, EfficientNet) a channel block's nine weight vectors (forward, backward-data) or
/// nine dW accumulators (backward-weights) stay in registers while the block sweeps the row.
/// Other pixels and the channels past the last multiple of 16 take the per-pixel path over
/// the tap lists.
struct DepthwiseLoops {
    let h: Int, w: Int, c: Int, oh: Int, ow: Int, kw: Int, area: Int
    let rows: TapList, cols: TapList, rowsBack: TapList, colsBack: TapList
    /// Interior fast path (any kernel; 3×3 with the taps in registers): output columns
    /// qLo ..< qHi have all KW column taps (forward, dW); input columns iLo ..< iHi have all KW
    /// (backward-data, stride 1 only: `dataFast`).
    let fast3x3: Bool, dataFast: Bool, kh: Int
    let qLo: Int, qHi: Int, iLo: Int, iHi: Int
    /// Interior tap offsets in floats, tap t = kh·KW + kw: from the input pixel of tap (0, 0)
    /// (forward, dW), and from the dY pixel of tap (0, 0) (backward-data, stride 1).
    let forwardOffsets: UnsafeMutablePointer<Int>, dataOffsets: UnsafeMutablePointer<Int>
    /// Input offsets (floats) between vertical and horizontal taps, and between output pixels.
    let rowTap: Int, colTap: Int, colStep: Int, padLeft: Int

    init(_ g: ConvGeometry, input x: EngineShape, output y: EngineShape) {
        h = x.height; w = x.width; c = x.channels; oh = y.height; ow = y.width
        kw = g.kernelWidth; area = g.kernelHeight * g.kernelWidth
        rows = TapList(outSize: oh, inSize: h, kernel: g.kernelHeight, stride: g.strideHeight,
                       pad: g.padTop, dilation: g.dilationHeight, inverse: false)
        cols = TapList(outSize: ow, inSize: w, kernel: kw, stride: g.strideWidth,
                       pad: g.padLeft, dilation: g.dilationWidth, inverse: false)
        rowsBack = TapList(outSize: oh, inSize: h, kernel: g.kernelHeight, stride: g.strideHeight,
                           pad: g.padTop, dilation: g.dilationHeight, inverse: true)
        colsBack = TapList(outSize: ow, inSize: w, kernel: kw, stride: g.strideWidth,
                           pad: g.padLeft, dilation: g.dilationWidth, inverse: true)
        kh = g.kernelHeight
        fast3x3 = g.kernelHeight == 3 && g.kernelWidth == 3
        dataFast = g.strideHeight == 1 && g.strideWidth == 1
        // The pixels with all KW column taps form one contiguous range (possibly empty).
        func full(_ list: TapList, _ n: Int) -> (Int, Int) {
            var lo = 0
            while lo < n && list.start[lo + 1] - list.start[lo] != g.kernelWidth { lo += 1 }
            var hi = lo
            while hi < n && list.start[hi + 1] - list.start[hi] == g.kernelWidth { hi += 1 }
            return (lo, hi)
        }
        (qLo, qHi) = full(cols, ow)
        (iLo, iHi) = dataFast ? full(colsBack, w) : (0, 0)
        forwardOffsets = .allocate(capacity: area)
        dataOffsets = .allocate(capacity: area)
        for i in 0..<g.kernelHeight {
            for j in 0..<g.kernelWidth {
                forwardOffsets[i * kw + j] = (i * g.dilationHeight * w + j * g.dilationWidth) * c
                dataOffsets[i * kw + j] = -(i * g.dilationHeight * ow + j * g.dilationWidth) * c
            }
        }
        rowTap = g.dilationHeight * w * c
        colTap = g.dilationWidth * c
        colStep = g.strideWidth * c
        padLeft = g.padLeft
    }

    /// dst[ch] = initial[ch] + Σ over the valid (row, column) tap pairs of pixel (i, q) of
    /// src·w, for the channels from `from` on, one FMA chain per vector in (row tap, column tap)
    /// order: an output pixel of forward (`rows`/`cols`, src = x, initial = the bias) or an input
    /// pixel of backward-data (`rowsBack`/`colsBack`, src = dy, initial = dst).
    @inline(__always)
    func gatherPixel(_ rowTaps: TapList, _ i: Int, _ colTaps: TapList, _ q: Int, from: Int,
                     src: UnsafePointer<Float>, srcWidth: Int, wt: UnsafePointer<Float>,
                     initial: UnsafePointer<Float>, dst: UnsafeMutablePointer<Float>) {
        let (c, kw) = (c, kw)
        let (r0, r1) = (rowTaps.start[i], rowTaps.start[i + 1])
        let (rowTap, rowOther) = (rowTaps.tap, rowTaps.other)
        let (colTap, colOther) = (colTaps.tap, colTaps.other)
        let (c0, c1) = (colTaps.start[q], colTaps.start[q + 1])
        var ch = from
        while ch + 16 <= c {
            var acc = load(initial + ch)
            for a in r0..<r1 {
                let sr = src + rowOther[a] * srcWidth * c + ch, wr = wt + rowTap[a] * kw * c + ch
                for b in c0..<c1 { acc.addProduct(load(sr + colOther[b] * c), load(wr + colTap[b] * c)) }
            }
            store(dst + ch, acc)
            ch += 16
        }
        while ch < c {
            var acc = initial[ch]
            for a in r0..<r1 {
                let sr = src + rowOther[a] * srcWidth * c + ch, wr = wt + rowTap[a] * kw * c + ch
                for b in c0..<c1 { acc = acc.addingProduct(sr[colOther[b] * c], wr[colTap[b] * c]) }
            }
            dst[ch] = acc
            ch += 1
        }
    }

    /// y[r, q, ch...] = bias + Σ taps x·w for channels from `from` on (one output pixel).
    @inline(__always)
    func forwardPixel(_ r: Int, _ q: Int, from: Int, xs: UnsafePointer<Float>, wt: UnsafePointer<Float>,
                      bias: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>) {
        gatherPixel(rows, r % oh, cols, q, from: from, src: xs, srcWidth: w, wt: wt, initial: bias, dst: y + (r * ow + q) * c)
    }

    /// y row `r` (= n·OH + oh) = bias + Σ taps x·w (`bias` holds C floats, zeros without a bias).
    @inline(__always)
    func forwardRow(_ r: Int, x: UnsafePointer<Float>, wt: UnsafePointer<Float>, bias: UnsafePointer<Float>,
                    y: UnsafeMutablePointer<Float>) {
        let (n, o) = (r / oh, r % oh)
        let c = c
        let xs = x + n * h * w * c
        let r0 = rows.start[o]
        guard rows.start[o + 1] - r0 == kh && qLo < qHi else {
            for q in 0..<ow { forwardPixel(r, q, from: 0, xs: xs, wt: wt, bias: bias, y: y) }
            return
        }
        for q in 0..<qLo { forwardPixel(r, q, from: 0, xs: xs, wt: wt, bias: bias, y: y) }
        // Interior: the taps are x[ih0 + i·DH, q·SW − padLeft + j·DW] for i, j in 0..<3.
        let (rowTap, colTap, colStep) = (rowTap, colTap, colStep)
        let first = xs + (rows.other[r0] * w + qLo * (colStep / c) - padLeft) * c
        let c16 = c & ~15
        var ch = 0
        if !fast3x3 {
            // Any kernel: the taps at fixed offsets, weights from L1.
            let (off, area) = (UnsafePointer(forwardOffsets), area)
            while ch < c16 {
                let b = load(bias + ch)
                var src = first + ch
                var dst = y + (r * ow + qLo) * c + ch
                let wp = wt + ch
                for _ in qLo..<qHi {
                    var acc = b
                    for t in 0..<area { acc.addProduct(load(src + off[t]), load(wp + t * c)) }
                    store(dst, acc)
                    src += colStep
                    dst += c
                }
                ch += 16
            }
        }
        while ch < c16 {
            let wp = wt + ch
            let w0 = load(wp), w1 = load(wp + c), w2 = load(wp + 2 * c)
            let w3 = load(wp + 3 * c), w4 = load(wp + 4 * c), w5 = load(wp + 5 * c)
            let w6 = load(wp + 6 * c), w7 = load(wp + 7 * c), w8 = load(wp + 8 * c)
            let b = load(bias + ch)
            var src = first + ch
            var dst = y + (r * ow + qLo) * c + ch
            for _ in qLo..<qHi {
                var acc = b
                acc.addProduct(load(src), w0)
                acc.addProduct(load(src + colTap), w1)
                acc.addProduct(load(src + 2 * colTap), w2)
                let s1 = src + rowTap
                acc.addProduct(load(s1), w3)
                acc.addProduct(load(s1 + colTap), w4)
                acc.addProduct(load(s1 + 2 * colTap), w5)
                let s2 = s1 + rowTap
                acc.addProduct(load(s2), w6)
                acc.addProduct(load(s2 + colTap), w7)
                acc.addProduct(load(s2 + 2 * colTap), w8)
                store(dst, acc)
                src += colStep
                dst += c
            }
            ch += 16
        }
        if c16 < c { for q in qLo..<qHi { forwardPixel(r, q, from: c16, xs: xs, wt: wt, bias: bias, y: y) } }
        for q in qHi..<ow { forwardPixel(r, q, from: 0, xs: xs, wt: wt, bias: bias, y: y) }
    }

    /// dx[r, q, ch...] += Σ over the output pixels reading it of dy·w, channels from `from` on
    /// (dx = 0 + Σ … when `zeros`, C zero floats, is given: the gradient is stored).
    @inline(__always)
    func dataPixel(_ r: Int, _ q: Int, from: Int, dys: UnsafePointer<Float>, wt: UnsafePointer<Float>,
                   dx: UnsafeMutablePointer<Float>, zeros: UnsafePointer<Float>?) {
        let dst = dx + (r * w + q) * c
        gatherPixel(rowsBack, r % h, colsBack, q, from: from, src: dys, srcWidth: ow, wt: wt,
                    initial: zeros ?? UnsafePointer(dst), dst: dst)
    }

    /// dx row `r` (= n·H + ih) += Σ over the output pixels reading it of dy·w (stored, from
    /// zeros, when `zeros` is given).
    @inline(__always)
    func dataRow(_ r: Int, dy: UnsafePointer<Float>, wt: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                 zeros: UnsafePointer<Float>?) {
        let storing = zeros != nil
        let (n, i) = (r / h, r % h)
        let c = c
        let dys = dy + n * oh * ow * c
        let r0 = rowsBack.start[i]
        guard dataFast && rowsBack.start[i + 1] - r0 == kh && iLo < iHi else {
            for q in 0..<w { dataPixel(r, q, from: 0, dys: dys, wt: wt, dx: dx, zeros: zeros) }
            return
        }
        for q in 0..<iLo { dataPixel(r, q, from: 0, dys: dys, wt: wt, dx: dx, zeros: zeros) }
        // Stride 1 interior: dx[ih, iw] += Σ_{kh, kw} dy[ih + padTop − kh·DH, iw + padLeft − kw·DW]·w[kh, kw];
        // the row pairs run in output-row order (kh = 2, 1, 0), so kh = 0 is the last pair and
        // each further kh steps back by DH output rows.
        let first = dys + (rowsBack.other[r0 + kh - 1] * ow + iLo + padLeft) * c
        let c16 = c & ~15
        var ch = 0
        if !fast3x3 {
            let (off, area) = (UnsafePointer(dataOffsets), area)
            while ch < c16 {
                var src = first + ch
                var dst = dx + (r * w + iLo) * c + ch
                let wp = wt + ch
                for _ in iLo..<iHi {
                    var acc = storing ? DV() : load(dst)
                    for t in 0..<area { acc.addProduct(load(src + off[t]), load(wp + t * c)) }
                    store(dst, acc)
                    src += c
                    dst += c
                }
                ch += 16
            }
        }
        let colTap = colTap, outRowTap = fast3x3 ? (rowsBack.other[r0 + 2] - rowsBack.other[r0 + 1]) * ow * c : 0
        while ch < c16 {
            let wp = wt + ch
            let w0 = load(wp), w1 = load(wp + c), w2 = load(wp + 2 * c)
            let w3 = load(wp + 3 * c), w4 = load(wp + 4 * c), w5 = load(wp + 5 * c)
            let w6 = load(wp + 6 * c), w7 = load(wp + 7 * c), w8 = load(wp + 8 * c)
            var src = first + ch
            var dst = dx + (r * w + iLo) * c + ch
            for _ in iLo..<iHi {
                var acc = storing ? DV() : load(dst)
                acc.addProduct(load(src), w0)
                acc.addProduct(load(src - colTap), w1)
                acc.addProduct(load(src - 2 * colTap), w2)
                let s1 = src - outRowTap
                acc.addProduct(load(s1), w3)
                acc.addProduct(load(s1 - colTap), w4)
                acc.addProduct(load(s1 - 2 * colTap), w5)
                let s2 = s1 - outRowTap
                acc.addProduct(load(s2), w6)
                acc.addProduct(load(s2 - colTap), w7)
                acc.addProduct(load(s2 - 2 * colTap), w8)
                store(dst, acc)
                src += c
                dst += c
            }
            ch += 16
        }
        if c16 < c { for q in iLo..<iHi { dataPixel(r, q, from: c16, dys: dys, wt: wt, dx: dx, zeros: zeros) } }
        for q in iHi..<w { dataPixel(r, q, from: 0, dys: dys, wt: wt, dx: dx, zeros: zeros) }
    }

    /// partial[(kh·KW + kw)·C + ch] += Σ x·dy and partial[KH·KW·C + ch] += dy at one output pixel.
    @inline(__always)
    func weightPixel(_ r: Int, _ q: Int, from: Int, xs: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                     partial: UnsafeMutablePointer<Float>) {
        let o = r % oh
        let (w, c, kw) = (w, c, kw)
        let (r0, r1) = (rows.start[o], rows.start[o + 1])
        let (rowTap, rowOther) = (rows.tap, rows.other)
        let (colTap, colOther) = (cols.tap, cols.other)
        let (c0, c1) = (cols.start[q], cols.start[q + 1])
        let pb = partial + area * c
        let g = dy + (r * ow + q) * c
        var ch = from
        while ch + 16 <= c {
            let gv = load(g + ch)
            store(pb + ch, load(pb + ch) + gv)
            for a in r0..<r1 {
                let xr = xs + rowOther[a] * w * c + ch, pr = partial + rowTap[a] * kw * c + ch
                for b in c0..<c1 {
                    let p = pr + colTap[b] * c
                    var v = load(p)
                    v.addProduct(load(xr + colOther[b] * c), gv)
                    store(p, v)
                }
            }
            ch += 16
        }
        while ch < c {
            let gv = g[ch]
            pb[ch] += gv
            for a in r0..<r1 {
                let xr = xs + rowOther[a] * w * c + ch, pr = partial + rowTap[a] * kw * c + ch
                for b in c0..<c1 { pr[colTap[b] * c] = pr[colTap[b] * c].addingProduct(xr[colOther[b] * c], gv) }
            }
            ch += 1
        }
    }

    /// partial += the dW and dB terms of output row `r` (= n·OH + oh).
    @inline(__always)
    func weightRow(_ r: Int, x: UnsafePointer<Float>, dy: UnsafePointer<Float>, partial: UnsafeMutablePointer<Float>) {
        let (n, o) = (r / oh, r % oh)
        let c = c
        let xs = x + n * h * w * c
        let r0 = rows.start[o]
        guard rows.start[o + 1] - r0 == kh && qLo < qHi else {
            for q in 0..<ow { weightPixel(r, q, from: 0, xs: xs, dy: dy, partial: partial) }
            return
        }
        for q in 0..<qLo { weightPixel(r, q, from: 0, xs: xs, dy: dy, partial: partial) }
        let (rowTap, colTap, colStep) = (rowTap, colTap, colStep)
        let first = xs + (rows.other[r0] * w + qLo * (colStep / c) - padLeft) * c
        let pb = partial + area * c
        let c16 = c & ~15
        var ch = 0
        if !fast3x3 {
            let (off, area) = (UnsafePointer(forwardOffsets), area)
            while ch < c16 {
                let pp = partial + ch
                var ab = load(pb + ch)
                var src = first + ch
                var g = dy + (r * ow + qLo) * c + ch
                for _ in qLo..<qHi {
                    let gv = load(g)
                    ab += gv
                    for t in 0..<area {
                        let p = pp + t * c
                        var v = load(p)
                        v.addProduct(load(src + off[t]), gv)
                        store(p, v)
                    }
                    src += colStep
                    g += c
                }
                store(pb + ch, ab)
                ch += 16
            }
        }
        while ch < c16 {
            let pp = partial + ch
            var a0 = load(pp), a1 = load(pp + c), a2 = load(pp + 2 * c)
            var a3 = load(pp + 3 * c), a4 = load(pp + 4 * c), a5 = load(pp + 5 * c)
            var a6 = load(pp + 6 * c), a7 = load(pp + 7 * c), a8 = load(pp + 8 * c)
            var ab = load(pb + ch)
            var src = first + ch
            var g = dy + (r * ow + qLo) * c + ch
            for _ in qLo..<qHi {
                let gv = load(g)
                ab += gv
                a0.addProduct(load(src), gv)
                a1.addProduct(load(src + colTap), gv)
                a2.addProduct(load(src + 2 * colTap), gv)
                let s1 = src + rowTap
                a3.addProduct(load(s1), gv)
                a4.addProduct(load(s1 + colTap), gv)
                a5.addProduct(load(s1 + 2 * colTap), gv)
                let s2 = s1 + rowTap
                a6.addProduct(load(s2), gv)
                a7.addProduct(load(s2 + colTap), gv)
                a8.addProduct(load(s2 + 2 * colTap), gv)
                src += colStep
                g += c
            }
            store(pp, a0); store(pp + c, a1); store(pp + 2 * c, a2)
            store(pp + 3 * c, a3); store(pp + 4 * c, a4); store(pp + 5 * c, a5)
            store(pp + 6 * c, a6); store(pp + 7 * c, a7); store(pp + 8 * c, a8)
            store(pb + ch, ab)
            ch += 16
        }
        if c16 < c { for q in qLo..<qHi { weightPixel(r, q, from: c16, xs: xs, dy: dy, partial: partial) } }
        for q in qHi..<ow { weightPixel(r, q, from: 0, xs: xs, dy: dy, partial: partial) }
    }
}

/// Depthwise convolution kernel (multiplier 1), forward and backward on NHWC with SIMD16 over channels.
final class DepthwiseConvKernel: EngineKernel {
    let g: ConvGeometry
    let loops: DepthwiseLoops
    let io: UnaryTensors
    let params: ParameterTensors
    /// depthwiseReductionChunks partial sums of `partialFloats` floats each.
    let partials: UnsafeMutablePointer<Float>
    let partialFloats: Int
    let ownBlock: MemoryBlock?
    /// The bias, or C zeros without one (so that forward has one code path).
    let biasOrZeros: UnsafeMutablePointer<Float>
    /// C zeros when backward stores the input gradient (`storeInputGradient`): its accumulators'
    /// initial value.
    var gradientZeros: ZeroFloats?
    func storeInputGradient(_ input: Int) -> Bool { gradientZeros = ZeroFloats(count: io.inShape.channels); return true }

    init(_ g: ConvGeometry, storage s: NodeStorage) throws {
        self.g = g
        let (x, y) = (s.inputShapes[0], s.outputShape)
        loops = DepthwiseLoops(g, input: x, output: y)
        io = UnaryTensors(s)
        params = ParameterTensors(s)
        let plan = GroupedConvPlan(g, input: x, output: y, maxBatch: s.maxBatch)
        partialFloats = plan.depthwisePartialFloats
        let (base, own) = try s.kernelWorkspace(plan.workspace)
        ownBlock = own
        partials = (base + plan.depthwisePartials).assumingMemoryBound(to: Float.self)
        if let bias = params.bias { biasOrZeros = bias } else {
            biasOrZeros = .allocate(capacity: x.channels)
            biasOrZeros.initialize(repeating: 0, count: x.channels)
        }
    }

    deinit {
        if params.bias == nil { biasOrZeros.deallocate() }
        loops.rows.deallocate(); loops.cols.deallocate(); loops.rowsBack.deallocate(); loops.colsBack.deallocate()
        loops.forwardOffsets.deallocate(); loops.dataOffsets.deallocate()
    }

    /// Bytes the kernel holds itself: the four tap lists and, without a bias, C zeros
    /// (counted by the memory plan).
    static func ownedBytes(_ g: ConvGeometry, input x: EngineShape, output y: EngineShape) -> Int {
        func list(_ outSize: Int, _ inSize: Int, _ k: Int, _ s: Int, _ p: Int, _ d: Int) -> Int {
            var valid = 0
            for o in 0..<outSize { for t in 0..<k where (0..<inSize).contains(o * s - p + t * d) { valid += 1 } }
            return 8 * (2 * max(1, valid))
        }
        let rows = list(y.height, x.height, g.kernelHeight, g.strideHeight, g.padTop, g.dilationHeight)
        let cols = list(y.width, x.width, g.kernelWidth, g.strideWidth, g.padLeft, g.dilationWidth)
        return 2 * (rows + cols) + 8 * (y.height + 1 + y.width + 1 + x.height + 1 + x.width + 1) + (g.bias ? 0 : 4 * x.channels)
            + 16 * g.kernelHeight * g.kernelWidth
    }

    var ownedScratchBytes: Int {
        (ownBlock?.bytes ?? 0) + (params.bias == nil ? 4 * loops.c : 0) + 16 * loops.area + loops.rows.bytes + loops.cols.bytes + loops.rowsBack.bytes + loops.colsBack.bytes
    }
    var algorithm: String? { "depthwise" }

    /// Jobs of a pass over `rows` rows: bands of whole rows, at most 64 (each row is a job's
    /// unit, so the split does not change any result).
    private static func jobs(_ rows: Int) -> Int { max(1, min(64, rows)) }

    func forward(batch: Int, training: Bool) {
        let loops = loops
        let (x, wt, b, y) = (UnsafePointer(io.input), UnsafePointer(params.weight), UnsafePointer(biasOrZeros), io.output)
        let rows = batch * loops.oh, jobs = Self.jobs(rows)
        parallelFor(jobs) { job in
            for r in chunkRange(job, of: jobs, count: rows) { loops.forwardRow(r, x: x, wt: wt, bias: b, y: y) }
        }
    }

    func backward(batch: Int) {
        guard let dOut = io.outputGrad else { return }
        let loops = loops
        let (x, wt, dy) = (UnsafePointer(io.input), UnsafePointer(params.weight), UnsafePointer(dOut))
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
        let (dW, dB) = (params.weightGrad, params.biasGrad)
        let sums = elementwiseChunks(weights + c)
        parallelFor(sums) { part in
            for i in chunkRange(part, of: sums, count: weights + c) {
                var total: Float = 0
                for k in 0..<chunks { total += partials[k * pf + i] }
                if i < weights { dW[i] += total } else if let dB { dB[i - weights] += total }
            }
        }
        // dX: gather over the output pixels that read each input pixel.
        if let dIn = io.inputGrad {
            let zeros = gradientZeros?.pointer
            let inRows = batch * loops.h, jobs = Self.jobs(inRows)
            parallelFor(jobs) { job in
                for r in chunkRange(job, of: jobs, count: inRows) { loops.dataRow(r, dy: dy, wt: wt, dx: dIn, zeros: zeros) }
            }
        }
    }
}
