#if os(Linux)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
#if DSL_AVX512
import _Builtin_intrinsics.intel
#endif
import DSLEngineC
import Synchronization

// Direct NHWC convolution kernels (no im2col): forward, backward-data (any stride) and
// backward-weights. Conv.swift dispatches to them (stride-1 3×3 layers with ≥ 16 channels and
// enough tiles run Winograd instead, Winograd.swift); 1×1 stride-1 unpadded convolutions stay
// a plain GEMM there,
// and backward-data falls back to GEMM + col2im where direct would waste work.
//
// Why: im2col writes K² copies of every input value (226 MB per batch of 64 for a 32×32×96
// 3×3 layer) and the GEMM streams them back from DRAM. The direct kernels read the input (or dY)
// itself, zero-padded in small cache-resident pieces, and form the im2col rows on the fly.
//
// Data layouts
//   slab  zero-padded source rows of one job (forward, backward-data): the rows of one image
//         that a band of ~64 output pixels reads, padded into a per-thread scratch (L1/L2).
//         Padding whole chunks in memory instead cost a DRAM round trip (conv3 fwd 70 → 87 %).
//   P     backward-weights: zero-padded input [n][Hp][Wp][C] per chunk of ≤ 1 MiB (stays in
//         cache; 16 MiB chunks ran stride-2 layers at ~70 % instead of ~82 %).
//   Wf    forward weights packed once per pass: [ocBlock][kh][kw][ic][48], OC zero-padded to a
//         multiple of 48. Row (kh, kw, ic) of a block is one 48-float line, so for fixed kh the
//         K·IC lines of a kernel row are contiguous, exactly like the K·IC input floats under
//         that kernel row (NHWC, channels innermost).
//   Wb    backward-data weights, per class of dX pixels (y mod s, x mod s): the class's kernel
//         taps, rotated 180° and transposed: [icBlock][t][u][oc][48] (see `DataClass`). For
//         stride 1 the single class is the full correlation of padded dY with rot180(W)ᵀ; for
//         stride 2 and 3×3 the four classes have 1×1, 1×2, 2×1 and 2×2 taps (no zero work).
//
// Register blocking (the same 8×48 tile as the GEMM micro-kernel in Gemm.swift; on Zen 4 one
// 512-bit FMA per cycle, 32 zmm registers; checked with objdump: no spills in the loop):
//   forward / backward-data  `gatherTile8x48`: 8 output pixels × 48 output channels in 24
//        `SIMD16<Float>` accumulators. The 8 pixels are 8 consecutive pixels of the flattened
//        grid (so any width and stride is handled the same way), each with its own source
//        pointer. For each kernel row the kernel walks the contiguous run of K·C floats under
//        it: per float 3 vector loads of weights, 8 broadcasts (one per pixel), 24 FMAs. The
//        accumulators start from the bias (forward: bias fused) or from the current dX
//        (backward-data accumulates). A ragged tail tile repeats the last pixel's pointer and
//        a ragged channel block goes through an 8×48 scratch tile, computed by the 8×16 or
//        8×32 kernel when its channels fit (`gatherTileColumns`: a 64-channel layer's second
//        block, 16 channels, multiplied 48 columns, two thirds of them zero weights); a block
//        of exactly 16 or 32 channels writes its full-height tiles in place.
//   backward-weights `weightTile8x48`: 8 consecutive depth rows (kh, kw, ic) × 48 output
//        channels of dW in 24 accumulators, streaming pixels: per pixel 8 broadcasts of input
//        values (pointer + offset of each depth row), 3 vector loads of dY, 24 FMAs. The tile
//        is loaded from dW and stored back once per sub-block, so dW is accumulated in place
//        (dW +=). A ragged OC block uses a scalar path.
//   first layers (3 input channels, a multiple of 48 output channels): the forward's weights
//        are small, so a job runs its tiles outside the channel blocks and writes each tile's
//        pixels whole, with non-temporal stores (the layer writes 32× more than it reads); dW
//        is reduced over 16 fixed pixel ranges into partial sums (`weightTile4x96` reads whole
//        dY rows), the bias gradient taken from the same rows. Only the first of a sub-block's
//        7 tiles would read its dY from DRAM, stalling, so each tile prefetches a seventh of
//        the next sub-block's dY, one line per pixel (`dsl_prefetch`, DSLEngineC): conv1
//        backward 4.1-5.1 → 3.6-3.8 ms per batch of 64 (one thread, four interleaved runs).
//
// Tiling and threads (never dependent on the thread count)
//   forward / backward-data: one job per (image, band of ~64 output pixels); a job pads its
//        source rows into its slab, then loops over channel blocks outside and its 8-pixel
//        tiles inside (the block's packed weights, ≤ 9·192·48 floats = 330 KiB, stay in L2).
//        Fewer than 8 such jobs (batch-1 inference: a 7×7 map is one band, a 14×14 map four)
//        left a thread idle: the channel blocks are then dealt out to jobs too, each padding
//        its own slab (`channelGroups`; GoogLeNet's 7×7 3×3 layers ran on one thread).
//        The s² classes of a strided backward-data share one parallel loop, a job doing every
//        class for its band, so the dX lines they share are completed in cache. Every output
//        element is one FMA chain in fixed order, computed by one thread.
//   backward-weights: pixels are cut into fixed blocks of whole output rows (≤ 512 pixels, in
//        L2); within a block the dW tiles are split into a fixed number of jobs, each walking
//        the block in ~128-pixel sub-blocks (the 48-channel dY slice, 24 KiB, stays in L1).
//        Every dW element is accumulated by one chain over the pixels in order, so the result
//        is independent of the thread count.
//
// Measured (ConvBenchTests, All-CNN-C 3×3 shapes, batch 64, 1 thread, % of one core's peak per
// CPU-second; activations on huge pages, see `allocateFloats`): stride-2 conv3 / conv6 forward
// 88–93 %, backward 78–84 %; conv1 (3 → 96) forward 82–84 %, backward (dW and bias) 78–84 %.
// Those figures are from the AMD Zen 4 host of the first sessions (one 512-bit FMA per cycle).
// On the Intel Xeon host of 2026-11-29 (two FMA ports, 48 KiB L1d, 2 MiB L2 per core) the same
// benchmark gives 50–65 %: the 8×48 tile streams its weights from L2 at 8 bytes per FMA, which
// one FMA port hid and two do not (a tile of 12 pixels × 32 channels would need 5.3).

typealias DV = SIMD16<Float>

@inline(__always) func ld(_ p: UnsafePointer<Float>) -> DV {
    UnsafeRawPointer(p).loadUnaligned(as: DV.self)
}
/// Non-temporal store of 16 floats (64-byte aligned): bypasses the caches, no read for
/// ownership. Only called when `hasAVX512F` (four SSE `movntps` instead ran 5x slower).
@inline(__always) func nt(_ p: UnsafeMutablePointer<Float>, _ v: DV) {
    #if DSL_AVX512
    _mm512_stream_ps(p, v)
    #else
    st(p, v)
    #endif
}

/// Whether the engine was compiled for AVX-512 (the build machine had it, Package.swift) and this
/// CPU has it: then `nt` stores non-temporally. (The SIMD16 vector passed to the intrinsic must
/// be in the AVX-512 register convention the intrinsic expects, hence the compile-time check.)
let hasAVX512F: Bool = {
    #if DSL_AVX512 && os(Linux)
    guard let file = fopen("/proc/cpuinfo", "r") else { return false }
    defer { fclose(file) }
    var line: UnsafeMutablePointer<CChar>? = nil
    var capacity = 0
    defer { free(line) }
    while getline(&line, &capacity, file) > 0 {
        let text = String(cString: line!)
        if text.hasPrefix("flags") { return text.split(separator: " ").contains("avx512f") }
    }
    return false
    #else
    return false
    #endif
}()

/// max(v, 0) per lane (one compare and a masked move; `pointwiseMax` was not inlined here).
@inline(__always) func rectified(_ v: DV) -> DV { v.replacing(with: 0, where: v .< 0) }

@inline(__always) func st(_ p: UnsafeMutablePointer<Float>, _ v: DV) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: DV.self)
}

/// g where x > 0, else 0 · g: the backward of a ReLU whose output is x (ReLUKernel's
/// `sign > 0 ? dOut : slope · dOut` with slope 0, the same bits, signed zeros included).
@inline(__always) func maskedByPositive(_ g: DV, _ x: DV) -> DV {
    g * DV(repeating: 0).replacing(with: 1, where: x .> 0)
}

