#if os(Linux)
import Glibc
#endif
import DSLEngineC

// BLIS-style packed SGEMM for AVX-512 (tuned on Zen 4: 32 KiB L1d and 1 MiB L2 per core, one
// 512-bit FMA per cycle, FMA latency 4, 32 zmm registers).
//
// The five loops around the micro-kernel (outermost first), inside one thread's task:
//
//   loop 5  jc: columns of C in blocks of NC. NC is the largest multiple of NR (48) with
//               KC·NC ≤ gemmBBudget floats (768 KiB), balanced over the columns; for the
//               convolution shapes (N = 96/192, K ≤ 1728) all of N fits in one block.
//   loop 4  pc: k in blocks of KC: ceil(k / 1024) nearly equal blocks (k = 864 → one block,
//               1728 → 2 × 864). Large KC means C is loaded and stored few times.
//               → pack op(B)[pc..<pc+KC, jc..<jc+NC] into 48-wide micro-panels (row p of a
//                 panel = 48 consecutive floats, columns past n zero); it stays in L2.
//                 (Tasks with ≤ 64 rows read an untransposed B in place instead: too few row
//                 panels to amortise packing B from DRAM.)
//   loop 3  ir: rows of C in steps of MR = 8 over the task's whole row range (MC = all rows).
//               The 8×KC A micro-panel is read in place by the micro-kernel: 8 row streams
//               when A is not transposed, 8 consecutive floats per k step when it is.
//               An untransposed A larger than one core's L2 is prefetched a row panel ahead
//               (its 8 rows' KC floats, and the panel's C rows, one `prefetcht0` per line):
//               the hardware prefetchers left the 1×1 convolutions' GEMMs (small K, A and C
//               streamed from DRAM) at 60-67 % of peak; one thread, M = 65536: K = 144, N = 48
//               62 → 84 %; K = 24, N = 144 67 → 73 %; K = 96, N = 96 60 → 88 %; K ≥ 864 and
//               cache-resident shapes unchanged within noise (GemmBenchTests, DSL_GEMM_SHAPES). This
//               beats packing A (measured: packing transposed A from DRAM costs ~10 % as it is
//               not overlapped with the FMAs). Packed instead: the ragged bottom panel
//               (zero-padded), and transposed A whose row stride is a multiple of 1 KiB (every
//               k step would hit the same cache sets): packed in MC×KC blocks of
//               ≤ gemmABudget floats (384 KiB), reading A row by row.
//   loop 2  jr: columns in steps of NR = 48 over the packed B block (micro-panels streamed from
//               L2; the A micro-panel, ≤ 8·1024 floats, stays in L1/L2 across jr).
//   loop 1  p : the micro-kernel: an 8×48 tile of C in 24 zmm accumulators; per k step 3 vector
//               loads of B, 8 broadcasts of A, 24 vfmadd231ps (verified with objdump:
//               one loop per `runVariant` copy, no spills). When cache-resident it runs at ~97 %
//               of the measured FMA peak. A right edge of 17-47 columns runs the same 8×48
//               kernel (packed panels are zero past n), one of ≤ 16 columns the 8×16 variant:
//               the 8×32 variant ran a 32-column edge at 50 % of peak cache-resident against
//               62 % for the 8×48 one (GemmBenchTests, DSL_GEMM_SHAPES, M = 1024, K = 144), and
//               the weight gradients of MobileNetV2's 24- and 32-channel projections
//               (M = 144, N = 24/32, K = 65536, A transposed) at 19/24 % against 29/37 %.
//               When n is a multiple of 64 and not of 48 (64, 128, 256, 320, 448 …) the whole
//               call uses a 6×64 tile instead (`GemmTile`; 6-row panels, 64-wide B panels,
//               24 accumulators, per k step 4 loads of B, 6 broadcasts, 24 FMAs): the 8×48 tile
//               left a 16-column edge on the slow 8×16 kernel in every 64-column panel. On the
//               Xeon (2 MiB L2, two 512-bit FMAs per cycle; GemmBenchTests, DSL_GEMM_SHAPES, best
//               of ~0.3 s, % of the measured peak): M = 3136, N = 64, K = 512 (GoogLeNet's pool
//               projections) 36 → 65 % on one thread, 104 → 190 GFLOP/s on two; M = 50176,
//               N = 64, K = 64 (its conv2) 33 → 66 %; M = 512, N = 64, K = 512 cache-resident
//               37 → 92 %; M = 3136, N = 448, K = 528 (inception 4e's fused 1×1s) 55 → 69 %.
//               And for 17-32 columns a 12×32 tile (12-row panels, 32-wide B panels, per k step 2
//               loads of B, 12 broadcasts, 24 FMAs), where the 8×48 tile multiplied half or a
//               third zero columns: MobileNetV2's 24- and 32-channel layers at 32×32, batch 64,
//               two threads, the two tiles forced alternately (DSL_GEMM_TILE), two rounds:
//               projection M = 65536, N = 32, K = 192 93/92 → 126/138 GFLOP/s; its input gradient
//               M = 65536, N = 24, K = 144 (B^T) 69/85 → 117/113; weight gradients M = 96, N = 32,
//               K = 65536 (A^T) 61/55 → 87/93, M = 192, N = 32 50/42 → 64/62.
//
// Threads split C by rows (or by NR-column panels when C is short) into tasks claimed with
// parallelFor; every task packs its own copy of B (cheap next to the compute, and keeps each
// core's L2 private). The k blocking depends only on k, never on the thread count or the split,
// and every element of C is the chain acc = fma(a, b, acc) in k order starting from 0, C or
// beta·C, so results are bit-identical for any thread count (SIMD lanes are independent; edge
// tiles run the same kernel on a zero-padded copy of the tile).

