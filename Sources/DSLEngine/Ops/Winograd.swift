#if DSL_AVX512
import _Builtin_intrinsics.intel
#endif
// Winograd F(4×4, 3×3) for stride-1 3×3 convolutions (Lavin & Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2016). Conv.swift dispatches to it.
// inp is (B,H,W,IC), weight is (3,3,IC,OC), out is (B,OH,OW,OC) with OH = H + 2·pad − 2.
//
// The output is cut into 4×4 tiles; tile (n, ty, tx) reads the 6×6 input patch at
// (4·ty − pad, 4·tx − pad) (zeros outside the image). With the transforms below
//   U = G g Gᵀ (6×6 per (ic, oc)),  V = Bᵀ d B (6×6 per (tile, ic)),
//   M[ξ] = V[ξ] × U[ξ]  (one (tiles × IC) · (IC × OC) product per ξ of the 36),
//   Y = Aᵀ M A (4×4 per (tile, oc)),
// a tile's 4·4·9 multiply-adds per channel pair become 36: 4× fewer than a direct convolution.
//
// Training uses the exact adjoints of that computation:
//   backward-data: dX is the stride-1 convolution of dY (padded by 2 − pad) with the kernel
//     rotated 180° and transposed (IC ↔ OC), computed by the same forward pass;
//   backward-weights: dU[ξ] = Σ_tiles V[ξ]ᵀ × (A dY Aᵀ)[ξ], then dW += Gᵀ dU G.
//
// Data layouts (all 16-float channel groups are SIMD16 vectors)
//   U   packed weights [36][OC/48][IC][48] (OC zero-padded to a multiple of 48): for each ξ the
//       B operand of the 8×48 micro-kernel (`gatherTile8x48` in DirectConv.swift).
//   V   per job [36][tiles][IC'] (IC' = IC rounded up to 16; rows are the A operand).
//   M   per job [36][tiles][OC'] (OC' = OC rounded up to 48).
// Forward (and backward-data): one job per group of `winogradTilesPerJob` consecutive tiles
// (image-major). A job transforms its tiles' input patches into V, runs the 36 products into M
// (V and M stay in this thread's L2), and transforms M back into the output tiles (bias added,
// or accumulated into dX). Every output element is computed by one thread in a fixed order.
// The last 48-column panel of a layer whose OC is not a multiple of 48 multiplies only its
// live 16-column groups (8×16 or 8×32 kernels; backward-weights likewise): a 17–32-channel
// layer's products cost 2/3 of the 8×48 kernel's, a 16-channel layer's 1/3.
// Backward-weights: tiles are cut into fixed blocks (`winogradWeightBlock`: as many tiles as
// keep V and G within half of L2, at least 32); for each block, V and A dY Aᵀ are built in the
// shared scratch, then a fixed number of jobs accumulate the 8×48 tiles of dU
// (`weightTile8x48`), so the result does not depend on the thread count.
//
// Precision: the transforms use the points 0, ±1, ±2 (and ∞); in fp32 the result differs from
// a direct convolution by a few 1e-6 of the output's largest value (tests allow 1e-4).
//
// Measured on the AMD Zen 4 host of the first sessions (on the Intel host of 2026-11-29, two
// FMA ports per core, conv2 ran at 122–168 % forward and 81–132 % backward, partly busy)
// (ConvBenchTests, batch 64, 1 thread, FLOPs of the direct convolution per CPU-second
// against one core's peak): All-CNN-C conv2 fwd 236–260 %, bwd 198–216 %; conv5 fwd 284–294 %,
// bwd 215–240 %; conv7 (6×6 output) fwd 156–164 %, bwd 118–128 %. Direct kernels ran these
// layers at 82–93 %.

/// Tiles per forward job (a multiple of 8: the micro-kernel's row count).
nonisolated(unsafe) var winogradTilesPerJob = 16
/// Tiles per block of the backward-weights reduction (at most; limited by the shared scratch).
nonisolated(unsafe) var winogradTilesPerWeightBlock = 128
/// Bytes of V and G a backward-weights block may take when the block size does not change the
/// bits (`winogradWeightBlock`): half of one core's 2 MiB L2.
nonisolated(unsafe) var winogradWeightBlockBytes = 1 << 20
/// The fewest tiles of such a block (each block loads and stores all of dU once).
nonisolated(unsafe) var winogradMinWeightBlock = 32

/// The first `lanes` floats at p (1...16), zeros in the other lanes. Channel counts that are not
/// multiples of 16 (most of PyramidNet's) load their last group this way: with AVX-512 one
/// masked load (lanes past `lanes` are not read); the lane-by-lane loop it replaces made the
/// transforms a fifth of PyramidNet-110's training step.
@inline(__always) private func load(_ p: UnsafePointer<Float>, _ lanes: Int) -> DV {
    #if DSL_AVX512
    // (`loadUnaligned(as:)` was outlined into a call returning four xmm halves in the weight
    // transforms.)
    if lanes == 16 { return _mm512_loadu_ps(p) }
    return _mm512_maskz_loadu_ps(__mmask16(truncatingIfNeeded: (1 << lanes) - 1), p)
    #else
    if lanes == 16 { return UnsafeRawPointer(p).loadUnaligned(as: DV.self) }
    var v = DV()
    for l in 0..<lanes { v[l] = p[l] }
    return v
    #endif
}