/// g[i] = g[i] where x[i] > 0, else 0 · g[i], for i < count (`maskedByPositive`).
@inline(__always) func maskByPositive(_ g: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count { st(g + i, maskedByPositive(ld(g + i), ld(x + i))); i += 16 }
    let zero: Float = 0
    while i < count { g[i] = x[i] > 0 ? g[i] : zero * g[i]; i += 1 }
}

/// The gradient of a convolution's input x (NHWC, h×w×c per image) that its backward-data
/// multiplies by (x > 0) once complete: the backward of the ReLU whose output x is
/// (`ConvKernel.masksInputGradient`).
struct GradientMask {
    var gradient: UnsafeMutablePointer<Float>
    var input: UnsafePointer<Float>
    var h: Int, w: Int, c: Int

    /// Rows y0 ..< y1 of image n, channels c0 ..< c1.
    @inline(__always) func apply(n: Int, rows y0: Int, _ y1: Int, channels c0: Int, _ c1: Int) {
        let first = (n * h + y0) * w * c
        if c0 == 0 && c1 == c {
            maskByPositive(gradient + first, input + first, count: (y1 - y0) * w * c)
            return
        }
        for p in 0..<((y1 - y0) * w) {
            let o = first + p * c + c0
            maskByPositive(gradient + o, input + o, count: c1 - c0)
        }
    }

    /// All of `batch` images, in parallel.
    func apply(batch: Int) {
        let total = batch * h * w * c
        let chunks = elementwiseChunks(total)
        parallelFor(chunks) { chunk in
            let range = chunkRange(chunk, of: chunks, count: total)
            maskByPositive(gradient + range.lowerBound, input + range.lowerBound, count: range.count)
        }
    }
}

/// Output channels per register tile.
let directNR = 48
/// Output pixels per register tile.
let directMR = 8
/// 8-pixel tiles per parallel job in the forward / backward-data pass.
let pixelTilesPerJob = 8
/// Fewest parallel jobs a forward / backward-data pass is cut into: when its images and pixel
/// bands make fewer (batch-1 inference: GoogLeNet's 7×7 maps are one band, its 14×14 maps
/// four), the 48-channel blocks are dealt out to jobs too (`channelGroups`).
let directMinJobs = 8

/// Groups the `blocks` channel blocks of a pass are cut into when `spatialJobs` jobs of
/// (image, pixels) would leave threads idle: enough for `directMinJobs` jobs, at most one
/// block each. Every output element is computed by the same chain whatever the grouping.
@inline(__always) func channelGroups(spatialJobs: Int, blocks: Int) -> Int {
    spatialJobs >= directMinJobs ? 1 : max(1, min(blocks, (directMinJobs + spatialJobs - 1) / spatialJobs))
}
/// Largest packed weights (all channel blocks, floats) for which a slab job runs its tiles
/// outside its channel blocks (32 KiB: stays in L1).
let smallPackedFloats = 8192
/// Pixels per block of the backward-weights reduction (rounded to whole output rows).
nonisolated(unsafe) var weightPixelsPerBlock = 512
/// Largest padded input chunk of the backward-weights pass in floats (1 MiB: stays in cache).
nonisolated(unsafe) var weightChunkFloats = 262_144
/// Pixels per sub-block inside a backward-weights job (rounded to whole output rows).
nonisolated(unsafe) var weightPixelsPerSubBlock = 128
/// Parallel jobs per pixel block of the backward-weights reduction.
nonisolated(unsafe) var weightJobsPerBlock = 8

/// Copies `samples` NHWC images (h×w×c) into the zero-padded buffer `dst` ([n][hp][wp][c]),
/// placing pixel (y, x) at (y + top, x + left). Rows and columns outside are zero.
func padCopy(_ src: UnsafePointer<Float>, samples: Int, h: Int, w: Int, c: Int,
             top: Int, left: Int, hp: Int, wp: Int, into dst: UnsafeMutablePointer<Float>) {
    let rows = samples * hp
    let jobs = max(1, min(64, rows / 8))
    parallelFor(jobs) { job in
        for r in chunkRange(job, of: jobs, count: rows) {
            let n = r / hp, y = r % hp - top
            let d = dst + r * wp * c
            if y < 0 || y >= h {
                d.update(repeating: 0, count: wp * c)
                continue
            }
            if left > 0 { d.update(repeating: 0, count: left * c) }
            let s = src + ((n * h + y) * w) * c
            let count = w * c
            let o = d + left * c
            var i = 0
            while i + 16 <= count { st(o + i, ld(s + i)); i += 16 }
            while i < count { o[i] = s[i]; i += 1 }
            let right = wp - left - w
            if right > 0 { (d + (left + w) * c).update(repeating: 0, count: right * c) }
        }
    }
}

/// A convolution-shaped pass over a padded source. Grid pixel (n, y, x), n < samples,
/// y < gridH, x < gridW, reads the source at src(n, y, x) = source + n·srcImage + y·srcY + x·srcX
/// and writes out(n, y, x) = output + n·outImage + y·outY + x·outX (outC channels):
///   out[o] (= or +=) init[o] + Σ_{t < taps} Σ_{i < run} src(n, y, x)[t·tapStride + i] · packed[o / 48][t][i][o % 48]
/// Forward: taps = kernel rows, run = K·C floats under a kernel row.
struct DirectPass {
    var source: UnsafePointer<Float>
    var srcImage: Int, srcY: Int, srcX: Int
    var taps: Int, tapStride: Int, run: Int
    var samples: Int, gridH: Int, gridW: Int, outC: Int
    var packed: UnsafePointer<Float>     // [ceil(outC/48)][taps][run][48]
    var output: UnsafeMutablePointer<Float>
    var outImage: Int, outY: Int, outX: Int
    /// Accumulators start from this 48·blocks vector (bias, or zeros); nil: from the output (+=).
    var initial: UnsafePointer<Float>?
    /// Stores max(result, 0): a following ReLU fused into the pass (forward only).
    var relu = false
    /// When set, the source is this unpadded tensor instead of `source`/`srcImage`/`srcY`/`srcX`:
    /// each job zero-pads the rows it needs into a per-thread slab (no padded copy in memory).
    var slab: SlabSource? = nil
}

/// An unpadded NHWC source ([n][h][w][c]) seen through zero padding: padded pixel (r, q) is
/// raw pixel (r − top, q − left), zero outside. Grid pixel (y, x) reads padded pixel
/// (y·rowStep + rowOffset, x·colStep + colOffset) (c channels; padded rows are wp pixels wide).
struct SlabSource {
    var raw: UnsafePointer<Float>
    var h: Int, w: Int, c: Int
    var top: Int, left: Int, wp: Int
    var rowStep: Int, rowOffset: Int
    var colStep: Int, colOffset: Int
}

/// Grid rows per job in slab mode (about pixelTilesPerJob tiles of pixels).
@inline(__always) func slabBandRows(gridW: Int) -> Int { max(1, directMR * pixelTilesPerJob / max(1, gridW)) }

/// Runs a `DirectPass` over all its pixels, in parallel over fixed groups of pixel tiles.
func runDirectPass(_ p: DirectPass) {
    if let slab = p.slab {
        runDirectPassSlab(p, slab)
        return
    }
    let perImage = p.gridH * p.gridW
    let pixels = p.samples * perImage
    if pixels == 0 || p.taps == 0 || p.run == 0 { return }
    let tiles = (pixels + directMR - 1) / directMR
    let pixelJobs = (tiles + pixelTilesPerJob - 1) / pixelTilesPerJob
    let blocks = (p.outC + directNR - 1) / directNR
    let groups = channelGroups(spatialJobs: pixelJobs, blocks: blocks)
    let blockFloats = p.taps * p.run * directNR
    parallelFor(pixelJobs * groups) { job in
        // Scratch on the stack: 8 input pointers, 8 output pointers, 8 real output pointers,
        // an 8×48 edge tile.
        withUnsafeTemporaryAllocation(of: Float.self, capacity: directMR * directNR + 16) { tileBuf in
        withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: directMR) { inPtrs in
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 2 * directMR) { outPtrs in
            let tile = tileBuf.baseAddress!
            let a = inPtrs.baseAddress!, c = outPtrs.baseAddress!, real = c + directMR
            let g = job % groups, t0 = job / groups * pixelTilesPerJob, t1 = min(tiles, t0 + pixelTilesPerJob)
            for b in (blocks * g / groups)..<(blocks * (g + 1) / groups) {
                let o0 = b * directNR
                let nr = min(directNR, p.outC - o0)
                let w = p.packed + b * blockFloats
                let initial = p.initial.map { $0 + o0 }
                for t in t0..<t1 {
                    let first = t * directMR
                    let mr = min(directMR, pixels - first)
                    for r in 0..<directMR {
                        let q = first + min(r, mr - 1)
                        let n = q / perImage, rem = q % perImage
                        let y = rem / p.gridW, x = rem % p.gridW
                        a[r] = p.source + n * p.srcImage + y * p.srcY + x * p.srcX
                        real[r] = p.output + n * p.outImage + y * p.outY + x * p.outX + o0
                        c[r] = real[r]
                    }
                    if mr == directMR && nr % 16 == 0 {
                        // A whole tile, or a full-height one of a narrow block: in place.
                        gatherTileColumns(a, kernel: p.taps, rowStride: p.tapStride, run: p.run, w: w,
                                          c, initial: initial, relu: p.relu, columns: nr)
                    } else {
                        // Ragged tile: compute into the scratch tile, copy the valid part.
                        for r in 0..<directMR { c[r] = tile + r * directNR }
                        if initial == nil {
                            tile.update(repeating: 0, count: directMR * directNR)
                            for r in 0..<mr { (tile + r * directNR).update(from: real[r], count: nr) }
                        }
                        gatherTileColumns(a, kernel: p.taps, rowStride: p.tapStride, run: p.run, w: w,
                                          c, initial: initial, relu: p.relu, columns: nr)
                        for r in 0..<mr { real[r].update(from: tile + r * directNR, count: nr) }
                    }
                }
            }
        }
        }
        }
    }
}