/// Whether a task whose A exceeds the caches prefetches the next row panel's A and C rows
/// (see loop 3 above; a benchmark hook).
nonisolated(unsafe) var gemmPrefetch = true
/// Floats of A (m·lda) from which a task prefetches: 1 MiB, the L2 of one core.
let gemmPrefetchMinFloats = 1 << 18
/// Register tile height (rows of A per micro-kernel call).
let gemmMR = 8
/// Register tile width (columns of B per micro-kernel call): three 16-float vectors.
let gemmNR = 48
/// Largest k block; k is cut into ceil(k / gemmKCMax) nearly equal blocks.
nonisolated(unsafe) var gemmKCMax = 1024
/// Budget in floats for one packed block of transposed A (MC×KC ≤ 384 KiB, L2).
nonisolated(unsafe) var gemmABudget = 98_304
/// Budget in floats for one packed B block (KC×NC ≤ 768 KiB of the 1 MiB L2); NC is the
/// largest multiple of gemmNR that fits, balanced over the columns.
nonisolated(unsafe) var gemmBBudget = 196_608

/// Single-precision matrix multiply, row-major: C = beta·C + op(A)·op(B), where op(A) is m×k
/// and op(B) is k×n (op(X) = Xᵀ when the matching trans flag is set). lda, ldb and ldc are the
/// row strides of A, B and C as stored. Splits work over `engineThreadCount` threads such that
/// every element of C is computed by one thread in a fixed order (results do not depend on the
/// thread count).
public func sgemm(_ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    if m <= 0 || n <= 0 { return }
    if k <= 0 {
        scaleC(m: m, n: n, beta: beta, c: c, ldc: ldc)
        return
    }
    let job = GemmJob(transA: transA, transB: transB, m: m, n: n, k: k, a: a, lda: lda,
                      b: b, ldb: ldb, beta: beta, c: c, ldc: ldc, tile: GemmTile.for(n: n))
    let threads = max(1, engineThreadCount)
    if m == 1 && !transB {
        gemmRow(job, threads: threads)
        return
    }
    let flops = Double(m) * Double(n) * Double(k)
    // Below ~2 MFLOP (~20 µs on one core) waking a second thread costs more than it saves.
    if threads == 1 || flops < 1_048_576 {
        gemmTask(job, rows: 0..<m, cols: 0..<n)
        return
    }
    let mr = job.tile.mr, nr = job.tile.nr
    let panels = (n + nr - 1) / nr
    if m >= 32 * threads || panels < threads {
        // Split rows into `tasks` ranges (multiples of MR), claimed dynamically by the threads.
        // Up to 4 tasks per thread balance the load when a core is shared, but every task
        // packs its own B, so a task keeps at least ~1024 rows.
        let perThread = max(1, min(4, m / (1024 * threads)))
        let tasks = min(threads * perThread, (m + mr - 1) / mr)
        let blocks = (m + mr - 1) / mr
        parallelFor(tasks) { t in
            let r0 = min(m, (blocks * t / tasks) * mr)
            let r1 = min(m, (blocks * (t + 1) / tasks) * mr)
            if r0 < r1 { gemmTask(job, rows: r0..<r1, cols: 0..<n) }
        }
    } else {
        let tasks = min(threads, panels)
        parallelFor(tasks) { t in
            let c0 = min(n, (panels * t / tasks) * nr)
            let c1 = min(n, (panels * (t + 1) / tasks) * nr)
            if c0 < c1 { gemmTask(job, rows: 0..<m, cols: c0..<c1) }
        }
    }
}

// One row of C with B untransposed: a linear layer at batch 1 (GoogLeNet's classifier: k = 1024,
// n = 1000), a 1×1 convolution of one pixel. The tiled path reads B in place there as
// 48-column panels, each panel a column of 192-byte pieces one row of B apart (4000 bytes for
// GoogLeNet's classifier), which the hardware prefetchers do not follow: 1.55 ms for its 4 MB
// (2.6 GB/s; `dsl bench --batch 1`), and the micro-kernel multiplied seven zero rows with each.
// Here B is streamed row by row, four rows per pass over C's row (which stays in L1): per
// 16 columns one load of C, four of B, four FMAs, one store. Every element of C is still the
// chain acc = fma(a, b, acc) in k order from 0, C or beta·C, so results are those of the tiled
// path bit for bit. Two threads take halves of the columns (multiples of 16) once B exceeds
// 256 KiB; below, one thread (it is read from cache).

/// C[0, 0..<n] = beta·C + A[0, ·]·B for B untransposed (see above), on up to `threads` threads.
private func gemmRow(_ job: GemmJob, threads: Int) {
    let vectors = (job.n + 15) / 16
    let tasks = job.k * job.n >= 1 << 16 ? min(threads, vectors) : 1
    if tasks <= 1 {
        gemmRow(job, cols: 0..<job.n)
        return
    }
    parallelFor(tasks) { t in
        let c0 = min(job.n, vectors * t / tasks * 16), c1 = min(job.n, vectors * (t + 1) / tasks * 16)
        if c0 < c1 { gemmRow(job, cols: c0..<c1) }
    }
}

/// C[0, cols] of a one-row job on the calling thread.
private func gemmRow(_ job: GemmJob, cols: Range<Int>) {
    typealias V = GemmVector
    let (k, ldb, c) = (job.k, job.ldb, job.c)
    let aStride = job.transA ? job.lda : 1
    let (j0, j1) = (cols.lowerBound, cols.upperBound)
    let vectorEnd = j0 + (j1 - j0) / 16 * 16
    if job.beta == 0 {
        (c + j0).update(repeating: 0, count: j1 - j0)
    } else if job.beta != 1 {
        for j in cols { c[j] = job.beta * c[j] }
    }
    var p = 0
    while p + 4 <= k {
        let a0 = job.a[p * aStride], a1 = job.a[(p + 1) * aStride]
        let a2 = job.a[(p + 2) * aStride], a3 = job.a[(p + 3) * aStride]
        let b0 = job.b + p * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb
        let x0 = V(repeating: a0), x1 = V(repeating: a1), x2 = V(repeating: a2), x3 = V(repeating: a3)
        var j = j0
        while j < vectorEnd {
            var acc = loadV(c + j)
            acc.addProduct(x0, loadV(b0 + j))
            acc.addProduct(x1, loadV(b1 + j))
            acc.addProduct(x2, loadV(b2 + j))
            acc.addProduct(x3, loadV(b3 + j))
            storeV(c + j, acc)
            j += 16
        }
        for j in vectorEnd..<j1 {
            c[j] = c[j].addingProduct(a0, b0[j]).addingProduct(a1, b1[j]).addingProduct(a2, b2[j]).addingProduct(a3, b3[j])
        }
        p += 4
    }
    while p < k {
        let a0 = job.a[p * aStride], b0 = job.b + p * ldb, x0 = V(repeating: a0)
        var j = j0
        while j < vectorEnd {
            var acc = loadV(c + j)
            acc.addProduct(x0, loadV(b0 + j))
            storeV(c + j, acc)
            j += 16
        }
        for j in vectorEnd..<j1 { c[j] = c[j].addingProduct(a0, b0[j]) }
        p += 1
    }
}