/// Stores the first `lanes` lanes of v at p (one masked store with AVX-512).
@inline(__always) private func store(_ p: UnsafeMutablePointer<Float>, _ v: DV, _ lanes: Int) {
    #if DSL_AVX512
    if lanes == 16 { _mm512_storeu_ps(p, v); return }
    _mm512_mask_storeu_ps(p, __mmask16(truncatingIfNeeded: (1 << lanes) - 1), v)
    #else
    if lanes == 16 { UnsafeMutableRawPointer(p).storeBytes(of: v, as: DV.self); return }
    for l in 0..<lanes { p[l] = v[l] }
    #endif
}

/// The geometry of one Winograd convolution: `source` images (h×w×c) → output (oh×ow×oc).
struct WinogradShape {
    var h: Int, w: Int, c: Int
    var pad: Int
    var oh: Int, ow: Int, oc: Int
    var tilesY: Int { (oh + 3) / 4 }
    var tilesX: Int { (ow + 3) / 4 }
    var tilesPerImage: Int { tilesY * tilesX }
    /// Row stride of V: input channels rounded up to 16.
    var vStride: Int { (c + 15) / 16 * 16 }
    /// Row stride of M (and columns of dU): output channels rounded up to 48.
    var mStride: Int { (oc + directNR - 1) / directNR * directNR }
    var panels: Int { mStride / directNR }
    /// Floats of the packed weights U.
    var packedFloats: Int { 36 * c * mStride }

    /// Whether F(4×4, 3×3) applies: 3×3, stride 1, padding ≤ 2 (backward-data pads by 2 − pad).
    static func applies(kernel: Int, stride: Int, pad: Int) -> Bool { kernel == 3 && stride == 1 && pad <= 2 }
}

// MARK: - Transforms (one 16-channel group)

/// Bᵀ applied to 6 values.
@inline(__always)
private func inputRow(_ d0: DV, _ d1: DV, _ d2: DV, _ d3: DV, _ d4: DV, _ d5: DV)
    -> (DV, DV, DV, DV, DV, DV) {
    let a = d4 - d2 * 4, b = d3 - d1 * 4, c = d4 - d2, e = (d3 - d1) * 2
    return (d0 * 4 - d2 * 5 + d4, a + b, a - b, c + e, c - e, d1 * 4 - d3 * 5 + d5)
}

/// Aᵀ applied to 6 values.
@inline(__always)
private func outputRow(_ m0: DV, _ m1: DV, _ m2: DV, _ m3: DV, _ m4: DV, _ m5: DV) -> (DV, DV, DV, DV) {
    let s12 = m1 + m2, d12 = m1 - m2, s34 = m3 + m4, d34 = m3 - m4
    return (m0 + s12 + s34, d12 + d34 * 2, s12 + s34 * 4, d12 + d34 * 8 + m5)
}

/// A applied to 4 values (the adjoint of `outputRow`).
@inline(__always)
private func gradientRow(_ e0: DV, _ e1: DV, _ e2: DV, _ e3: DV) -> (DV, DV, DV, DV, DV, DV) {
    let s02 = e0 + e2, s13 = e1 + e3, q02 = e0 + e2 * 4, q13 = e1 * 2 + e3 * 8
    return (e0, s02 + s13, s02 - s13, q02 + q13, q02 - q13, e3)
}

/// G applied to 3 values.
@inline(__always)
private func weightRow(_ g0: DV, _ g1: DV, _ g2: DV) -> (DV, DV, DV, DV, DV, DV) {
    let s = (g0 + g2) * (-1.0 / 6), t = g1 * (1.0 / 6)
    let p = g0 * (1.0 / 24) + g2 * (1.0 / 6), q = g1 * (1.0 / 12)
    return (g0 * 0.25, s - t, s + t, p + q, p - q, g2)
}

/// Gᵀ applied to 6 values (the adjoint of `weightRow`).
@inline(__always)
private func weightGradientRow(_ u0: DV, _ u1: DV, _ u2: DV, _ u3: DV, _ u4: DV, _ u5: DV) -> (DV, DV, DV) {
    let s12 = (u1 + u2) * (1.0 / 6), d12 = (u2 - u1) * (1.0 / 6)
    let s34 = u3 + u4, d34 = u3 - u4
    return (u0 * 0.25 - s12 + s34 * (1.0 / 24), d12 + d34 * (1.0 / 12), s34 * (1.0 / 6) - s12 + u5)
}

/// Six vectors, one row (or column) of a 6×6 transform.
typealias Six = (DV, DV, DV, DV, DV, DV)