/// Slab mode of `runDirectPass`.
private func runDirectPassSlab(_ p: DirectPass, _ sl: SlabSource) { runDirectPasses([p]) }

/// Runs several slab-mode passes over the same samples (e.g. the pixel classes of a strided
/// backward-data, which write disjoint pixels of the same tensor) as one parallel loop: one job
/// per (image, band of grid rows) runs every pass's band in turn, so the output lines the
/// passes share are completed while they are in cache. Each job zero-pads the source rows of
/// its band into this thread's scratch, then runs its tiles (the band's pixels, flattened)
/// over every channel block, or over one group of them when there are few (image, band) jobs
/// (`channelGroups`).
///
/// With a `mask` (the classes of a backward-data with stride `maskStride`, together covering
/// every dX pixel), each job then multiplies the dX rows its band completed by (x > 0) while
/// they are in cache: grid rows y0 ..< y1 are dX rows stride·y0 ..< stride·y1.
func runDirectPasses(_ passes: [DirectPass], mask: GradientMask? = nil, maskStride: Int = 1) {
    guard let samples = passes.first?.samples, samples > 0 else { return }
    let bandRows = slabBandRows(gridW: passes.map(\.gridW).max()!)
    let bands = passes.map { ($0.gridH + bandRows - 1) / bandRows }.max()!
    if bands == 0 { return }
    let blockCount = passes.map { ($0.outC + directNR - 1) / directNR }.max()!
    let groups = channelGroups(spatialJobs: samples * bands, blocks: blockCount)
    parallelFor(samples * bands * groups) { job in
        let g = job % groups, n = job / groups / bands, band = job / groups % bands
        for p in passes {
            let y0 = band * bandRows, y1 = min(p.gridH, y0 + bandRows)
            let blocks = (p.outC + directNR - 1) / directNR
            let b0 = blocks * g / groups, b1 = blocks * (g + 1) / groups
            if y0 < y1 && b0 < b1 && p.gridW > 0 && p.taps > 0 && p.run > 0 {
                directSlabJob(p, p.slab!, n: n, y0: y0, y1: y1, bandRows: bandRows, blocks: b0..<b1)
            }
        }
        if let mask {
            let r0 = band * bandRows * maskStride, r1 = min(mask.h, (band + 1) * bandRows * maskStride)
            let c0 = min(mask.c, blockCount * g / groups * directNR)
            let c1 = min(mask.c, blockCount * (g + 1) / groups * directNR)
            if r0 < r1 && c0 < c1 { mask.apply(n: n, rows: r0, r1, channels: c0, c1) }
        }
        // Non-temporal stores are weakly ordered: complete them before the job counts as done
        // (a sequentially consistent fence is an mfence on x86-64).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
    }
}

/// Grid rows y0..<y1 of image n of a slab-mode pass, channel blocks `blockRange`.
@inline(__always)
private func directSlabJob(_ p: DirectPass, _ sl: SlabSource, n: Int, y0: Int, y1: Int, bandRows: Int,
                           blocks blockRange: Range<Int>) {
    let blocks = (p.outC + directNR - 1) / directNR
    let blockFloats = p.taps * p.run * directNR
    let c = sl.c, wp = sl.wp
    let maxSlabRows = (bandRows - 1) * sl.rowStep + p.taps
    let slabFloats = maxSlabRows * wp * c
    let slab = directScratch.floats(slabFloats + directMR * directNR + 16)
    let tile = slab + slabFloats
    // Padded rows ra ..< ra + rows of image n.
    let ra = y0 * sl.rowStep + sl.rowOffset
    let rows = (y1 - 1 - y0) * sl.rowStep + p.taps
    let image = sl.raw + n * sl.h * sl.w * c
    for j in 0..<rows {
        let d = slab + j * wp * c
        let y = ra + j - sl.top
        if y < 0 || y >= sl.h {
            d.update(repeating: 0, count: wp * c)
            continue
        }
        if sl.left > 0 { d.update(repeating: 0, count: sl.left * c) }
        let src = image + y * sl.w * c
        let count = min(sl.w, wp - sl.left) * c
        let o = d + sl.left * c
        var i = 0
        while i + 16 <= count { st(o + i, ld(src + i)); i += 16 }
        while i < count { o[i] = src[i]; i += 1 }
        let right = wp - sl.left - sl.w
        if right > 0 { (d + (sl.left + sl.w) * c).update(repeating: 0, count: right * c) }
    }
    let pixels = (y1 - y0) * p.gridW
    let tiles = (pixels + directMR - 1) / directMR
    // Channel blocks outside and tiles inside keep a block's packed weights in cache; when all
    // blocks' weights are small (few input channels), tiles go outside instead, so that each
    // tile's output pixels are written in full, sequentially (conv1 of All-CNN-C: the
    // half-pixel stores of the block-outer order stalled on cache misses).
    let tilesOutside = blocks > 1 && blocks * blockFloats <= smallPackedFloats
    // Such a layer writes far more than it reads (3 input channels → 96 output channels): its
    // output goes to memory with non-temporal stores (All-CNN-C conv1 forward 61 → 80 % of peak).
    // A 512-bit non-temporal store faults unless its address is 64-byte aligned: only when
    // every pixel's 48-channel block starts on a 16-float boundary (output channels a multiple
    // of 16; `input 8x8x3` / `conv 3 1 50` crashed here).
    let streaming = tilesOutside && p.initial != nil && hasAVX512F && streamable(p)
    withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: directMR) { inPtrs in
    withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: 3 * directMR) { outPtrs in
        let a = inPtrs.baseAddress!, cp = outPtrs.baseAddress!, real = cp + directMR, pixel = real + directMR
        for pass in tilesOutside ? blockRange.prefix(1) : blockRange {
            // Grid pixel (y, x) of the next tile's first pixel, advanced without divisions
            // (they cost a third of the time of a 3-input-channel layer's tile).
            var y = y0, x = 0
            for t in 0..<tiles {
                let first = t * directMR
                let mr = min(directMR, pixels - first)
                for r in 0..<directMR {
                    if r < mr {
                        a[r] = UnsafePointer(slab) + ((y * sl.rowStep + sl.rowOffset - ra) * wp
                                                      + x * sl.colStep + sl.colOffset) * c
                        pixel[r] = p.output + n * p.outImage + y * p.outY + x * p.outX
                        x += 1
                        if x == p.gridW { x = 0; y += 1 }
                    } else {
                        a[r] = a[r - 1]
                        pixel[r] = pixel[r - 1]
                    }
                }
                for b in tilesOutside ? blockRange : pass..<(pass + 1) {
                    let o0 = b * directNR
                    let nr = min(directNR, p.outC - o0)
                    let w = p.packed + b * blockFloats
                    let initial = p.initial.map { $0 + o0 }
                    for r in 0..<directMR { real[r] = pixel[r] + o0; cp[r] = real[r] }
                    if mr == directMR && nr % 16 == 0 {
                        // A whole tile, or a full-height one of a narrow block of 16 or 32 channels
                        // (the 8×16 / 8×32 kernels store exactly those): in place.
                        gatherTileColumns(a, kernel: p.taps, rowStride: wp * c, run: p.run, w: w,
                                          cp, initial: initial, streaming: streaming, relu: p.relu, columns: nr)
                    } else {
                        for r in 0..<directMR { cp[r] = tile + r * directNR }
                        if initial == nil {
                            tile.update(repeating: 0, count: directMR * directNR)
                            for r in 0..<mr { (tile + r * directNR).update(from: real[r], count: nr) }
                        }
                        gatherTileColumns(a, kernel: p.taps, rowStride: wp * c, run: p.run, w: w,
                                          cp, initial: initial, relu: p.relu, columns: nr)
                        for r in 0..<mr { real[r].update(from: tile + r * directNR, count: nr) }
                    }
                }
            }
        }
    }
    }
}