/// C = beta·C (used when k = 0).
private func scaleC(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    for i in 0..<m {
        let row = c + i * ldc
        if beta == 0 {
            row.update(repeating: 0, count: n)
        } else if beta != 1 {
            for j in 0..<n { row[j] *= beta }
        }
    }
}

/// The operands of one sgemm call, passed by value to the tasks.
struct GemmJob {
    var transA: Bool, transB: Bool
    var m: Int, n: Int, k: Int
    var a: UnsafePointer<Float>, lda: Int
    var b: UnsafePointer<Float>, ldb: Int
    var beta: Float
    var c: UnsafeMutablePointer<Float>, ldc: Int
    /// The register tile, chosen from n alone (`GemmTile.for`).
    var tile: GemmTile
}

/// The register tile of the micro-kernel: MR rows of C by NR columns in 24 zmm accumulators.
/// 8×48 (3 vectors of B and 8 broadcasts of A per k step), except 12×32 (2 vectors, 12
/// broadcasts) for 17-32 columns, which the 8×48 tile would pad with 16-31 zero columns, and
/// 6×64 (4 vectors, 6 broadcasts) when n is a multiple of 64 and not of 48 (64, 128, 256, 320,
/// 448, 512 …), which covers a 64-column panel without the 16-column edge the 8×48 tile would
/// leave (measured in the file header). It depends on n only, so a C element's chain never
/// depends on the split.
struct GemmTile: Equatable {
    let mr: Int, nr: Int
    static let tile8x48 = GemmTile(mr: 8, nr: 48)
    static let tile6x64 = GemmTile(mr: 6, nr: 64)
    static let tile12x32 = GemmTile(mr: 12, nr: 32)
    /// Test hook: forces a tile for every call (nil chooses by n).
    nonisolated(unsafe) static var override: GemmTile? = nil
    @inline(__always) static func `for`(n: Int) -> GemmTile {
        if let t = override { return t }
        if n > 16 && n <= 32 { return .tile12x32 }
        return n % 64 == 0 && n % 48 != 0 ? .tile6x64 : .tile8x48
    }
}