/// tmp[at ..< at + 6] = t.
@inline(__always) private func keep(_ t: Six, _ tmp: UnsafeMutablePointer<DV>, at: Int) {
    tmp[at] = t.0; tmp[at + 1] = t.1; tmp[at + 2] = t.2; tmp[at + 3] = t.3; tmp[at + 4] = t.4; tmp[at + 5] = t.5
}

/// Column j of a 6×6 result: element (i, j) goes to dst[(6i + j) · ξStride].
@inline(__always) private func storeColumn(_ v: Six, _ dst: UnsafeMutablePointer<Float>, j: Int, ξStride: Int) {
    store(dst + j * ξStride, v.0, 16); store(dst + (6 + j) * ξStride, v.1, 16)
    store(dst + (12 + j) * ξStride, v.2, 16); store(dst + (18 + j) * ξStride, v.3, 16)
    store(dst + (24 + j) * ξStride, v.4, 16); store(dst + (30 + j) * ξStride, v.5, 16)
}

/// Writes Bᵀ d B of the 6×6 patch of `image` (h×w, `c` channels) whose top-left pixel is
/// (y0, x0) (zeros outside the image), channels c0 ..< c0 + lanes, to dst[ξ · ξStride].
/// `tmp` holds 36 vectors.
@inline(__always)
private func transformInput(_ image: UnsafePointer<Float>, h: Int, w: Int, c: Int, y0: Int, x0: Int,
                            c0: Int, lanes: Int, tmp: UnsafeMutablePointer<DV>,
                            dst: UnsafeMutablePointer<Float>, ξStride: Int) {
    let zero = DV()
    for r in 0..<6 {
        let y = y0 + r
        if y < 0 || y >= h {
            for j in 0..<6 { tmp[r * 6 + j] = zero }
            continue
        }
        let row = image + (y * w) * c + c0
        var d = (zero, zero, zero, zero, zero, zero)
        if x0 >= 0 && x0 + 6 <= w {
            let p = row + x0 * c
            d = (load(p, lanes), load(p + c, lanes), load(p + 2 * c, lanes),
                 load(p + 3 * c, lanes), load(p + 4 * c, lanes), load(p + 5 * c, lanes))
        } else {
            @inline(__always) func at(_ q: Int) -> DV {
                let x = x0 + q
                return x >= 0 && x < w ? load(row + x * c, lanes) : zero
            }
            d = (at(0), at(1), at(2), at(3), at(4), at(5))
        }
        keep(inputRow(d.0, d.1, d.2, d.3, d.4, d.5), tmp, at: r * 6)
    }
    for j in 0..<6 {
        storeColumn(inputRow(tmp[j], tmp[6 + j], tmp[12 + j], tmp[18 + j], tmp[24 + j], tmp[30 + j]),
                    dst, j: j, ξStride: ξStride)
    }
}

/// Writes A e Aᵀ of the 4×4 patch of `image` (h×w, `c` channels) at (y0, x0) (zeros outside),
/// channels c0 ..< c0 + lanes, to dst[ξ · ξStride]. `tmp` holds 24 vectors.
@inline(__always)
private func transformGradient(_ image: UnsafePointer<Float>, h: Int, w: Int, c: Int, y0: Int, x0: Int,
                               c0: Int, lanes: Int, tmp: UnsafeMutablePointer<DV>,
                               dst: UnsafeMutablePointer<Float>, ξStride: Int) {
    let zero = DV()
    for r in 0..<4 {
        let y = y0 + r
        if y >= h {
            for j in 0..<6 { tmp[r * 6 + j] = zero }
            continue
        }
        let row = image + (y * w) * c + c0
        @inline(__always) func at(_ q: Int) -> DV { x0 + q < w ? load(row + (x0 + q) * c, lanes) : zero }
        keep(gradientRow(at(0), at(1), at(2), at(3)), tmp, at: r * 6)
    }
    for j in 0..<6 {
        storeColumn(gradientRow(tmp[j], tmp[6 + j], tmp[12 + j], tmp[18 + j]), dst, j: j, ξStride: ξStride)
    }
}