/// A tile of a block with `columns` live output channels: the 8×16 or 8×32 kernel when they fit
/// in 16 or 32 (the rest of a narrow layer's 48-wide block is zero weights), else the 8×48
/// one. The same bits in the live columns. The narrow kernels write 16 or 32 floats per row of
/// `c`: a ragged tile's go to the 8×48 scratch tile; with exactly 16 or 32 columns, a full-
/// height tile's go to the output itself (GoogLeNet's 64- and 128-channel 7×7 and 5×5 layers:
/// a 16- or 32-channel block each, copied through the scratch tile before).
@inline(__always)
func gatherTileColumns(_ a: UnsafeMutablePointer<UnsafePointer<Float>>, kernel: Int, rowStride: Int, run: Int,
                       w: UnsafePointer<Float>, _ c: UnsafeMutablePointer<UnsafeMutablePointer<Float>>,
                       initial: UnsafePointer<Float>?, streaming: Bool = false, relu: Bool, columns: Int) {
    if columns <= 16 {
        gatherTile8x16(a, kernel: kernel, rowStride: rowStride, run: run, w: w, c, initial: initial, relu: relu)
    } else if columns <= 32 {
        gatherTile8x32(a, kernel: kernel, rowStride: rowStride, run: run, w: w, c, initial: initial, relu: relu)
    } else {
        gatherTile8x48(a, kernel: kernel, rowStride: rowStride, run: run, w: w, c, initial: initial,
                       streaming: streaming, relu: relu)
    }
}