/// Computes the block C[rows, cols] of the job on the calling thread (loops 5 to 1).
private func gemmTask(_ job: GemmJob, rows: Range<Int>, cols: Range<Int>) {
    let k = job.k
    let mrT = job.tile.mr, nrT = job.tile.nr
    let kBlocks = (k + gemmKCMax - 1) / gemmKCMax
    let kcMax = (k + kBlocks - 1) / kBlocks
    let totalPanels = (cols.count + nrT - 1) / nrT
    let fitPanels = max(1, gemmBBudget / (kcMax * nrT))
    let nBlocks = (totalPanels + fitPanels - 1) / fitPanels
    let ncMax = (totalPanels + nBlocks - 1) / nBlocks * nrT
    // Scratch: packed B block, A micro-panel, and an MR×NR edge tile of C.
    let bSize = kcMax * ncMax
    // A is read in place by the micro-kernel (MR row streams, or for transposed A MR consecutive
    // floats per k), and only the ragged bottom panel is packed. Exception: a transposed A whose
    // row stride is a multiple of 1 KiB would map every k step to the same few cache sets, so it
    // is packed in MC×KC blocks (≤ gemmABudget floats, L2), reading A row by row.
    let packTransA = job.transA && job.lda % 256 == 0
    // B is packed so that its panels are reused from L2 by every row panel of the task. With
    // few rows (e.g. the first layer's weight gradient, M = 27, k = 65536) packing B from DRAM
    // would dominate, so full-width panels of an untransposed B are then read in place (the
    // micro-kernel's loads overlap the FMAs); only a ragged last panel is packed.
    let directB = !job.transB && rows.count <= 64 && job.ldb % 256 != 0
    let mcMax = packTransA ? max(mrT, gemmABudget / kcMax / mrT * mrT) : rows.count
    let aSize = packTransA ? mcMax * kcMax : kcMax * mrT
    let tileSize = mrT * nrT
    // A read in place row by row from beyond the caches: prefetch the next row panel.
    let prefetches = gemmPrefetch && !job.transA && job.m * job.lda >= gemmPrefetchMinFloats
    let scratch = gemmScratch.floats(bSize + aSize + tileSize + 32)
    let bPack = scratch
    let aPack = scratch + bSize
    let tile = aPack + aSize

    var jc = cols.lowerBound
    while jc < cols.upperBound {                                       // loop 5
        let nc = min(ncMax, cols.upperBound - jc)
        let panels = (nc + nrT - 1) / nrT
        for kb in 0..<kBlocks {                                         // loop 4
            let pc = k * kb / kBlocks
            let kc = k * (kb + 1) / kBlocks - pc
            if !directB {
                packB(job, pc: pc, kc: kc, jc: jc, nc: nc, into: bPack)
            } else if nc % nrT != 0 {
                // Only the ragged last panel, stored where panel 0 would be.
                let j = jc + nc / nrT * nrT
                packB(job, pc: pc, kc: kc, jc: j, nc: jc + nc - j, into: bPack)
            }
            // First k block applies beta; later blocks accumulate onto C.
            let mode: Int = kb > 0 ? 1 : (job.beta == 0 ? 0 : (job.beta == 1 ? 1 : 2))
            var ic = rows.lowerBound
            while ic < rows.upperBound {                                // loop 3 (MC blocks)
                let mc = min(mcMax, rows.upperBound - ic)
                if packTransA { packABlockT(job, ic: ic, mc: mc, pc: pc, kc: kc, into: aPack) }
                var ir = ic
                while ir < ic + mc {                                    // loop 3 (MR rows)
                    let mr = min(mrT, ic + mc - ir)
                    // A micro-panel: element (r, p) at aPtr[r * ars + p * aks].
                    let aPtr: UnsafePointer<Float>
                    let ars: Int, aks: Int
                    if packTransA {
                        aPtr = UnsafePointer(aPack + (ir - ic) * kc)
                        ars = 1; aks = mrT
                    } else if mr == mrT && job.transA {
                        aPtr = job.a + pc * job.lda + ir
                        ars = 1; aks = job.lda
                    } else if mr == mrT {
                        aPtr = job.a + ir * job.lda + pc
                        ars = job.lda; aks = 1
                    } else {
                        packA(job, ir: ir, mr: mr, pc: pc, kc: kc, into: aPack)
                        aPtr = UnsafePointer(aPack)
                        ars = 1; aks = mrT
                    }
                    if prefetches && ir + 2 * mrT <= ic + mc {
                        // The next row panel's A rows and C rows, one row panel ahead.
                        let nextA = job.a + (ir + mrT) * job.lda + pc
                        let nextC = job.c + (ir + mrT) * job.ldc + jc
                        for r in 0..<mrT {
                            var o = 0
                            while o < kc { dsl_prefetch(nextA + r * job.lda + o); o += 16 }
                            o = 0
                            while o < nc { dsl_prefetch(nextC + r * job.ldc + o); o += 16 }
                        }
                    }
                    for q in 0..<panels {                               // loop 2
                        let j = jc + q * nrT
                        let nr = min(nrT, jc + nc - j)
                        let bPanel: UnsafePointer<Float>
                        let bs: Int
                        if directB && nr == nrT {
                            bPanel = job.b + pc * job.ldb + j
                            bs = job.ldb
                        } else {
                            bPanel = UnsafePointer(bPack + (directB ? 0 : q * kc * nrT))
                            bs = nrT
                        }
                        let cPtr = job.c + ir * job.ldc + j
                        if mr == mrT && nr == nrT {
                            runKernel(job.tile, nrT / 16, kc, aPtr, ars, aks, bPanel, bs, cPtr, job.ldc, mode, job.beta)
                        } else {
                            // Ragged edge: run the MR×NR kernel (8×16 for ≤ 16 columns of the 8×48 tile) on a
                            // zero-padded copy of the tile.
                            tile.update(repeating: 0, count: tileSize)
                            if mode != 0 {
                                for r in 0..<mr {
                                    (tile + r * nrT).update(from: cPtr + r * job.ldc, count: nr)
                                }
                            }
                            let nv = nrT == 64 ? 4 : nrT == 32 ? 2 : (nr > 16 ? 3 : 1)
                            runKernel(job.tile, nv, kc, aPtr, ars, aks, bPanel, bs, tile, nrT, mode, job.beta)
                            for r in 0..<mr {
                                (cPtr + r * job.ldc).update(from: tile + r * nrT, count: nr)
                            }
                        }
                    }
                    ir += mr
                }
                ic += mc
            }
        }
        jc += nc
    }
}

/// Packs op(B)[pc..<pc+kc, jc..<jc+nc] into NR-wide micro-panels (NR = 48 or 64, the tile's):
/// panel q holds row p at dst[q·kc·NR + p·NR ..< +NR]; columns past n are zero.
@inline(__always)
private func packB(_ job: GemmJob, pc: Int, kc: Int, jc: Int, nc: Int,
                   into dst: UnsafeMutablePointer<Float>) {
    let nrT = job.tile.nr
    let panels = (nc + nrT - 1) / nrT
    let ldb = job.ldb
    for q in 0..<panels {
        let j0 = jc + q * nrT
        let nr = min(nrT, jc + nc - j0)
        let d = dst + q * kc * nrT
        if !job.transB {
            // op(B)[p, j] = b[p·ldb + j]: rows of the panel are contiguous in B.
            if nr == nrT && nrT == 48 {
                var s = job.b + pc * ldb + j0
                var o = d
                for _ in 0..<kc {
                    let v0 = loadV(s), v1 = loadV(s + 16), v2 = loadV(s + 32)
                    storeV(o, v0); storeV(o + 16, v1); storeV(o + 32, v2)
                    s += ldb; o += 48
                }
            } else if nr == nrT && nrT == 64 {
                var s = job.b + pc * ldb + j0
                var o = d
                for _ in 0..<kc {
                    let v0 = loadV(s), v1 = loadV(s + 16), v2 = loadV(s + 32), v3 = loadV(s + 48)
                    storeV(o, v0); storeV(o + 16, v1); storeV(o + 32, v2); storeV(o + 48, v3)
                    s += ldb; o += 64
                }
            } else {
                for p in 0..<kc {
                    let s = job.b + (pc + p) * ldb + j0
                    let o = d + p * nrT
                    for jj in 0..<nr { o[jj] = s[jj] }
                    for jj in nr..<nrT { o[jj] = 0 }
                }
            }
        } else {
            // op(B)[p, j] = b[j·ldb + p]: each column of the panel is a contiguous run of B,
            // written with stride NR. Scalar stores suffice: B is packed once per task and
            // reused for all of the task's rows (≥ 1024 rows: about 1-2 % of the task's time).
            for jj in 0..<nr {
                let s = job.b + (j0 + jj) * ldb + pc
                var o = d + jj
                for p in 0..<kc { o.pointee = s[p]; o += nrT }
            }
            if nr < nrT {
                for p in 0..<kc {
                    (d + p * nrT + nr).update(repeating: 0, count: nrT - nr)
                }
            }
        }
    }
}