/// Aᵀ M A of one tile (m[ξ · ξStride], 16 channels) written to the 4×4 output patch at (y0, x0)
/// of `image` (oh×ow, `c` channels), channels c0 ..< c0 + lanes, clipped to the image:
/// out = result + initial (max(·, 0) with `relu`; plus the residual's pixel, see
/// `ConvResidual.added`), or out += result when `initial` is nil; times (mask > 0) with a
/// `mask` (an image shaped like `image`; `maskedByPositive`).
/// `tmp` holds 28 vectors.
@inline(__always)
private func transformOutput(_ m: UnsafePointer<Float>, ξStride: Int, tmp: UnsafeMutablePointer<DV>,
                             _ image: UnsafeMutablePointer<Float>, h: Int, w: Int, c: Int, y0: Int, x0: Int,
                             c0: Int, lanes: Int, initial: DV?, relu: Bool,
                             residual: UnsafePointer<Float>? = nil, residualChannels: Int = 0, residualFirst: Bool = false,
                             mask: UnsafePointer<Float>? = nil) {
    for i in 0..<6 {
        let p = m + i * 6 * ξStride
        let t = outputRow(load(p, 16), load(p + ξStride, 16), load(p + 2 * ξStride, 16),
                          load(p + 3 * ξStride, 16), load(p + 4 * ξStride, 16), load(p + 5 * ξStride, 16))
        tmp[i * 4] = t.0; tmp[i * 4 + 1] = t.1; tmp[i * 4 + 2] = t.2; tmp[i * 4 + 3] = t.3
    }
    let rows = min(4, h - y0), cols = min(4, w - x0)
    for b in 0..<cols {
        let y = outputRow(tmp[b], tmp[4 + b], tmp[8 + b], tmp[12 + b], tmp[16 + b], tmp[20 + b])
        let ys = tmp + 24
        ys[0] = y.0; ys[1] = y.1; ys[2] = y.2; ys[3] = y.3
        for a in 0..<rows {
            let at = ((y0 + a) * w + x0 + b) * c + c0
            let o = image + at
            if let mask {
                let v = initial.map { ys[a] + $0 } ?? load(o, lanes) + ys[a]
                store(o, maskedByPositive(v, load(mask + at, lanes)), lanes)
            } else if let initial {
                let v = ys[a] + initial
                if let residual {
                    let r = residual + ((y0 + a) * w + x0 + b) * residualChannels + c0
                    store(o, ConvResidual.added(v, r, lanes: min(16, residualChannels - c0), first: residualFirst), lanes)
                } else {
                    store(o, relu ? rectified(v) : v, lanes)
                }
            } else {
                store(o, load(o, lanes) + ys[a], lanes)
            }
        }
    }
}

// MARK: - Weights

/// Packs U = G g Gᵀ from staged weights `g` ([9][inC][outP], taps ky·3 + kx, outP a multiple of
/// 48, zero-padded) into [36][outP/48][inC][48].
func winogradPackWeights(_ g: UnsafePointer<Float>, inC: Int, outP: Int, into u: UnsafeMutablePointer<Float>) {
    let panels = outP / directNR
    let tapStride = inC * outP
    let ξStride = panels * inC * directNR
    parallelFor(min(inC, 16)) { job in
        withUnsafeTemporaryAllocation(of: DV.self, capacity: 18) { buf in
            let tmp = buf.baseAddress!
            for i in chunkRange(job, of: min(inC, 16), count: inC) {
                for o0 in stride(from: 0, to: outP, by: 16) {
                    let s = g + i * outP + o0
                    for ky in 0..<3 {
                        keep(weightRow(load(s + (ky * 3) * tapStride, 16), load(s + (ky * 3 + 1) * tapStride, 16),
                                       load(s + (ky * 3 + 2) * tapStride, 16)), tmp, at: ky * 6)
                    }
                    let d = u + ((o0 / directNR) * inC + i) * directNR + o0 % directNR
                    for j in 0..<6 { storeColumn(weightRow(tmp[j], tmp[6 + j], tmp[12 + j]), d, j: j, ξStride: ξStride) }
                }
            }
        }
    }
}

/// Stages forward weights W (3,3,ic,oc) as [9][ic][oc'] (oc' = oc rounded up to 48, zeros).
func winogradStageForward(_ w: UnsafePointer<Float>, ic: Int, oc: Int, into s: UnsafeMutablePointer<Float>) {
    let ocp = (oc + directNR - 1) / directNR * directNR
    let rows = 9 * ic, jobs = min(rows, 16)
    parallelFor(jobs) { job in
        for row in chunkRange(job, of: jobs, count: rows) {
            let d = s + row * ocp
            d.update(from: w + row * oc, count: oc)
            if ocp > oc { (d + oc).update(repeating: 0, count: ocp - oc) }
        }
    }
}

/// Stages backward-data weights: [9][oc][ic'] with tap t = W's tap 8 − t (rotated 180°) and the
/// channels transposed (ic' = ic rounded up to 48, zeros).
func winogradStageBackward(_ w: UnsafePointer<Float>, ic: Int, oc: Int, into s: UnsafeMutablePointer<Float>) {
    let icp = (ic + directNR - 1) / directNR * directNR
    parallelFor(9) { t in
        let src = w + (8 - t) * ic * oc
        let dst = s + t * oc * icp
        // 16×16 blocks, so that both the reads and the writes use whole cache lines.
        for o0 in stride(from: 0, to: oc, by: 16) {
            for i0 in stride(from: 0, to: ic, by: 16) {
                for o in o0..<min(oc, o0 + 16) {
                    let d = dst + o * icp
                    for i in i0..<min(ic, i0 + 16) { d[i] = src[i * oc + o] }
                }
            }
        }
        if icp > ic { for o in 0..<oc { (dst + o * icp + ic).update(repeating: 0, count: icp - ic) } }
    }
}

// MARK: - Forward (and backward-data)