/// `gatherTile8x48` on the first 16·`groups` columns of the 48-wide weight lines (groups 1
/// or 2), in its order of operations.
@inline(__always)
private func gatherTileNarrow(_ groups: Int, _ a: UnsafeMutablePointer<UnsafePointer<Float>>, kernel: Int,
                              rowStride: Int, run: Int, w: UnsafePointer<Float>,
                              _ c: UnsafeMutablePointer<UnsafeMutablePointer<Float>>,
                              initial: UnsafePointer<Float>?, relu: Bool) {
    var c00 = DV(), c10 = DV(), c20 = DV(), c30 = DV(), c40 = DV(), c50 = DV(), c60 = DV(), c70 = DV()
    var c01 = DV(), c11 = DV(), c21 = DV(), c31 = DV(), c41 = DV(), c51 = DV(), c61 = DV(), c71 = DV()
    if let s = initial {
        let i0 = ld(s)
        c00 = i0; c10 = i0; c20 = i0; c30 = i0; c40 = i0; c50 = i0; c60 = i0; c70 = i0
        if groups == 2 {
            let i1 = ld(s + 16)
            c01 = i1; c11 = i1; c21 = i1; c31 = i1; c41 = i1; c51 = i1; c61 = i1; c71 = i1
        }
    } else {
        c00 = ld(c[0]); c10 = ld(c[1]); c20 = ld(c[2]); c30 = ld(c[3])
        c40 = ld(c[4]); c50 = ld(c[5]); c60 = ld(c[6]); c70 = ld(c[7])
        if groups == 2 {
            c01 = ld(c[0] + 16); c11 = ld(c[1] + 16); c21 = ld(c[2] + 16); c31 = ld(c[3] + 16)
            c41 = ld(c[4] + 16); c51 = ld(c[5] + 16); c61 = ld(c[6] + 16); c71 = ld(c[7] + 16)
        }
    }
    var pb = w
    for ky in 0..<kernel {
        let off = ky * rowStride
        let a0 = a[0] + off, a1 = a[1] + off, a2 = a[2] + off, a3 = a[3] + off
        let a4 = a[4] + off, a5 = a[5] + off, a6 = a[6] + off, a7 = a[7] + off
        for i in 0..<run {
            let b0 = ld(pb)
            if groups == 2 {
                let b1 = ld(pb + 16)
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
            pb += directNR
        }
    }
    @inline(__always) func put(_ p: UnsafeMutablePointer<Float>, _ s0: DV, _ s1: DV) {
        st(p, relu ? rectified(s0) : s0)
        if groups == 2 { st(p + 16, relu ? rectified(s1) : s1) }
    }
    put(c[0], c00, c01); put(c[1], c10, c11); put(c[2], c20, c21); put(c[3], c30, c31)
    put(c[4], c40, c41); put(c[5], c50, c51); put(c[6], c60, c61); put(c[7], c70, c71)
}

func gatherTile8x16(_ a: UnsafeMutablePointer<UnsafePointer<Float>>, kernel: Int, rowStride: Int, run: Int,
                    w: UnsafePointer<Float>, _ c: UnsafeMutablePointer<UnsafeMutablePointer<Float>>,
                    initial: UnsafePointer<Float>?, relu: Bool) {
    gatherTileNarrow(1, a, kernel: kernel, rowStride: rowStride, run: run, w: w, c, initial: initial, relu: relu)
}

func gatherTile8x32(_ a: UnsafeMutablePointer<UnsafePointer<Float>>, kernel: Int, rowStride: Int, run: Int,
                    w: UnsafePointer<Float>, _ c: UnsafeMutablePointer<UnsafeMutablePointer<Float>>,
                    initial: UnsafePointer<Float>?, relu: Bool) {
    gatherTileNarrow(2, a, kernel: kernel, rowStride: rowStride, run: run, w: w, c, initial: initial, relu: relu)
}

/// Whether every output block of a pass (pixel start + 48·b) is 64-byte aligned, as the
/// non-temporal stores of `gatherTile8x48(streaming:)` require.
func streamable(_ p: DirectPass) -> Bool {
    Int(bitPattern: p.output) % 64 == 0 && p.outImage % 16 == 0 && p.outY % 16 == 0 && p.outX % 16 == 0
}

/// The 8×48 direct-convolution micro-kernel. Pixel r reads a[r] + ky·rowStride + i for
/// i in 0..<run (the K·C floats under kernel row ky); weights are `run` 48-float lines per
/// kernel row, consecutive. Results go to c[r][0..<48], starting from `initial` (48 floats)
/// or, when nil, from c[r] itself; `streaming` stores them non-temporally (64-byte aligned
/// c[r], AVX-512 only, see `nt`); `relu` stores max(result, 0). Also the GEMM of the Winograd
/// passes (Winograd.swift).
@inline(__always)
func gatherTile8x48(_ a: UnsafeMutablePointer<UnsafePointer<Float>>, kernel: Int,
                    rowStride: Int, run: Int, w: UnsafePointer<Float>,
                    _ c: UnsafeMutablePointer<UnsafeMutablePointer<Float>>,
                    initial: UnsafePointer<Float>?, streaming: Bool = false, relu: Bool = false) {
    var c00: DV, c01: DV, c02: DV, c10: DV, c11: DV, c12: DV, c20: DV, c21: DV, c22: DV
    var c30: DV, c31: DV, c32: DV, c40: DV, c41: DV, c42: DV, c50: DV, c51: DV, c52: DV
    var c60: DV, c61: DV, c62: DV, c70: DV, c71: DV, c72: DV
    if let s = initial {
        let i0 = ld(s), i1 = ld(s + 16), i2 = ld(s + 32)
        c00 = i0; c01 = i1; c02 = i2; c10 = i0; c11 = i1; c12 = i2
        c20 = i0; c21 = i1; c22 = i2; c30 = i0; c31 = i1; c32 = i2
        c40 = i0; c41 = i1; c42 = i2; c50 = i0; c51 = i1; c52 = i2
        c60 = i0; c61 = i1; c62 = i2; c70 = i0; c71 = i1; c72 = i2
    } else {
        var r = UnsafePointer(c[0]); c00 = ld(r); c01 = ld(r + 16); c02 = ld(r + 32)
        r = UnsafePointer(c[1]); c10 = ld(r); c11 = ld(r + 16); c12 = ld(r + 32)
        r = UnsafePointer(c[2]); c20 = ld(r); c21 = ld(r + 16); c22 = ld(r + 32)
        r = UnsafePointer(c[3]); c30 = ld(r); c31 = ld(r + 16); c32 = ld(r + 32)
        r = UnsafePointer(c[4]); c40 = ld(r); c41 = ld(r + 16); c42 = ld(r + 32)
        r = UnsafePointer(c[5]); c50 = ld(r); c51 = ld(r + 16); c52 = ld(r + 32)
        r = UnsafePointer(c[6]); c60 = ld(r); c61 = ld(r + 16); c62 = ld(r + 32)
        r = UnsafePointer(c[7]); c70 = ld(r); c71 = ld(r + 16); c72 = ld(r + 32)
    }
    var pb = w
    for ky in 0..<kernel {
        let off = ky * rowStride
        let a0 = a[0] + off, a1 = a[1] + off, a2 = a[2] + off, a3 = a[3] + off
        let a4 = a[4] + off, a5 = a[5] + off, a6 = a[6] + off, a7 = a[7] + off
        for i in 0..<run {
            let b0 = ld(pb), b1 = ld(pb + 16), b2 = ld(pb + 32)
            var x = DV(repeating: a0[i])
            c00.addProduct(x, b0); c01.addProduct(x, b1); c02.addProduct(x, b2)
            x = DV(repeating: a1[i])
            c10.addProduct(x, b0); c11.addProduct(x, b1); c12.addProduct(x, b2)
            x = DV(repeating: a2[i])
            c20.addProduct(x, b0); c21.addProduct(x, b1); c22.addProduct(x, b2)
            x = DV(repeating: a3[i])
            c30.addProduct(x, b0); c31.addProduct(x, b1); c32.addProduct(x, b2)
            x = DV(repeating: a4[i])
            c40.addProduct(x, b0); c41.addProduct(x, b1); c42.addProduct(x, b2)
            x = DV(repeating: a5[i])
            c50.addProduct(x, b0); c51.addProduct(x, b1); c52.addProduct(x, b2)
            x = DV(repeating: a6[i])
            c60.addProduct(x, b0); c61.addProduct(x, b1); c62.addProduct(x, b2)
            x = DV(repeating: a7[i])
            c70.addProduct(x, b0); c71.addProduct(x, b1); c72.addProduct(x, b2)
            pb += directNR
        }
    }
    @inline(__always) func put(_ p: UnsafeMutablePointer<Float>, _ result: DV) {
        let v = relu ? rectified(result) : result
        if streaming { nt(p, v) } else { st(p, v) }
    }
    var r = c[0]; put(r, c00); put(r + 16, c01); put(r + 32, c02)
    r = c[1]; put(r, c10); put(r + 16, c11); put(r + 32, c12)
    r = c[2]; put(r, c20); put(r + 16, c21); put(r + 32, c22)
    r = c[3]; put(r, c30); put(r + 16, c31); put(r + 32, c32)
    r = c[4]; put(r, c40); put(r + 16, c41); put(r + 32, c42)
    r = c[5]; put(r, c50); put(r + 16, c51); put(r + 32, c52)
    r = c[6]; put(r, c60); put(r + 16, c61); put(r + 32, c62)
    r = c[7]; put(r, c70); put(r + 16, c71); put(r + 32, c72)
}

/// Packs forward weights W (k,k,ic,oc) into [ceil(oc/48)][k][k][ic][48] (zero-padded channels).
func packForwardWeights(_ w: UnsafePointer<Float>, k: Int, ic: Int, oc: Int,
                        into dst: UnsafeMutablePointer<Float>) {
    let depth = k * k * ic
    let blocks = (oc + directNR - 1) / directNR
    let jobs = min(depth, 16)
    parallelFor(jobs) { job in
        for row in chunkRange(job, of: jobs, count: depth) {
            for b in 0..<blocks {
                let o0 = b * directNR, nr = min(directNR, oc - o0)
                let d = dst + (b * depth + row) * directNR
                let s = w + row * oc + o0
                for j in 0..<nr { d[j] = s[j] }
                if nr < directNR { (d + nr).update(repeating: 0, count: directNR - nr) }
            }
        }
    }
}

/// One class of output pixels of backward-data for stride s: dX pixels (y, x) with
/// y ≡ ry, x ≡ rx (mod s). Only kernel taps ky ≡ (ry + pad) (mod s) reach them:
/// ky = kyMin + s·t for t < tapsY, from dY row oy = y/s + ey − t (and likewise for x).
struct DataClass {
    var ry: Int, rx: Int
    var kyMin: Int, kxMin: Int
    var tapsY: Int, tapsX: Int
    var ey: Int, ex: Int
    /// Offset of the class's packed weights.
    var packedOffset: Int

    static func make(kernel k: Int, stride s: Int, pad p: Int, ry: Int, rx: Int, offset: Int) -> DataClass {
        let kyMin = (ry + p) % s, kxMin = (rx + p) % s
        let ty = kyMin < k ? (k - kyMin + s - 1) / s : 0
        let tx = kxMin < k ? (k - kxMin + s - 1) / s : 0
        return DataClass(ry: ry, rx: rx, kyMin: kyMin, kxMin: kxMin, tapsY: ty, tapsX: tx,
                         ey: (ry + p - kyMin) / s, ex: (rx + p - kxMin) / s, packedOffset: offset)
    }
}

/// The s² classes of backward-data, with packed-weight offsets for `ic` input channels.
func makeDataClasses(kernel k: Int, stride s: Int, pad p: Int, ic: Int, oc: Int) -> [DataClass] {
    var classes: [DataClass] = []
    var offset = 0
    let icPad = (ic + directNR - 1) / directNR * directNR
    for ry in 0..<s {
        for rx in 0..<s {
            let c = DataClass.make(kernel: k, stride: s, pad: p, ry: ry, rx: rx, offset: offset)
            classes.append(c)
            offset += icPad * c.tapsY * c.tapsX * oc
        }
    }
    return classes
}

/// Packs the backward-data weights of one class: [ceil(ic/48)][t'][u'][oc][48] =
/// W[kyMin + s·(tapsY−1−t')][kxMin + s·(tapsX−1−u')][ic][oc] (dY rows and columns increasing).
func packBackwardWeights(_ w: UnsafePointer<Float>, k: Int, stride s: Int, ic: Int, oc: Int,
                         class cl: DataClass, into dst: UnsafeMutablePointer<Float>) {
    let blocks = (ic + directNR - 1) / directNR
    let blockFloats = cl.tapsY * cl.tapsX * oc * directNR
    parallelFor(blocks * cl.tapsY) { job in
        let b = job / cl.tapsY, t = job % cl.tapsY
        let i0 = b * directNR, nr = min(directNR, ic - i0)
        for u in 0..<cl.tapsX {
            let ky = cl.kyMin + s * (cl.tapsY - 1 - t), kx = cl.kxMin + s * (cl.tapsX - 1 - u)
            let src = w + (ky * k + kx) * ic * oc
            var d = dst + b * blockFloats + (t * cl.tapsX + u) * oc * directNR
            for o in 0..<oc {
                for j in 0..<nr { d[j] = src[(i0 + j) * oc + o] }
                if nr < directNR { (d + nr).update(repeating: 0, count: directNR - nr) }
                d += directNR
            }
        }
    }
}

/// The backward-weights reduction of one chunk: dW[(ky,kx,c), o] += Σ_pixels
/// P[n, oy·s + ky, ox·s + kx, c] · dY[n, oy, ox, o]. P is the padded input ([n][hp][wp][c]),
/// dY the chunk's output gradient ([n][outH][outW][oc]).
struct WeightPass {
    var source: UnsafePointer<Float>
    var hp: Int, wp: Int, c: Int
    var samples: Int
    var outH: Int, outW: Int, oc: Int
    var stride: Int, kernel: Int
    var dY: UnsafePointer<Float>
    var dW: UnsafeMutablePointer<Float>
    /// When set (small dW only, see `runWeightPass`), the bias gradient is accumulated too:
    /// dB[o] += Σ_pixels dY[pixel, o], from the dY rows the pass streams anyway.
    var dB: UnsafeMutablePointer<Float>? = nil
    /// Room for the partial sums of a small dW (`partialSumFloats(kernel:c:oc:)` floats);
    /// nil allocates them per call.
    var partials: UnsafeMutablePointer<Float>? = nil
}

extension WeightPass {
    /// rowIn[i] / rowOut[i]: where output row `rows.lowerBound + i` starts in the padded input
    /// and in dY.
    @inline(__always)
    func fillRowOffsets(rows: Range<Int>, rowIn: UnsafeMutablePointer<Int>, rowOut: UnsafeMutablePointer<Int>) {
        for row in rows {
            let n = row / outH, oy = row % outH
            rowIn[row - rows.lowerBound] = (n * hp + oy * stride) * wp * c
            rowOut[row - rows.lowerBound] = row * outW * oc
        }
    }

    /// off[r]: offset of depth row (kh, kw, ic) `rows.lowerBound + r` within a padded input
    /// window; a ragged tile (only `valid` rows) repeats its last valid row.
    @inline(__always)
    func fillDepthOffsets(_ off: UnsafeMutablePointer<Int>, rows: Range<Int>, valid: Int) {
        let run = kernel * c
        for r in 0..<rows.count {
            let d = rows.lowerBound + min(r, valid - 1)
            off[r] = (d / run) * wp * c + d % run
        }
    }
}

/// Floats of the partial sums `runWeightPass` needs for a small dW (with the bias gradient).
func partialSumFloats(kernel: Int, c: Int, oc: Int) -> Int { weightPartials * (kernel * kernel * c * oc + oc) }

/// Largest dW (depth × output channels, in floats) reduced with per-job partial sums.
let weightPartialFloats = 32_768
/// Fixed number of pixel ranges (and partial sums) of that reduction.
let weightPartials = 16

/// Whether `runWeightPass` reduces this dW with partial sums (and can fuse the bias gradient).
func usesWeightPartials(kernel: Int, c: Int, oc: Int) -> Bool { kernel * kernel * c * oc <= weightPartialFloats }

/// Runs a `WeightPass`: fixed pixel blocks in order; within a block, fixed jobs of dW tiles.
/// A job walks its block in sub-blocks of ~128 pixels (the 48-channel dY slice, 24 KiB, stays
/// in L1 across the job's depth tiles) and accumulates each tile in place in dW.
/// A small dW (first layers: K·K·3 rows) has too few tiles to share out per block; it is
/// reduced instead over `weightPartials` fixed pixel ranges, each into its own partial sum,
/// and the partial sums are added to dW in a fixed order.
func runWeightPass(_ p: WeightPass) {
    let rows = p.samples * p.outH
    if rows == 0 { return }
    let depth = p.kernel * p.kernel * p.c
    let rowsPerBlock = max(1, weightPixelsPerBlock / p.outW)
    let rowsPerSub = max(1, weightPixelsPerSubBlock / p.outW)
    let depthTiles = (depth + directMR - 1) / directMR
    let blocks = (p.oc + directNR - 1) / directNR
    let tiles = depthTiles * blocks
    if usesWeightPartials(kernel: p.kernel, c: p.c, oc: p.oc) {
        runWeightPassPartials(p, rowsPerSub: rowsPerSub, depthTiles: depthTiles, tiles: tiles)
        return
    }
    require(p.dB == nil, "bias gradient only with partial sums")
    // A fixed number of jobs per pixel block, each a run of consecutive tiles (mostly of one
    // channel block, so they share its dY columns).
    let jobsPerBlock = max(1, min(tiles, weightJobsPerBlock))
    var r0 = 0
    while r0 < rows {
        let r1 = min(rows, r0 + rowsPerBlock)
        parallelFor(jobsPerBlock) { job in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: directMR + 2 * rowsPerSub) { buf in
                let off = buf.baseAddress!
                let rowIn = off + directMR, rowOut = rowIn + rowsPerSub
                let tileRange = chunkRange(job, of: jobsPerBlock, count: tiles)
                var s0 = r0
                while s0 < r1 {
                    let s1 = min(r1, s0 + rowsPerSub)
                    p.fillRowOffsets(rows: s0..<s1, rowIn: rowIn, rowOut: rowOut)
                    for t in tileRange {
                        let b = t / depthTiles, dt = t % depthTiles
                        let o0 = b * directNR, nr = min(directNR, p.oc - o0)
                        let d0 = dt * directMR, mr = min(directMR, depth - d0)
                        p.fillDepthOffsets(off, rows: d0..<(d0 + directMR), valid: mr)
                        let dw = p.dW + d0 * p.oc + o0
                        if nr == directNR {
                            weightTile8x48(p, rowCount: s1 - s0, rowIn: rowIn, rowOut: rowOut, off: off,
                                           dY: p.dY + o0, dW: dw, validRows: mr)
                        } else {
                            weightTileRagged(p, rowCount: s1 - s0, rowIn: rowIn, rowOut: rowOut, off: off,
                                             dY: p.dY + o0, dW: dw, validRows: mr, validCols: nr)
                        }
                    }
                    s0 = s1
                }
            }
        }
        r0 = r1
    }
}