/// Packs op(A)[ic..<ic+mc, pc..<pc+kc] for transposed A (stored k×m) as consecutive MR×kc
/// micro-panels (panel q at dst[q·MR·kc], element (r, p) at p·MR + r), reading each stored row
/// of A contiguously; rows past mc are zero.
@inline(__always)
private func packABlockT(_ job: GemmJob, ic: Int, mc: Int, pc: Int, kc: Int,
                         into dst: UnsafeMutablePointer<Float>) {
    let mrT = job.tile.mr
    let full = mc / mrT
    let rest = mc - full * mrT
    let panelStride = mrT * kc
    for p in 0..<kc {
        let s = job.a + (pc + p) * job.lda + ic
        var o = dst + p * mrT
        if mrT == 8 {
            for q in 0..<full {
                UnsafeMutableRawPointer(o).storeBytes(
                    of: UnsafeRawPointer(s + q * 8).loadUnaligned(as: SIMD8<Float>.self),
                    as: SIMD8<Float>.self)
                o += panelStride
            }
        } else {
            for q in 0..<full {
                let t = s + q * mrT
                for r in 0..<mrT { o[r] = t[r] }
                o += panelStride
            }
        }
        if rest > 0 {
            let t = s + full * mrT
            for r in 0..<rest { o[r] = t[r] }
            for r in rest..<mrT { o[r] = 0 }
        }
    }
}

/// Packs op(A)[ir..<ir+mr, pc..<pc+kc] as an MR×kc micro-panel: dst[p·MR + r]; rows past mr
/// are zero. Used for the ragged bottom panel only (full panels are read in place).
@inline(__always)
private func packA(_ job: GemmJob, ir: Int, mr: Int, pc: Int, kc: Int,
                   into dst: UnsafeMutablePointer<Float>) {
    let lda = job.lda
    let mrT = job.tile.mr
    if job.transA {
        // op(A)[i, p] = a[p·lda + i]: the MR values for one p are contiguous.
        var s = job.a + pc * lda + ir
        var o = dst
        for _ in 0..<kc {
            for r in 0..<mr { o[r] = s[r] }
            for r in mr..<mrT { o[r] = 0 }
            s += lda; o += mrT
        }
    } else {
        // op(A)[i, p] = a[i·lda + p].
        for r in 0..<mrT {
            var o = dst + r
            if r < mr {
                let s = job.a + (ir + r) * lda + pc
                for p in 0..<kc { o.pointee = s[p]; o += mrT }
            } else {
                for _ in 0..<kc { o.pointee = 0; o += mrT }
            }
        }
    }
}

/// Calls the micro-kernel specialised for the tile (6×64, 12×32, or 8×48 with `nv` = 3, 2 or 1
/// vectors of 16 columns, the narrow ones only at the right edge); for the A access pattern: rows
/// of A in place (k stride 1), a packed panel (row stride 1, k stride MR), or columns of a
/// transposed A in place; and for B: a packed panel (row stride NR) or, with `bs` ≠ NR
/// (full-width tiles only), rows of B read in place. Each specialisation is its own non-inlined
/// copy of `runVariant` with the tile and strides as literals: when the kernels were all inlined
/// here, the optimiser merged the 8×48 calls into one call of a generic kernel (the tile width a
/// run-time value, a branch per vector in the loop), which ran a cache-resident M = 512, N = 96,
/// K = 256 product at 42 % of peak instead of 97 %.
@inline(__always)
private func runKernel(_ tile: GemmTile, _ nv: Int, _ kc: Int, _ a: UnsafePointer<Float>, _ ars: Int, _ aks: Int,
                       _ b: UnsafePointer<Float>, _ bs: Int, _ c: UnsafeMutablePointer<Float>,
                       _ ldc: Int, _ mode: Int, _ beta: Float) {
    func run<V: GemmKernelVariant>(_ variant: V.Type) {
        runVariant(variant, kc, a, ars, aks, b, bs, c, ldc, mode, beta)
    }
    if tile.nr == 32 {
        if aks == 1 { run(K12x32<ARows, BAny>.self) } else if aks == 12 && bs == 32 { run(K12x32<APacked, BPacked>.self) } else { run(K12x32<ACols, BAny>.self) }
    } else if tile.nr == 64 {
        if aks == 1 { run(K6x64<ARows, BAny>.self) } else if aks == 6 && bs == 64 { run(K6x64<APacked, BPacked>.self) } else { run(K6x64<ACols, BAny>.self) }
    } else if bs != gemmNR {
        if aks == 1 { run(K8x48<ARows, BAny>.self) } else { run(K8x48<ACols, BAny>.self) }
    } else if nv == 3 {
        if aks == 1 { run(K8x48<ARows, BPacked>.self) } else if aks == gemmMR { run(K8x48<APacked, BPacked>.self) } else { run(K8x48<ACols, BPacked>.self) }
    } else if nv == 2 {
        if aks == 1 { run(K8x32<ARows, BPacked>.self) } else { run(K8x32<ACols, BPacked>.self) }
    } else {
        if aks == 1 { run(K8x16<ARows, BPacked>.self) } else { run(K8x16<ACols, BPacked>.self) }
    }
}