/// One Winograd convolution pass over `samples` images: output = conv(source, U) + bias, or
/// output += conv(source, U) when `bias` is nil.
struct WinogradPass {
    var shape: WinogradShape
    var samples: Int
    var source: UnsafePointer<Float>
    var packed: UnsafePointer<Float>
    var output: UnsafeMutablePointer<Float>
    /// Bias padded to `shape.mStride` floats; nil accumulates into the output.
    var bias: UnsafePointer<Float>?
    /// Stores max(output, 0): a following ReLU fused into the pass (with a bias only).
    var relu = false
    /// Added to the output as it is stored (with a bias only, no ReLU): the other input of the
    /// add that alone reads this output (inference only; `ConvResidual`).
    var residual: ConvResidual? = nil
    /// Backward-data only: a tensor shaped like the output; each output value is stored times
    /// (mask > 0), the backward of the ReLU whose output the mask is (`maskedByPositive`).
    var mask: UnsafePointer<Float>? = nil
}

/// Runs a `WinogradPass`, in parallel over fixed groups of tiles.
func runWinogradPass(_ p: WinogradPass) {
    let sh = p.shape
    let total = p.samples * sh.tilesPerImage
    if total == 0 { return }
    // Tiles per job: `winogradTilesPerJob`, or 8 when that would leave threads idle (batch 1: a
    // 16×16 output is 16 tiles, one job of 16 for two threads). Every job streams all of U, so
    // jobs are not made smaller otherwise. Each tile's outputs are computed alone (a row of the
    // 8-row micro-tiles), so the grouping does not change the bits.
    let perJob = max(directMR, winogradTilesPerJob / directMR * directMR)
    let group = (total + perJob - 1) / perJob >= engineThreadCount ? perJob : directMR
    let jobs = (total + group - 1) / group
    let (vs, ms) = (sh.vStride, sh.mStride)
    let vFloats = 36 * group * vs, mFloats = 36 * group * ms
    let zeros = [Float](repeating: 0, count: directNR)
    zeros.withUnsafeBufferPointer { zeroBuf in
    let zero = zeroBuf.baseAddress!
    parallelFor(jobs) { job in
        let v = winogradScratch.floats(vFloats + mFloats)
        let m = v + vFloats
        let t0 = job * group, count = min(group, total - t0)
        let rows = (count + directMR - 1) / directMR * directMR
        withUnsafeTemporaryAllocation(of: DV.self, capacity: 36) { tmpBuf in
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: directMR) { aBuf in
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: directMR) { cBuf in
            let tmp = tmpBuf.baseAddress!, a = aBuf.baseAddress!, cp = cBuf.baseAddress!
            // Input transform.
            for t in 0..<count {
                let q = t0 + t
                let n = q / sh.tilesPerImage, r = q % sh.tilesPerImage
                let y0 = (r / sh.tilesX) * 4 - sh.pad, x0 = (r % sh.tilesX) * 4 - sh.pad
                let image = p.source + n * sh.h * sh.w * sh.c
                for c0 in stride(from: 0, to: sh.c, by: 16) {
                    transformInput(image, h: sh.h, w: sh.w, c: sh.c, y0: y0, x0: x0, c0: c0,
                                   lanes: min(16, sh.c - c0), tmp: tmp, dst: v + t * vs + c0, ξStride: group * vs)
                }
            }
            // Rows past the last tile are read by the last 8-row micro-tile: keep them finite.
            if rows > count {
                for ξ in 0..<36 { (v + (ξ * group + count) * vs).update(repeating: 0, count: (rows - count) * vs) }
            }
            // The 36 products M[ξ] = V[ξ] × U[ξ].
            for ξ in 0..<36 {
                let vξ = UnsafePointer(v + ξ * group * vs), mξ = m + ξ * group * ms
                for panel in 0..<sh.panels {
                    let w = p.packed + (ξ * sh.panels + panel) * sh.c * directNR
                    // 16-column groups of this panel that hold output channels: a narrow layer's
                    // last panel multiplies only those (16 or 32 of 48 columns).
                    let live = min(3, (sh.oc - panel * directNR + 15) / 16)
                    for r0 in stride(from: 0, to: rows, by: directMR) {
                        for r in 0..<directMR {
                            a[r] = vξ + (r0 + r) * vs
                            cp[r] = mξ + (r0 + r) * ms + panel * directNR
                        }
                        switch live {
                        case 1: gatherTile8x16(a, kernel: 1, rowStride: 0, run: sh.c, w: w, cp, initial: zero, relu: false)
                        case 2: gatherTile8x32(a, kernel: 1, rowStride: 0, run: sh.c, w: w, cp, initial: zero, relu: false)
                        default: gatherTile8x48(a, kernel: 1, rowStride: 0, run: sh.c, w: w, cp, initial: zero)
                        }
                    }
                }
            }
            // Output transform.
            for t in 0..<count {
                let q = t0 + t
                let n = q / sh.tilesPerImage, r = q % sh.tilesPerImage
                let y0 = (r / sh.tilesX) * 4, x0 = (r % sh.tilesX) * 4
                let image = p.output + n * sh.oh * sh.ow * sh.oc
                let rc = p.residual?.channels ?? 0
                let residual = p.residual.map { $0.source + n * sh.oh * sh.ow * rc }
                let mask = p.mask.map { $0 + n * sh.oh * sh.ow * sh.oc }
                for c0 in stride(from: 0, to: sh.oc, by: 16) {
                    let lanes = min(16, sh.oc - c0)
                    transformOutput(UnsafePointer(m + t * ms + c0), ξStride: group * ms, tmp: tmp,
                                    image, h: sh.oh, w: sh.ow, c: sh.oc, y0: y0, x0: x0, c0: c0, lanes: lanes,
                                    initial: p.bias.map { load($0 + c0, 16) }, relu: p.relu,
                                    residual: residual, residualChannels: rc, residualFirst: p.residual?.isFirst ?? false,
                                    mask: mask)
                }
            }
        }
        }
        }
    }
    }
}