/// The partial-sum mode of `runWeightPass` (small dW).
private func runWeightPassPartials(_ p: WeightPass, rowsPerSub: Int, depthTiles: Int, tiles: Int) {
    let rows = p.samples * p.outH
    let depth = p.kernel * p.kernel * p.c
    let withBias = p.dB != nil
    let size = depth * p.oc + (withBias ? p.oc : 0)
    let jobs = min(weightPartials, rows)
    // A fresh buffer of this size is mapped and faulted in on every call: the kernel owns one.
    let owned = p.partials == nil ? UnsafeMutablePointer<Float>.allocate(capacity: jobs * size) : nil
    defer { owned?.deallocate() }
    let partials = p.partials ?? owned!
    // With a multiple of 96 output channels, 4 depth rows × 96 channels per tile: every dY
    // pixel row is read whole (the 8×48 tiles read half rows, which stalled on cache misses),
    // and 27 depth rows waste 1 row of 28 instead of 5 of 32.
    let wide = p.oc % (2 * directNR) == 0
    let wideMR = 4
    let wideDepthTiles = (depth + wideMR - 1) / wideMR
    let wideTiles = wideDepthTiles * p.oc / (2 * directNR)
    parallelFor(jobs) { job in
        let partial = partials + job * size
        partial.initialize(repeating: 0, count: size)
        let biasPartial = partial + depth * p.oc
        var q = p
        q.dW = partial
        withUnsafeTemporaryAllocation(of: Int.self, capacity: directMR + 2 * rowsPerSub) { buf in
            let off = buf.baseAddress!
            let rowIn = off + directMR, rowOut = rowIn + rowsPerSub
            let range = chunkRange(job, of: jobs, count: rows)
            var s0 = range.lowerBound
            while s0 < range.upperBound {
                let s1 = min(range.upperBound, s0 + rowsPerSub)
                p.fillRowOffsets(rows: s0..<s1, rowIn: rowIn, rowOut: rowOut)
                if wide {
                    for t in 0..<wideTiles {
                        let b = t / wideDepthTiles, dt = t % wideDepthTiles
                        let o0 = b * 2 * directNR
                        let d0 = dt * wideMR, mr = min(wideMR, depth - d0)
                        p.fillDepthOffsets(off, rows: d0..<(d0 + wideMR), valid: mr)
                        // Tile t prefetches its share of the next sub-block's dY (one line per pixel).
                        let ahead = UnsafeRawPointer(p.dY + s1 * p.outW * p.oc) + t * (s1 - s0) * p.outW * 64
                        weightTile4x96(q, rowCount: s1 - s0, rowIn: rowIn, rowOut: rowOut, off: off,
                                       dY: p.dY + o0, dW: partial + d0 * p.oc + o0, validRows: mr,
                                       prefetch: ahead)
                    }
                }
                for t in 0..<(wide ? 0 : tiles) {
                    let b = t / depthTiles, dt = t % depthTiles
                    let o0 = b * directNR, nr = min(directNR, p.oc - o0)
                    let d0 = dt * directMR, mr = min(directMR, depth - d0)
                    p.fillDepthOffsets(off, rows: d0..<(d0 + directMR), valid: mr)
                    let dw = partial + d0 * p.oc + o0
                    if nr == directNR {
                        weightTile8x48(q, rowCount: s1 - s0, rowIn: rowIn, rowOut: rowOut, off: off,
                                       dY: p.dY + o0, dW: dw, validRows: mr)
                    } else {
                        weightTileRagged(q, rowCount: s1 - s0, rowIn: rowIn, rowOut: rowOut, off: off,
                                         dY: p.dY + o0, dW: dw, validRows: mr, validCols: nr)
                    }
                }
                if withBias {
                    // The sub-block's dY rows are still in cache.
                    let count = (s1 - s0) * p.outW
                    let g = p.dY + rowOut[0]
                    var o = 0
                    // Six 16-channel groups at a time: six independent add chains per pixel.
                    while o + 96 <= p.oc {
                        let b = biasPartial + o
                        var a0 = ld(b), a1 = ld(b + 16), a2 = ld(b + 32), a3 = ld(b + 48), a4 = ld(b + 64), a5 = ld(b + 80)
                        for i in 0..<count {
                            let r = g + i * p.oc + o
                            a0 += ld(r); a1 += ld(r + 16); a2 += ld(r + 32); a3 += ld(r + 48); a4 += ld(r + 64); a5 += ld(r + 80)
                        }
                        st(b, a0); st(b + 16, a1); st(b + 32, a2); st(b + 48, a3); st(b + 64, a4); st(b + 80, a5)
                        o += 96
                    }
                    while o + 16 <= p.oc {
                        var acc = ld(biasPartial + o)
                        for i in 0..<count { acc += ld(g + i * p.oc + o) }
                        st(biasPartial + o, acc)
                        o += 16
                    }
                    while o < p.oc {
                        for i in 0..<count { biasPartial[o] += g[i * p.oc + o] }
                        o += 1
                    }
                }
                s0 = s1
            }
        }
    }
    // dW (and dB) += Σ partials, in partial order.
    let weightFloats = depth * p.oc
    let chunks = min(16, max(1, size / 1024))
    parallelFor(chunks) { chunk in
        for i in chunkRange(chunk, of: chunks, count: size) {
            var sum = partials[i]
            for j in 1..<jobs { sum += partials[j * size + i] }
            if i < weightFloats { p.dW[i] += sum } else { p.dB![i - weightFloats] += sum }
        }
    }
}