/// One specialisation of the micro-kernel, as types so that each gets its own copy of
/// `runVariant` with every size a literal (as `ChannelSumKindType` does for the channel sums).
protocol GemmKernelVariant {
    /// Rows of the tile: 8 (`microKernel`), 6 (`microKernel6x64`) or 12 (`microKernel12x32`).
    static var rows: Int { get }
    /// 16-column vectors of the 8-row tile (3, 2 or 1).
    static var vectors: Int { get }
    /// How A is read: 1 rows in place (row stride at run time); MR a packed panel; 0 columns
    /// of a transposed A in place (k stride at run time).
    static var aStride: Int { get }
    /// B's row stride: the packed panel's NR, or 0 for rows of B in place (stride at run time).
    static var bStride: Int { get }
}
/// How a variant reads A or B.
protocol GemmOperandPattern { static var packed: Bool { get }; static var inPlaceRows: Bool { get } }
enum ARows: GemmOperandPattern { static var packed: Bool { false }; static var inPlaceRows: Bool { true } }
enum APacked: GemmOperandPattern { static var packed: Bool { true }; static var inPlaceRows: Bool { false } }
enum ACols: GemmOperandPattern { static var packed: Bool { false }; static var inPlaceRows: Bool { false } }
enum BPacked: GemmOperandPattern { static var packed: Bool { true }; static var inPlaceRows: Bool { false } }
enum BAny: GemmOperandPattern { static var packed: Bool { false }; static var inPlaceRows: Bool { true } }
/// A variant of `rows` × `nr` with A and B read as `A` and `B` say.
protocol GemmTileVariant: GemmKernelVariant {
    associatedtype A: GemmOperandPattern
    associatedtype B: GemmOperandPattern
    static var nr: Int { get }
}
extension GemmTileVariant {
    static var vectors: Int { nr / 16 }
    static var aStride: Int { A.packed ? rows : (A.inPlaceRows ? 1 : 0) }
    static var bStride: Int { B.packed ? (rows == 8 ? gemmNR : nr) : 0 }
}
enum K8x48<A: GemmOperandPattern, B: GemmOperandPattern>: GemmTileVariant { static var rows: Int { 8 }; static var nr: Int { 48 } }
enum K8x32<A: GemmOperandPattern, B: GemmOperandPattern>: GemmTileVariant { static var rows: Int { 8 }; static var nr: Int { 32 } }
enum K8x16<A: GemmOperandPattern, B: GemmOperandPattern>: GemmTileVariant { static var rows: Int { 8 }; static var nr: Int { 16 } }
enum K6x64<A: GemmOperandPattern, B: GemmOperandPattern>: GemmTileVariant { static var rows: Int { 6 }; static var nr: Int { 64 } }
enum K12x32<A: GemmOperandPattern, B: GemmOperandPattern>: GemmTileVariant { static var rows: Int { 12 }; static var nr: Int { 32 } }

/// The micro-kernel call of one variant (a non-inlined copy per variant type).
@inline(never)
private func runVariant<V: GemmKernelVariant>(_: V.Type, _ kc: Int, _ a: UnsafePointer<Float>, _ ars: Int, _ aks: Int,
                                              _ b: UnsafePointer<Float>, _ bs: Int, _ c: UnsafeMutablePointer<Float>,
                                              _ ldc: Int, _ mode: Int, _ beta: Float) {
    let rowStride = V.aStride == 1 ? ars : 1
    let kStride = V.aStride == 1 ? 1 : (V.aStride == 0 ? aks : V.aStride)
    let bStride = V.bStride == 0 ? bs : V.bStride
    switch V.rows {
    case 12: microKernel12x32(kc, a, rowStride, kStride, b, bStride, c, ldc, mode, beta)
    case 6: microKernel6x64(kc, a, rowStride, kStride, b, bStride, c, ldc, mode, beta)
    default: microKernel(V.vectors, kc, a, rowStride, kStride, b, bStride, c, ldc, mode, beta)
    }
}

typealias GemmVector = SIMD16<Float>

@inline(__always) func loadV(_ p: UnsafePointer<Float>) -> GemmVector {
    UnsafeRawPointer(p).loadUnaligned(as: GemmVector.self)
}
@inline(__always) func loadV(_ p: UnsafeMutablePointer<Float>) -> GemmVector {
    UnsafeRawPointer(p).loadUnaligned(as: GemmVector.self)
}
@inline(__always) func storeV(_ p: UnsafeMutablePointer<Float>, _ v: GemmVector) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: GemmVector.self)
}