// MARK: - Backward-weights

/// dU rows (the 8 input channels at `off`) × the first 16·`groups` columns of a 48-wide panel
/// += Σ_t V[t][off[r]] · G[t][column], for a narrow layer's last panel; `weightTile8x48`'s
/// order of operations (the same bits): with all 8 rows valid the sums start from dU, otherwise
/// from zero and the valid rows' sums are added.
@inline(__always)
private func gradientTile(_ groups: Int, v: UnsafePointer<Float>, vs: Int, off: UnsafePointer<Int>,
                          g: UnsafePointer<Float>, ms: Int, count: Int, dU: UnsafeMutablePointer<Float>, validRows: Int) {
    var c00 = DV(), c10 = DV(), c20 = DV(), c30 = DV(), c40 = DV(), c50 = DV(), c60 = DV(), c70 = DV()
    var c01 = DV(), c11 = DV(), c21 = DV(), c31 = DV(), c41 = DV(), c51 = DV(), c61 = DV(), c71 = DV()
    let full = validRows == directMR
    if full {
        var r = UnsafePointer(dU); c00 = ld(r); if groups == 2 { c01 = ld(r + 16) }
        r += ms; c10 = ld(r); if groups == 2 { c11 = ld(r + 16) }
        r += ms; c20 = ld(r); if groups == 2 { c21 = ld(r + 16) }
        r += ms; c30 = ld(r); if groups == 2 { c31 = ld(r + 16) }
        r += ms; c40 = ld(r); if groups == 2 { c41 = ld(r + 16) }
        r += ms; c50 = ld(r); if groups == 2 { c51 = ld(r + 16) }
        r += ms; c60 = ld(r); if groups == 2 { c61 = ld(r + 16) }
        r += ms; c70 = ld(r); if groups == 2 { c71 = ld(r + 16) }
    }
    let a0 = v + off[0], a1 = v + off[1], a2 = v + off[2], a3 = v + off[3]
    let a4 = v + off[4], a5 = v + off[5], a6 = v + off[6], a7 = v + off[7]
    var pg = g, i = 0
    for _ in 0..<count {
        let b0 = ld(pg)
        if groups == 2 {
            let b1 = ld(pg + 16)
            var x = DV(repeating: a0[i]); c00.addProduct(x, b0); c01.addProduct(x, b1)
            x = DV(repeating: a1[i]); c10.addProduct(x, b0); c11.addProduct(x, b1)
            x = DV(repeating: a2[i]); c20.addProduct(x, b0); c21.addProduct(x, b1)
            x = DV(repeating: a3[i]); c30.addProduct(x, b0); c31.addProduct(x, b1)
            x = DV(repeating: a4[i]); c40.addProduct(x, b0); c41.addProduct(x, b1)
            x = DV(repeating: a5[i]); c50.addProduct(x, b0); c51.addProduct(x, b1)
            x = DV(repeating: a6[i]); c60.addProduct(x, b0); c61.addProduct(x, b1)
            x = DV(repeating: a7[i]); c70.addProduct(x, b0); c71.addProduct(x, b1)
        } else {
            c00.addProduct(DV(repeating: a0[i]), b0); c10.addProduct(DV(repeating: a1[i]), b0)
            c20.addProduct(DV(repeating: a2[i]), b0); c30.addProduct(DV(repeating: a3[i]), b0)
            c40.addProduct(DV(repeating: a4[i]), b0); c50.addProduct(DV(repeating: a5[i]), b0)
            c60.addProduct(DV(repeating: a6[i]), b0); c70.addProduct(DV(repeating: a7[i]), b0)
        }
        pg += ms
        i += vs
    }
    @inline(__always) func put(_ r: Int, _ s0: DV, _ s1: DV) {
        guard r < validRows else { return }
        let d = dU + r * ms
        if full {
            st(d, s0); if groups == 2 { st(d + 16, s1) }
        } else {
            st(d, ld(d) + s0); if groups == 2 { st(d + 16, ld(d + 16) + s1) }
        }
    }
    put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31)
    put(4, c40, c41); put(5, c50, c51); put(6, c60, c61); put(7, c70, c71)
}