/// 8 depth rows × 48 channels of dW, accumulated over `rowCount` output rows whose input and
/// dY offsets are rowIn[i] and rowOut[i].
@inline(__always)
func weightTile8x48(_ p: WeightPass, rowCount: Int, rowIn: UnsafePointer<Int>, rowOut: UnsafePointer<Int>,
                    off: UnsafePointer<Int>, dY: UnsafePointer<Float>, dW: UnsafeMutablePointer<Float>,
                    validRows: Int) {
    let oc = p.oc
    var c00 = DV(), c01 = DV(), c02 = DV(), c10 = DV(), c11 = DV(), c12 = DV()
    var c20 = DV(), c21 = DV(), c22 = DV(), c30 = DV(), c31 = DV(), c32 = DV()
    var c40 = DV(), c41 = DV(), c42 = DV(), c50 = DV(), c51 = DV(), c52 = DV()
    var c60 = DV(), c61 = DV(), c62 = DV(), c70 = DV(), c71 = DV(), c72 = DV()
    if validRows == directMR {
        var r = UnsafePointer(dW); c00 = ld(r); c01 = ld(r + 16); c02 = ld(r + 32)
        r += oc; c10 = ld(r); c11 = ld(r + 16); c12 = ld(r + 32)
        r += oc; c20 = ld(r); c21 = ld(r + 16); c22 = ld(r + 32)
        r += oc; c30 = ld(r); c31 = ld(r + 16); c32 = ld(r + 32)
        r += oc; c40 = ld(r); c41 = ld(r + 16); c42 = ld(r + 32)
        r += oc; c50 = ld(r); c51 = ld(r + 16); c52 = ld(r + 32)
        r += oc; c60 = ld(r); c61 = ld(r + 16); c62 = ld(r + 32)
        r += oc; c70 = ld(r); c71 = ld(r + 16); c72 = ld(r + 32)
    }
    let step = p.stride * p.c
    let outW = p.outW
    let src = p.source
    let o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3]
    let o4 = off[4], o5 = off[5], o6 = off[6], o7 = off[7]
    for j in 0..<rowCount {
        let base = src + rowIn[j]
        let a0 = base + o0, a1 = base + o1, a2 = base + o2, a3 = base + o3
        let a4 = base + o4, a5 = base + o5, a6 = base + o6, a7 = base + o7
        var g = dY + rowOut[j]
        var i = 0
        for _ in 0..<outW {
            let b0 = ld(g), b1 = ld(g + 16), b2 = ld(g + 32)
            var x = DV(repeating: a0[i])
            c00.addProduct(x, b0); c01.addProduct(x, b1); c02.addProduct(x, b2)
            x = DV(repeating: a1[i])
            c10.addProduct(x, b0); c11.addProduct(x, b1); c12.addProduct(x, b2)
            x = DV(repeating: a2[i])
            c20.addProduct(x, b0); c21.addProduct(x, b1); c22.addProduct(x, b2)
            x = DV(repeating: a3[i])
            c30.addProduct(x, b0); c31.addProduct(x, b1); c32.addProduct(x, b2)
            x = DV(repeating: a4[i])
            c40.addProduct(x, b0); c41.addProduct(x, b1); c42.addProduct(x, b2)
            x = DV(repeating: a5[i])
            c50.addProduct(x, b0); c51.addProduct(x, b1); c52.addProduct(x, b2)
            x = DV(repeating: a6[i])
            c60.addProduct(x, b0); c61.addProduct(x, b1); c62.addProduct(x, b2)
            x = DV(repeating: a7[i])
            c70.addProduct(x, b0); c71.addProduct(x, b1); c72.addProduct(x, b2)
            g += oc
            i += step
        }
    }
    if validRows == directMR {
        var r = dW; st(r, c00); st(r + 16, c01); st(r + 32, c02)
        r += oc; st(r, c10); st(r + 16, c11); st(r + 32, c12)
        r += oc; st(r, c20); st(r + 16, c21); st(r + 32, c22)
        r += oc; st(r, c30); st(r + 16, c31); st(r + 32, c32)
        r += oc; st(r, c40); st(r + 16, c41); st(r + 32, c42)
        r += oc; st(r, c50); st(r + 16, c51); st(r + 32, c52)
        r += oc; st(r, c60); st(r + 16, c61); st(r + 32, c62)
        r += oc; st(r, c70); st(r + 16, c71); st(r + 32, c72)
    } else {
        // Ragged depth tile: the sums over these rows (started from 0) are added to dW.
        let sums: [(DV, DV, DV)] = [(c00, c01, c02), (c10, c11, c12), (c20, c21, c22), (c30, c31, c32),
                                    (c40, c41, c42), (c50, c51, c52), (c60, c61, c62), (c70, c71, c72)]
        for r in 0..<validRows {
            let d = dW + r * oc
            st(d, ld(d) + sums[r].0); st(d + 16, ld(d + 16) + sums[r].1); st(d + 32, ld(d + 32) + sums[r].2)
        }
    }
}

/// 4 depth rows × 96 channels of dW, accumulated like `weightTile8x48` (off[0..<4]).
@inline(__always)
private func weightTile4x96(_ p: WeightPass, rowCount: Int, rowIn: UnsafePointer<Int>, rowOut: UnsafePointer<Int>,
                            off: UnsafePointer<Int>, dY: UnsafePointer<Float>, dW: UnsafeMutablePointer<Float>,
                            validRows: Int, prefetch: UnsafeRawPointer) {
    let oc = p.oc
    var ahead = prefetch
    var c00 = DV(), c01 = DV(), c02 = DV(), c03 = DV(), c04 = DV(), c05 = DV()
    var c10 = DV(), c11 = DV(), c12 = DV(), c13 = DV(), c14 = DV(), c15 = DV()
    var c20 = DV(), c21 = DV(), c22 = DV(), c23 = DV(), c24 = DV(), c25 = DV()
    var c30 = DV(), c31 = DV(), c32 = DV(), c33 = DV(), c34 = DV(), c35 = DV()
    if validRows == 4 {
        var r = UnsafePointer(dW)
        c00 = ld(r); c01 = ld(r + 16); c02 = ld(r + 32); c03 = ld(r + 48); c04 = ld(r + 64); c05 = ld(r + 80)
        r += oc; c10 = ld(r); c11 = ld(r + 16); c12 = ld(r + 32); c13 = ld(r + 48); c14 = ld(r + 64); c15 = ld(r + 80)
        r += oc; c20 = ld(r); c21 = ld(r + 16); c22 = ld(r + 32); c23 = ld(r + 48); c24 = ld(r + 64); c25 = ld(r + 80)
        r += oc; c30 = ld(r); c31 = ld(r + 16); c32 = ld(r + 32); c33 = ld(r + 48); c34 = ld(r + 64); c35 = ld(r + 80)
    }
    let step = p.stride * p.c
    let src = p.source
    let o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3]
    for j in 0..<rowCount {
        let base = src + rowIn[j]
        let a0 = base + o0, a1 = base + o1, a2 = base + o2, a3 = base + o3
        var g = dY + rowOut[j]
        var i = 0
        for _ in 0..<p.outW {
            let b0 = ld(g), b1 = ld(g + 16), b2 = ld(g + 32), b3 = ld(g + 48), b4 = ld(g + 64), b5 = ld(g + 80)
            var x = DV(repeating: a0[i])
            c00.addProduct(x, b0); c01.addProduct(x, b1); c02.addProduct(x, b2)
            c03.addProduct(x, b3); c04.addProduct(x, b4); c05.addProduct(x, b5)
            x = DV(repeating: a1[i])
            c10.addProduct(x, b0); c11.addProduct(x, b1); c12.addProduct(x, b2)
            c13.addProduct(x, b3); c14.addProduct(x, b4); c15.addProduct(x, b5)
            x = DV(repeating: a2[i])
            c20.addProduct(x, b0); c21.addProduct(x, b1); c22.addProduct(x, b2)
            c23.addProduct(x, b3); c24.addProduct(x, b4); c25.addProduct(x, b5)
            x = DV(repeating: a3[i])
            c30.addProduct(x, b0); c31.addProduct(x, b1); c32.addProduct(x, b2)
            c33.addProduct(x, b3); c34.addProduct(x, b4); c35.addProduct(x, b5)
            dsl_prefetch(ahead)
            ahead += 64
            g += oc
            i += step
        }
    }
    // A full tile was loaded from dW: store it back. A ragged tile started from 0: add its valid rows.
    let add = validRows < 4
    @inline(__always) func put(_ r: Int, _ v0: DV, _ v1: DV, _ v2: DV, _ v3: DV, _ v4: DV, _ v5: DV) {
        if r >= validRows { return }
        let d = dW + r * oc
        if add {
            st(d, ld(d) + v0); st(d + 16, ld(d + 16) + v1); st(d + 32, ld(d + 32) + v2)
            st(d + 48, ld(d + 48) + v3); st(d + 64, ld(d + 64) + v4); st(d + 80, ld(d + 80) + v5)
        } else {
            st(d, v0); st(d + 16, v1); st(d + 32, v2); st(d + 48, v3); st(d + 64, v4); st(d + 80, v5)
        }
    }
    put(0, c00, c01, c02, c03, c04, c05)
    put(1, c10, c11, c12, c13, c14, c15)
    put(2, c20, c21, c22, c23, c24, c25)
    put(3, c30, c31, c32, c33, c34, c35)
}