/// The register-blocked micro-kernel for an 8×(16·nv) tile, nv ∈ 1...3 (a literal at every call
/// site, so the unused accumulators fold away; nv = 3 is the 8×48 kernel):
/// C[0..<8, 0..<16nv] = init + Σ_p A[r, p]·B[p, ·], where A[r, p] = a[r·ars + p·aks], row p of B
/// is b[p·bs ..< p·bs + 16nv] (bs = 48 for a packed panel, ldb when B is read in place), and
/// init is 0 (mode 0), C (mode 1) or beta·C (mode 2). Every lane is its own chain acc = fma(a, b, acc) in k order, whatever nv is.
@inline(__always)
private func microKernel(_ nv: Int, _ kc: Int, _ a: UnsafePointer<Float>, _ ars: Int, _ aks: Int,
                         _ b: UnsafePointer<Float>, _ bs: Int, _ c: UnsafeMutablePointer<Float>,
                         _ ldc: Int, _ mode: Int, _ beta: Float) {
    typealias V = GemmVector
    var c00 = V(), c01 = V(), c02 = V()
    var c10 = V(), c11 = V(), c12 = V()
    var c20 = V(), c21 = V(), c22 = V()
    var c30 = V(), c31 = V(), c32 = V()
    var c40 = V(), c41 = V(), c42 = V()
    var c50 = V(), c51 = V(), c52 = V()
    var c60 = V(), c61 = V(), c62 = V()
    var c70 = V(), c71 = V(), c72 = V()
    @inline(__always) func load3(_ r: UnsafeMutablePointer<Float>, _ x0: inout V, _ x1: inout V, _ x2: inout V) {
        x0 = loadV(r)
        if nv > 1 { x1 = loadV(r + 16) }
        if nv > 2 { x2 = loadV(r + 32) }
    }
    @inline(__always) func store3(_ r: UnsafeMutablePointer<Float>, _ x0: V, _ x1: V, _ x2: V) {
        storeV(r, x0)
        if nv > 1 { storeV(r + 16, x1) }
        if nv > 2 { storeV(r + 32, x2) }
    }
    if mode != 0 {
        var r = c
        load3(r, &c00, &c01, &c02); r += ldc
        load3(r, &c10, &c11, &c12); r += ldc
        load3(r, &c20, &c21, &c22); r += ldc
        load3(r, &c30, &c31, &c32); r += ldc
        load3(r, &c40, &c41, &c42); r += ldc
        load3(r, &c50, &c51, &c52); r += ldc
        load3(r, &c60, &c61, &c62); r += ldc
        load3(r, &c70, &c71, &c72)
        if mode == 2 {
            let s = V(repeating: beta)
            c00 *= s; c01 *= s; c02 *= s; c10 *= s; c11 *= s; c12 *= s
            c20 *= s; c21 *= s; c22 *= s; c30 *= s; c31 *= s; c32 *= s
            c40 *= s; c41 *= s; c42 *= s; c50 *= s; c51 *= s; c52 *= s
            c60 *= s; c61 *= s; c62 *= s; c70 *= s; c71 *= s; c72 *= s
        }
    }
    let a0 = a, a1 = a + ars, a2 = a + 2 * ars, a3 = a + 3 * ars
    let a4 = a + 4 * ars, a5 = a + 5 * ars, a6 = a + 6 * ars, a7 = a + 7 * ars
    var pb = b
    var o = 0
    for _ in 0..<kc {
        let b0 = loadV(pb)
        let b1 = nv > 1 ? loadV(pb + 16) : V()
        let b2 = nv > 2 ? loadV(pb + 32) : V()
        var x = V(repeating: a0[o])
        c00.addProduct(x, b0)
        if nv > 1 { c01.addProduct(x, b1) }
        if nv > 2 { c02.addProduct(x, b2) }
        x = V(repeating: a1[o])
        c10.addProduct(x, b0)
        if nv > 1 { c11.addProduct(x, b1) }
        if nv > 2 { c12.addProduct(x, b2) }
        x = V(repeating: a2[o])
        c20.addProduct(x, b0)
        if nv > 1 { c21.addProduct(x, b1) }
        if nv > 2 { c22.addProduct(x, b2) }
        x = V(repeating: a3[o])
        c30.addProduct(x, b0)
        if nv > 1 { c31.addProduct(x, b1) }
        if nv > 2 { c32.addProduct(x, b2) }
        x = V(repeating: a4[o])
        c40.addProduct(x, b0)
        if nv > 1 { c41.addProduct(x, b1) }
        if nv > 2 { c42.addProduct(x, b2) }
        x = V(repeating: a5[o])
        c50.addProduct(x, b0)
        if nv > 1 { c51.addProduct(x, b1) }
        if nv > 2 { c52.addProduct(x, b2) }
        x = V(repeating: a6[o])
        c60.addProduct(x, b0)
        if nv > 1 { c61.addProduct(x, b1) }
        if nv > 2 { c62.addProduct(x, b2) }
        x = V(repeating: a7[o])
        c70.addProduct(x, b0)
        if nv > 1 { c71.addProduct(x, b1) }
        if nv > 2 { c72.addProduct(x, b2) }
        pb += bs
        o += aks
    }
    var r = c
    store3(r, c00, c01, c02); r += ldc
    store3(r, c10, c11, c12); r += ldc
    store3(r, c20, c21, c22); r += ldc
    store3(r, c30, c31, c32); r += ldc
    store3(r, c40, c41, c42); r += ldc
    store3(r, c50, c51, c52); r += ldc
    store3(r, c60, c61, c62); r += ldc
    store3(r, c70, c71, c72)
}

/// The 12×32 register tile (`GemmTile.tile12x32`, for 17-32 columns): C[0..<12, 0..<32] =
/// init + Σ_p A[r, p]·B[p, ·] with the operands as in `microKernel`; 24 accumulators, per k step
/// 2 loads of B, 12 broadcasts of A and 24 FMAs (the 8×48 tile spent half or a third of its
/// FMAs on zero columns of a 24- or 32-column product). The same chain per element as every tile.
@inline(__always)
private func microKernel12x32(_ kc: Int, _ a: UnsafePointer<Float>, _ ars: Int, _ aks: Int,
                              _ b: UnsafePointer<Float>, _ bs: Int, _ c: UnsafeMutablePointer<Float>,
                              _ ldc: Int, _ mode: Int, _ beta: Float) {
    typealias V = GemmVector
    var c00 = V(), c01 = V()
    var c10 = V(), c11 = V()
    var c20 = V(), c21 = V()
    var c30 = V(), c31 = V()
    var c40 = V(), c41 = V()
    var c50 = V(), c51 = V()
    var c60 = V(), c61 = V()
    var c70 = V(), c71 = V()
    var c80 = V(), c81 = V()
    var c90 = V(), c91 = V()
    var c100 = V(), c101 = V()
    var c110 = V(), c111 = V()
    @inline(__always) func load2(_ r: UnsafeMutablePointer<Float>, _ x0: inout V, _ x1: inout V) {
        x0 = loadV(r); x1 = loadV(r + 16)
        if mode == 2 {
            let s = V(repeating: beta)
            x0 *= s; x1 *= s
        }
    }
    @inline(__always) func store2(_ r: UnsafeMutablePointer<Float>, _ x0: V, _ x1: V) {
        storeV(r, x0); storeV(r + 16, x1)
    }
    if mode != 0 {
        var r = c
        load2(r, &c00, &c01); r += ldc
        load2(r, &c10, &c11); r += ldc
        load2(r, &c20, &c21); r += ldc
        load2(r, &c30, &c31); r += ldc
        load2(r, &c40, &c41); r += ldc
        load2(r, &c50, &c51); r += ldc
        load2(r, &c60, &c61); r += ldc
        load2(r, &c70, &c71); r += ldc
        load2(r, &c80, &c81); r += ldc
        load2(r, &c90, &c91); r += ldc
        load2(r, &c100, &c101); r += ldc
        load2(r, &c110, &c111)
    }
    let a0 = a, a1 = a + ars, a2 = a + 2 * ars, a3 = a + 3 * ars, a4 = a + 4 * ars, a5 = a + 5 * ars
    let a6 = a + 6 * ars, a7 = a + 7 * ars, a8 = a + 8 * ars, a9 = a + 9 * ars, a10 = a + 10 * ars, a11 = a + 11 * ars
    var pb = b
    var o = 0
    for _ in 0..<kc {
        let b0 = loadV(pb), b1 = loadV(pb + 16)
        var x: V
        x = V(repeating: a0[o]); c00.addProduct(x, b0); c01.addProduct(x, b1)
        x = V(repeating: a1[o]); c10.addProduct(x, b0); c11.addProduct(x, b1)
        x = V(repeating: a2[o]); c20.addProduct(x, b0); c21.addProduct(x, b1)
        x = V(repeating: a3[o]); c30.addProduct(x, b0); c31.addProduct(x, b1)
        x = V(repeating: a4[o]); c40.addProduct(x, b0); c41.addProduct(x, b1)
        x = V(repeating: a5[o]); c50.addProduct(x, b0); c51.addProduct(x, b1)
        x = V(repeating: a6[o]); c60.addProduct(x, b0); c61.addProduct(x, b1)
        x = V(repeating: a7[o]); c70.addProduct(x, b0); c71.addProduct(x, b1)
        x = V(repeating: a8[o]); c80.addProduct(x, b0); c81.addProduct(x, b1)
        x = V(repeating: a9[o]); c90.addProduct(x, b0); c91.addProduct(x, b1)
        x = V(repeating: a10[o]); c100.addProduct(x, b0); c101.addProduct(x, b1)
        x = V(repeating: a11[o]); c110.addProduct(x, b0); c111.addProduct(x, b1)
        pb += bs
        o += aks
    }
    var r = c
    store2(r, c00, c01); r += ldc
    store2(r, c10, c11); r += ldc
    store2(r, c20, c21); r += ldc
    store2(r, c30, c31); r += ldc
    store2(r, c40, c41); r += ldc
    store2(r, c50, c51); r += ldc
    store2(r, c60, c61); r += ldc
    store2(r, c70, c71); r += ldc
    store2(r, c80, c81); r += ldc
    store2(r, c90, c91); r += ldc
    store2(r, c100, c101); r += ldc
    store2(r, c110, c111)
}