private func gradientTile8x16(v: UnsafePointer<Float>, vs: Int, off: UnsafePointer<Int>, g: UnsafePointer<Float>,
                              ms: Int, count: Int, dU: UnsafeMutablePointer<Float>, validRows: Int) {
    gradientTile(1, v: v, vs: vs, off: off, g: g, ms: ms, count: count, dU: dU, validRows: validRows)
}

private func gradientTile8x32(v: UnsafePointer<Float>, vs: Int, off: UnsafePointer<Int>, g: UnsafePointer<Float>,
                              ms: Int, count: Int, dU: UnsafeMutablePointer<Float>, validRows: Int) {
    gradientTile(2, v: v, vs: vs, off: off, g: g, ms: ms, count: count, dU: dU, validRows: validRows)
}

/// dW (3,3,ic,oc) += the weight gradient of a Winograd convolution over `samples` images:
/// dU[ξ] = Σ_tiles V[ξ]ᵀ (A dY Aᵀ)[ξ] in blocks of tiles, then dW += Gᵀ dU G.
/// `dU` holds 36·c·mStride floats; `scratch` holds `scratchFloats` floats.
func runWinogradWeightGradient(shape sh: WinogradShape, samples: Int, input: UnsafePointer<Float>,
                               dY: UnsafePointer<Float>, dW: UnsafeMutablePointer<Float>,
                               dU: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                               scratchFloats: Int) {
    let total = samples * sh.tilesPerImage
    if total == 0 { return }
    let (vs, ms, c) = (sh.vStride, sh.mStride, sh.c)
    let block = winogradWeightBlock(sh, scratchFloats: scratchFloats)
    require(block > 0, "Winograd backward-weights: scratch too small")
    parallelZero(dU, count: 36 * c * ms)
    let v = scratch, g = scratch + 36 * block * vs
    let icTiles = (c + directMR - 1) / directMR
    let items = 36 * sh.panels * icTiles
    let jobs = min(items, 16)
    var first = 0
    while first < total {
        let count = min(block, total - first)
        // Transforms of the block's input patches and output-gradient tiles, 8 tiles per job.
        let groups = (count + 7) / 8
        parallelFor(groups) { job in
            withUnsafeTemporaryAllocation(of: DV.self, capacity: 36) { tmpBuf in
                let tmp = tmpBuf.baseAddress!
                for t in (job * 8)..<min(count, job * 8 + 8) {
                    let q = first + t
                    let n = q / sh.tilesPerImage, r = q % sh.tilesPerImage
                    let ty = r / sh.tilesX, tx = r % sh.tilesX
                    let image = input + n * sh.h * sh.w * c
                    for c0 in stride(from: 0, to: c, by: 16) {
                        transformInput(image, h: sh.h, w: sh.w, c: c, y0: ty * 4 - sh.pad, x0: tx * 4 - sh.pad,
                                       c0: c0, lanes: min(16, c - c0), tmp: tmp, dst: v + t * vs + c0,
                                       ξStride: block * vs)
                    }
                    let grad = dY + n * sh.oh * sh.ow * sh.oc
                    for o0 in stride(from: 0, to: ms, by: 16) {
                        let lanes = max(0, min(16, sh.oc - o0))
                        let dst = g + t * ms + o0
                        // Columns past the output channels are read by no kernel (a panel's
                        // live columns are those up to OC rounded up to 16).
                        if lanes == 0 {
                            break
                        } else {
                            transformGradient(grad, h: sh.oh, w: sh.ow, c: sh.oc, y0: ty * 4, x0: tx * 4,
                                              c0: o0, lanes: lanes, tmp: tmp, dst: dst, ξStride: block * ms)
                        }
                    }
                }
            }
        }
        // dU[ξ] += V[ξ]ᵀ × G[ξ]: 8 input channels × 48 output channels per tile of dU.
        parallelFor(jobs) { job in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: directMR + 2) { buf in
                let off = buf.baseAddress!, rowIn = off + directMR, rowOut = rowIn + 1
                rowIn[0] = 0; rowOut[0] = 0
                for item in chunkRange(job, of: jobs, count: items) {
                    let ξ = item / (sh.panels * icTiles), rem = item % (sh.panels * icTiles)
                    let panel = rem / icTiles, i0 = (rem % icTiles) * directMR
                    let mr = min(directMR, c - i0)
                    for r in 0..<directMR { off[r] = i0 + min(r, mr - 1) }
                    let pass = WeightPass(source: UnsafePointer(v + ξ * block * vs), hp: 0, wp: 0, c: vs, samples: 1,
                                          outH: 1, outW: count, oc: ms, stride: 1, kernel: 1,
                                          dY: UnsafePointer(g + ξ * block * ms), dW: dU)
                    // A narrow layer's last panel: only its 16 or 32 live columns.
                    let live = min(3, (sh.oc - panel * directNR + 15) / 16)
                    let gξ = UnsafePointer(g + ξ * block * ms + panel * directNR)
                    let dUξ = dU + ξ * c * ms + i0 * ms + panel * directNR
                    if live == 3 {
                        weightTile8x48(pass, rowCount: 1, rowIn: rowIn, rowOut: rowOut, off: off,
                                       dY: gξ, dW: dUξ, validRows: mr)
                    } else {
                        let vξ = UnsafePointer(v + ξ * block * vs)
                        if live == 1 {
                            gradientTile8x16(v: vξ, vs: vs, off: off, g: gξ, ms: ms, count: count, dU: dUξ, validRows: mr)
                        } else {
                            gradientTile8x32(v: vξ, vs: vs, off: off, g: gξ, ms: ms, count: count, dU: dUξ, validRows: mr)
                        }
                    }
                }
            }
        }
        first += count
    }
    // dW[ky][kx][i][o] += Σ G[ξy][ky] G[ξx][kx] dU[ξ][i][o].
    let ocStride = sh.oc
    parallelFor(min(c, 16)) { job in
        withUnsafeTemporaryAllocation(of: DV.self, capacity: 18) { buf in
            let tmp = buf.baseAddress!
            for i in chunkRange(job, of: min(c, 16), count: c) {
                for o0 in stride(from: 0, to: sh.oc, by: 16) {
                    let lanes = min(16, sh.oc - o0)
                    let s = UnsafePointer(dU + i * ms + o0)
                    let ξStride = c * ms
                    for a in 0..<6 {
                        let p = s + a * 6 * ξStride
                        let r = weightGradientRow(load(p, 16), load(p + ξStride, 16), load(p + 2 * ξStride, 16),
                                                  load(p + 3 * ξStride, 16), load(p + 4 * ξStride, 16),
                                                  load(p + 5 * ξStride, 16))
                        tmp[a * 3] = r.0; tmp[a * 3 + 1] = r.1; tmp[a * 3 + 2] = r.2
                    }
                    for kx in 0..<3 {
                        let col = weightGradientRow(tmp[kx], tmp[3 + kx], tmp[6 + kx], tmp[9 + kx],
                                                    tmp[12 + kx], tmp[15 + kx])
                        let d = dW + i * ocStride + o0
                        let tap = c * ocStride
                        var o = d + kx * tap; store(o, load(o, lanes) + col.0, lanes)
                        o = d + (3 + kx) * tap; store(o, load(o, lanes) + col.1, lanes)
                        o = d + (6 + kx) * tap; store(o, load(o, lanes) + col.2, lanes)
                    }
                }
            }
        }
    }
}