/// Whether ragged channel blocks take `weightTileRagged` (tests turn it off to compare the
/// vector path with the scalar one bit for bit).
nonisolated(unsafe) var raggedWeightTilesVectorized = true

/// A ragged channel block (fewer than 48 output channels left): its whole 16-channel groups
/// (at most two) 16 lanes at a time, the rest of its columns by `weightTileScalar`. Each lane
/// computes what the scalar loop computes for its element, in the same order: an unfused
/// product, rounded, then the add (`acc += a · g`, which Swift does not contract into an FMA),
/// so the same bits (as scalar code, GoogLeNet 5b's 5×5 layer, 48 → 128 channels, took 15.8 ms
/// of backward at batch 16, now 1.5 ms; the quick start's conv4 58-60 ms at batch 64, now
/// 3.4-4.6 ms).
@inline(__always)
private func weightTileRagged(_ p: WeightPass, rowCount: Int, rowIn: UnsafePointer<Int>,
                              rowOut: UnsafePointer<Int>, off: UnsafePointer<Int>,
                              dY: UnsafePointer<Float>, dW: UnsafeMutablePointer<Float>,
                              validRows: Int, validCols: Int) {
    let groups = raggedWeightTilesVectorized ? validCols / 16 : 0
    if groups == 2 {
        weightTileUnfused(2, p, rowCount: rowCount, rowIn: rowIn, rowOut: rowOut, off: off, dY: dY, dW: dW,
                          validRows: validRows)
    } else if groups == 1 {
        weightTileUnfused(1, p, rowCount: rowCount, rowIn: rowIn, rowOut: rowOut, off: off, dY: dY, dW: dW,
                          validRows: validRows)
    }
    if groups * 16 < validCols {
        weightTileScalar(p, rowCount: rowCount, rowIn: rowIn, rowOut: rowOut, off: off, dY: dY + groups * 16,
                         dW: dW + groups * 16, validRows: validRows, validCols: validCols - groups * 16)
    }
}

/// `weightTileScalar` on the first 16·`groups` columns (1 or 2) of an 8-row tile, vectorised:
/// dW[r][o] += Σ_pixels P[pixel + off[r]] · dY[pixel][o] with unfused multiply-adds, pixels in
/// the scalar loop's order. Rows past `validRows` (repeats of the last valid row) are computed
/// but neither loaded nor stored.
@inline(__always)
private func weightTileUnfused(_ groups: Int, _ p: WeightPass, rowCount: Int, rowIn: UnsafePointer<Int>,
                               rowOut: UnsafePointer<Int>, off: UnsafePointer<Int>,
                               dY: UnsafePointer<Float>, dW: UnsafeMutablePointer<Float>, validRows: Int) {
    let oc = p.oc
    @inline(__always) func load(_ r: Int, _ v: Int) -> DV {
        r < validRows && v < groups ? ld(dW + r * oc + 16 * v) : DV()
    }
    var c00 = load(0, 0), c10 = load(1, 0), c20 = load(2, 0), c30 = load(3, 0)
    var c40 = load(4, 0), c50 = load(5, 0), c60 = load(6, 0), c70 = load(7, 0)
    var c01 = load(0, 1), c11 = load(1, 1), c21 = load(2, 1), c31 = load(3, 1)
    var c41 = load(4, 1), c51 = load(5, 1), c61 = load(6, 1), c71 = load(7, 1)
    let step = p.stride * p.c
    let o0 = off[0], o1 = off[1], o2 = off[2], o3 = off[3]
    let o4 = off[4], o5 = off[5], o6 = off[6], o7 = off[7]
    for j in 0..<rowCount {
        let base = p.source + rowIn[j]
        let a0 = base + o0, a1 = base + o1, a2 = base + o2, a3 = base + o3
        let a4 = base + o4, a5 = base + o5, a6 = base + o6, a7 = base + o7
        var g = dY + rowOut[j]
        var i = 0
        for _ in 0..<p.outW {
            let b0 = ld(g), b1 = groups == 2 ? ld(g + 16) : DV()
            var x = DV(repeating: a0[i]); c00 = c00 + x * b0; if groups == 2 { c01 = c01 + x * b1 }
            x = DV(repeating: a1[i]); c10 = c10 + x * b0; if groups == 2 { c11 = c11 + x * b1 }
            x = DV(repeating: a2[i]); c20 = c20 + x * b0; if groups == 2 { c21 = c21 + x * b1 }
            x = DV(repeating: a3[i]); c30 = c30 + x * b0; if groups == 2 { c31 = c31 + x * b1 }
            x = DV(repeating: a4[i]); c40 = c40 + x * b0; if groups == 2 { c41 = c41 + x * b1 }
            x = DV(repeating: a5[i]); c50 = c50 + x * b0; if groups == 2 { c51 = c51 + x * b1 }
            x = DV(repeating: a6[i]); c60 = c60 + x * b0; if groups == 2 { c61 = c61 + x * b1 }
            x = DV(repeating: a7[i]); c70 = c70 + x * b0; if groups == 2 { c71 = c71 + x * b1 }
            g += oc
            i += step
        }
    }
    @inline(__always) func put(_ r: Int, _ v0: DV, _ v1: DV) {
        if r >= validRows { return }
        st(dW + r * oc, v0)
        if groups == 2 { st(dW + r * oc + 16, v1) }
    }
    put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31)
    put(4, c40, c41); put(5, c50, c51); put(6, c60, c61); put(7, c70, c71)
}

/// Scalar fallback for a ragged channel block (fewer than 48 output channels left).
private func weightTileScalar(_ p: WeightPass, rowCount: Int, rowIn: UnsafePointer<Int>,
                              rowOut: UnsafePointer<Int>, off: UnsafePointer<Int>,
                              dY: UnsafePointer<Float>, dW: UnsafeMutablePointer<Float>,
                              validRows: Int, validCols: Int) {
    let step = p.stride * p.c
    for r in 0..<validRows {
        for o in 0..<validCols {
            var acc = dW[r * p.oc + o]
            for j in 0..<rowCount {
                let a = p.source + rowIn[j] + off[r]
                let g = dY + rowOut[j] + o
                for x in 0..<p.outW { acc += a[x * step] * g[x * p.oc] }
            }
            dW[r * p.oc + o] = acc
        }
    }
}

// MARK: - Per-thread scratch

/// Per-thread padded slabs of the direct convolution.
private let directScratch = ThreadScratch()