/// The 6×64 register tile (`GemmTile.tile6x64`): C[0..<6, 0..<64] = init + Σ_p A[r, p]·B[p, ·]
/// with the operands as in `microKernel`; 24 accumulators, per k step 4 vector loads of B, 6
/// broadcasts of A and 24 FMAs. Every lane is the same chain acc = fma(a, b, acc) in k order as
/// in the 8×48 kernel, so the tile never changes a bit of C.
@inline(__always)
private func microKernel6x64(_ kc: Int, _ a: UnsafePointer<Float>, _ ars: Int, _ aks: Int,
                             _ b: UnsafePointer<Float>, _ bs: Int, _ c: UnsafeMutablePointer<Float>,
                             _ ldc: Int, _ mode: Int, _ beta: Float) {
    typealias V = GemmVector
    var c00 = V(), c01 = V(), c02 = V(), c03 = V()
    var c10 = V(), c11 = V(), c12 = V(), c13 = V()
    var c20 = V(), c21 = V(), c22 = V(), c23 = V()
    var c30 = V(), c31 = V(), c32 = V(), c33 = V()
    var c40 = V(), c41 = V(), c42 = V(), c43 = V()
    var c50 = V(), c51 = V(), c52 = V(), c53 = V()
    @inline(__always) func load4(_ r: UnsafeMutablePointer<Float>, _ x0: inout V, _ x1: inout V, _ x2: inout V, _ x3: inout V) {
        x0 = loadV(r); x1 = loadV(r + 16); x2 = loadV(r + 32); x3 = loadV(r + 48)
        if mode == 2 {
            let s = V(repeating: beta)
            x0 *= s; x1 *= s; x2 *= s; x3 *= s
        }
    }
    @inline(__always) func store4(_ r: UnsafeMutablePointer<Float>, _ x0: V, _ x1: V, _ x2: V, _ x3: V) {
        storeV(r, x0); storeV(r + 16, x1); storeV(r + 32, x2); storeV(r + 48, x3)
    }
    if mode != 0 {
        var r = c
        load4(r, &c00, &c01, &c02, &c03); r += ldc
        load4(r, &c10, &c11, &c12, &c13); r += ldc
        load4(r, &c20, &c21, &c22, &c23); r += ldc
        load4(r, &c30, &c31, &c32, &c33); r += ldc
        load4(r, &c40, &c41, &c42, &c43); r += ldc
        load4(r, &c50, &c51, &c52, &c53)
    }
    let a0 = a, a1 = a + ars, a2 = a + 2 * ars, a3 = a + 3 * ars, a4 = a + 4 * ars, a5 = a + 5 * ars
    var pb = b
    var o = 0
    for _ in 0..<kc {
        let b0 = loadV(pb), b1 = loadV(pb + 16), b2 = loadV(pb + 32), b3 = loadV(pb + 48)
        var x = V(repeating: a0[o])
        c00.addProduct(x, b0); c01.addProduct(x, b1); c02.addProduct(x, b2); c03.addProduct(x, b3)
        x = V(repeating: a1[o])
        c10.addProduct(x, b0); c11.addProduct(x, b1); c12.addProduct(x, b2); c13.addProduct(x, b3)
        x = V(repeating: a2[o])
        c20.addProduct(x, b0); c21.addProduct(x, b1); c22.addProduct(x, b2); c23.addProduct(x, b3)
        x = V(repeating: a3[o])
        c30.addProduct(x, b0); c31.addProduct(x, b1); c32.addProduct(x, b2); c33.addProduct(x, b3)
        x = V(repeating: a4[o])
        c40.addProduct(x, b0); c41.addProduct(x, b1); c42.addProduct(x, b2); c43.addProduct(x, b3)
        x = V(repeating: a5[o])
        c50.addProduct(x, b0); c51.addProduct(x, b1); c52.addProduct(x, b2); c53.addProduct(x, b3)
        pb += bs
        o += aks
    }
    var r = c
    store4(r, c00, c01, c02, c03); r += ldc
    store4(r, c10, c11, c12, c13); r += ldc
    store4(r, c20, c21, c22, c23); r += ldc
    store4(r, c30, c31, c32, c33); r += ldc
    store4(r, c40, c41, c42, c43); r += ldc
    store4(r, c50, c51, c52, c53)
}

// MARK: - Per-thread scratch

/// Per-thread packing buffers of the GEMM.
private let gemmScratch = ThreadScratch()