/// Tiles per block of the backward-weights reduction that fit `scratchFloats` (0: none fit).
/// A layer whose input channels are a multiple of 8 takes the largest multiple of 8 tiles
/// (at least `winogradMinWeightBlock`) whose V and G fit `winogradWeightBlockBytes`, so the
/// products read them from L2: with 128 tiles All-CNN-C's conv2 (96 → 96) built 3.5 MB of V and
/// G per block, more than this machine's 2 MiB L2, and on a busy host its backward-weights took
/// 57–92 ms per batch of 64 against 43–62 ms with 32 tiles (one thread, alternated runs). Every
/// dU element of such a layer is one chain over the tiles in order whatever the block size
/// (`weightTile8x48` starts full tiles from dU), so the bits do not change. A layer with a
/// ragged 8-row tile keeps `winogradTilesPerWeightBlock`: its ragged rows sum each block from
/// zero, so for it the block size is part of the result.
func winogradWeightBlock(_ sh: WinogradShape, scratchFloats: Int) -> Int {
    let perTile = 36 * (sh.vStride + sh.mStride)
    let fit = scratchFloats / perTile
    if fit < directMR { return 0 }
    var block = winogradTilesPerWeightBlock
    if sh.c % directMR == 0 {
        let inL2 = winogradWeightBlockBytes / (perTile * MemoryLayout<Float>.stride) / directMR * directMR
        block = min(block, max(winogradMinWeightBlock, inL2))
    }
    return min(block, fit)
}

/// Per-thread V and M buffers of the Winograd forward pass.
private let winogradScratch = ThreadScratch()

extension ConvResidual {
    /// conv + r for 16 channels of one pixel (v holds conv, r points at the pixel's channel c0
    /// of the residual, of which `lanes` = C_r − c0 are present; ≤ 0: none), as the add computes it.
    @inline(__always)
    static func added(_ v: DV, _ r: UnsafePointer<Float>, lanes: Int, first: Bool) -> DV {
        if lanes >= 16 { return v + load(r, 16) }
        if first { return v + (lanes > 0 ? load(r, lanes) : DV()) }
        if lanes <= 0 { return v }
        let present = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15) .< SIMD16<Int32>(repeating: Int32(lanes))
        return v.replacing(with: v + load(r, lanes), where: present)
    }
}
