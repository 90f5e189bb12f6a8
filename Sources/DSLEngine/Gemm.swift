#if os(Linux)
import Glibc
#endif
import DSLEngineC

// BLIS-style packed SGEMM for AVX-512 (tuned on Zen 4: 32 KiB L1d and 1 MiB L2 per core, one
// 512-bit FMA per cycle, FMA latency 4, 32 zmm registers).
//
// The five loops around the micro-kernel (outermost first), inside one thread's task:
//
//   loop 5  jc: columns of C in blocks of NC. NC is the largest multiple of 48 with
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
//               loads of B, 8 broadcasts of A, 24 vfmadd231ps (48 per 2× unrolled step, verified
//               with objdump in debug and release builds). When cache-resident it runs at ~97 %
//               of the measured FMA peak. A right edge of 17-47 columns runs the same 8×48
//               kernel (packed panels are zero past n), one of ≤ 16 columns the 8×16 variant:
//               the 8×32 variant ran a 32-column edge at 50 % of peak cache-resident against
//               62 % for the 8×48 one (GemmBenchTests, DSL_GEMM_SHAPES, M = 1024, K = 144), and
//               the weight gradients of MobileNetV2's 24- and 32-channel projections
//               (M = 144, N = 24/32, K = 65536, A transposed) at 19/24 % against 29/37 %.
//
// Threads split C by rows (or by 48-column panels when C is short) into tasks claimed with
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
                      b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
    let threads = max(1, engineThreadCount)
    let flops = Double(m) * Double(n) * Double(k)
    // Below ~2 MFLOP (~20 µs on one core) waking a second thread costs more than it saves.
    if threads == 1 || flops < 1_048_576 {
        gemmTask(job, rows: 0..<m, cols: 0..<n)
        return
    }
    let panels = (n + gemmNR - 1) / gemmNR
    if m >= 32 * threads || panels < threads {
        // Split rows into `tasks` ranges (multiples of MR), claimed dynamically by the threads.
        // Up to 4 tasks per thread balance the load when a core is shared, but every task
        // packs its own B, so a task keeps at least ~1024 rows.
        let perThread = max(1, min(4, m / (1024 * threads)))
        let tasks = min(threads * perThread, (m + gemmMR - 1) / gemmMR)
        let blocks = (m + gemmMR - 1) / gemmMR
        parallelFor(tasks) { t in
            let r0 = min(m, (blocks * t / tasks) * gemmMR)
            let r1 = min(m, (blocks * (t + 1) / tasks) * gemmMR)
            if r0 < r1 { gemmTask(job, rows: r0..<r1, cols: 0..<n) }
        }
    } else {
        let tasks = min(threads, panels)
        parallelFor(tasks) { t in
            let c0 = min(n, (panels * t / tasks) * gemmNR)
            let c1 = min(n, (panels * (t + 1) / tasks) * gemmNR)
            if c0 < c1 { gemmTask(job, rows: 0..<m, cols: c0..<c1) }
        }
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
}

/// Computes the block C[rows, cols] of the job on the calling thread (loops 5 to 1).
private func gemmTask(_ job: GemmJob, rows: Range<Int>, cols: Range<Int>) {
    let k = job.k
    let kBlocks = (k + gemmKCMax - 1) / gemmKCMax
    let kcMax = (k + kBlocks - 1) / kBlocks
    let totalPanels = (cols.count + gemmNR - 1) / gemmNR
    let fitPanels = max(1, gemmBBudget / (kcMax * gemmNR))
    let nBlocks = (totalPanels + fitPanels - 1) / fitPanels
    let ncMax = (totalPanels + nBlocks - 1) / nBlocks * gemmNR
    // Scratch: packed B block, A micro-panel, and an 8×48 edge tile of C.
    let bSize = kcMax * ncMax
    // A is read in place by the micro-kernel (8 row streams, or for transposed A 8 consecutive
    // floats per k), and only the ragged bottom panel is packed. Exception: a transposed A whose
    // row stride is a multiple of 1 KiB would map every k step to the same few cache sets, so it
    // is packed in MC×KC blocks (≤ gemmABudget floats, L2), reading A row by row.
    let packTransA = job.transA && job.lda % 256 == 0
    // B is packed so that its panels are reused from L2 by every row panel of the task. With
    // few rows (e.g. the first layer's weight gradient, M = 27, k = 65536) packing B from DRAM
    // would dominate, so full-width panels of an untransposed B are then read in place (the
    // micro-kernel's loads overlap the FMAs); only a ragged last panel is packed.
    let directB = !job.transB && rows.count <= 64 && job.ldb % 256 != 0
    let mcMax = packTransA ? max(gemmMR, gemmABudget / kcMax / gemmMR * gemmMR) : rows.count
    let aSize = packTransA ? mcMax * kcMax : kcMax * gemmMR
    let tileSize = gemmMR * gemmNR
    // A read in place row by row from beyond the caches: prefetch the next row panel.
    let prefetches = gemmPrefetch && !job.transA && job.m * job.lda >= gemmPrefetchMinFloats
    let scratch = gemmScratch.floats(bSize + aSize + tileSize + 32)
    let bPack = scratch
    let aPack = scratch + bSize
    let tile = aPack + aSize

    var jc = cols.lowerBound
    while jc < cols.upperBound {                                       // loop 5
        let nc = min(ncMax, cols.upperBound - jc)
        let panels = (nc + gemmNR - 1) / gemmNR
        for kb in 0..<kBlocks {                                         // loop 4
            let pc = k * kb / kBlocks
            let kc = k * (kb + 1) / kBlocks - pc
            if !directB {
                packB(job, pc: pc, kc: kc, jc: jc, nc: nc, into: bPack)
            } else if nc % gemmNR != 0 {
                // Only the ragged last panel, stored where panel 0 would be.
                let j = jc + nc / gemmNR * gemmNR
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
                    let mr = min(gemmMR, ic + mc - ir)
                    // A micro-panel: element (r, p) at aPtr[r * ars + p * aks].
                    let aPtr: UnsafePointer<Float>
                    let ars: Int, aks: Int
                    if packTransA {
                        aPtr = UnsafePointer(aPack + (ir - ic) * kc)
                        ars = 1; aks = gemmMR
                    } else if mr == gemmMR && job.transA {
                        aPtr = job.a + pc * job.lda + ir
                        ars = 1; aks = job.lda
                    } else if mr == gemmMR {
                        aPtr = job.a + ir * job.lda + pc
                        ars = job.lda; aks = 1
                    } else {
                        packA(job, ir: ir, mr: mr, pc: pc, kc: kc, into: aPack)
                        aPtr = UnsafePointer(aPack)
                        ars = 1; aks = gemmMR
                    }
                    if prefetches && ir + 2 * gemmMR <= ic + mc {
                        // The next row panel's A rows and C rows, one row panel ahead.
                        let nextA = job.a + (ir + gemmMR) * job.lda + pc
                        let nextC = job.c + (ir + gemmMR) * job.ldc + jc
                        for r in 0..<gemmMR {
                            var o = 0
                            while o < kc { dsl_prefetch(nextA + r * job.lda + o); o += 16 }
                            o = 0
                            while o < nc { dsl_prefetch(nextC + r * job.ldc + o); o += 16 }
                        }
                    }
                    for q in 0..<panels {                               // loop 2
                        let j = jc + q * gemmNR
                        let nr = min(gemmNR, jc + nc - j)
                        let bPanel: UnsafePointer<Float>
                        let bs: Int
                        if directB && nr == gemmNR {
                            bPanel = job.b + pc * job.ldb + j
                            bs = job.ldb
                        } else {
                            bPanel = UnsafePointer(bPack + (directB ? 0 : q * kc * gemmNR))
                            bs = gemmNR
                        }
                        let cPtr = job.c + ir * job.ldc + j
                        if mr == gemmMR && nr == gemmNR {
                            runKernel(3, kc, aPtr, ars, aks, bPanel, bs, cPtr, job.ldc, mode, job.beta)
                        } else {
                            // Ragged edge: run the 8×48 kernel (8×16 for ≤ 16 columns) on a
                            // zero-padded copy of the tile.
                            tile.update(repeating: 0, count: tileSize)
                            if mode != 0 {
                                for r in 0..<mr {
                                    (tile + r * gemmNR).update(from: cPtr + r * job.ldc, count: nr)
                                }
                            }
                            let nv = nr > 16 ? 3 : 1
                            runKernel(nv, kc, aPtr, ars, aks, bPanel, bs, tile, gemmNR, mode, job.beta)
                            for r in 0..<mr {
                                (cPtr + r * job.ldc).update(from: tile + r * gemmNR, count: nr)
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

/// Packs op(B)[pc..<pc+kc, jc..<jc+nc] into 48-wide micro-panels: panel q holds row p at
/// dst[q·kc·48 + p·48 ..< +48]; columns past n are zero.
@inline(__always)
private func packB(_ job: GemmJob, pc: Int, kc: Int, jc: Int, nc: Int,
                   into dst: UnsafeMutablePointer<Float>) {
    let panels = (nc + gemmNR - 1) / gemmNR
    let ldb = job.ldb
    for q in 0..<panels {
        let j0 = jc + q * gemmNR
        let nr = min(gemmNR, jc + nc - j0)
        let d = dst + q * kc * gemmNR
        if !job.transB {
            // op(B)[p, j] = b[p·ldb + j]: rows of the panel are contiguous in B.
            if nr == gemmNR {
                var s = job.b + pc * ldb + j0
                var o = d
                for _ in 0..<kc {
                    let v0 = loadV(s), v1 = loadV(s + 16), v2 = loadV(s + 32)
                    storeV(o, v0); storeV(o + 16, v1); storeV(o + 32, v2)
                    s += ldb; o += gemmNR
                }
            } else {
                for p in 0..<kc {
                    let s = job.b + (pc + p) * ldb + j0
                    let o = d + p * gemmNR
                    for jj in 0..<nr { o[jj] = s[jj] }
                    for jj in nr..<gemmNR { o[jj] = 0 }
                }
            }
        } else {
            // op(B)[p, j] = b[j·ldb + p]: each column of the panel is a contiguous run of B,
            // written with stride 48. Scalar stores suffice: B is packed once per task and
            // reused for all of the task's rows (≥ 1024 rows: about 1-2 % of the task's time).
            for jj in 0..<nr {
                let s = job.b + (j0 + jj) * ldb + pc
                var o = d + jj
                for p in 0..<kc { o.pointee = s[p]; o += gemmNR }
            }
            if nr < gemmNR {
                for p in 0..<kc {
                    (d + p * gemmNR + nr).update(repeating: 0, count: gemmNR - nr)
                }
            }
        }
    }
}

/// Packs op(A)[ic..<ic+mc, pc..<pc+kc] for transposed A (stored k×m) as consecutive 8×kc
/// micro-panels (panel q at dst[q·8·kc], element (r, p) at p·8 + r), reading each stored row
/// of A contiguously; rows past mc are zero.
@inline(__always)
private func packABlockT(_ job: GemmJob, ic: Int, mc: Int, pc: Int, kc: Int,
                         into dst: UnsafeMutablePointer<Float>) {
    let full = mc / gemmMR
    let rest = mc - full * gemmMR
    let panelStride = gemmMR * kc
    for p in 0..<kc {
        let s = job.a + (pc + p) * job.lda + ic
        var o = dst + p * gemmMR
        for q in 0..<full {
            UnsafeMutableRawPointer(o).storeBytes(
                of: UnsafeRawPointer(s + q * gemmMR).loadUnaligned(as: SIMD8<Float>.self),
                as: SIMD8<Float>.self)
            o += panelStride
        }
        if rest > 0 {
            let t = s + full * gemmMR
            for r in 0..<rest { o[r] = t[r] }
            for r in rest..<gemmMR { o[r] = 0 }
        }
    }
}

/// Packs op(A)[ir..<ir+mr, pc..<pc+kc] as an 8×kc micro-panel: dst[p·8 + r]; rows past mr
/// are zero. Used for the ragged bottom panel only (full panels are read in place).
@inline(__always)
private func packA(_ job: GemmJob, ir: Int, mr: Int, pc: Int, kc: Int,
                   into dst: UnsafeMutablePointer<Float>) {
    let lda = job.lda
    if job.transA {
        // op(A)[i, p] = a[p·lda + i]: the 8 values for one p are contiguous.
        var s = job.a + pc * lda + ir
        var o = dst
        for _ in 0..<kc {
            for r in 0..<mr { o[r] = s[r] }
            for r in mr..<gemmMR { o[r] = 0 }
            s += lda; o += gemmMR
        }
    } else {
        // op(A)[i, p] = a[i·lda + p].
        for r in 0..<gemmMR {
            var o = dst + r
            if r < mr {
                let s = job.a + (ir + r) * lda + pc
                for p in 0..<kc { o.pointee = s[p]; o += gemmMR }
            } else {
                for _ in 0..<kc { o.pointee = 0; o += gemmMR }
            }
        }
    }
}

/// Calls the micro-kernel specialised for the A access pattern: rows of A in place (k stride
/// 1), a packed panel (row stride 1, k stride 8), or columns of a transposed A in place; for the
/// tile width: `nv` = 3, 2 or 1 vectors of 16 columns (narrow ones only at the right edge); and
/// for B: a packed panel (row stride 48) or, with `bs` ≠ 48 (full-width tiles only), rows of B
/// read in place.
@inline(__always)
private func runKernel(_ nv: Int, _ kc: Int, _ a: UnsafePointer<Float>, _ ars: Int, _ aks: Int,
                       _ b: UnsafePointer<Float>, _ bs: Int, _ c: UnsafeMutablePointer<Float>,
                       _ ldc: Int, _ mode: Int, _ beta: Float) {
    if bs != gemmNR {
        if aks == 1 {
            microKernel(3, kc, a, ars, 1, b, bs, c, ldc, mode, beta)
        } else {
            microKernel(3, kc, a, 1, aks, b, bs, c, ldc, mode, beta)
        }
    } else if nv == 3 {
        if aks == 1 {
            microKernel(3, kc, a, ars, 1, b, gemmNR, c, ldc, mode, beta)
        } else if aks == gemmMR {
            microKernel(3, kc, a, 1, gemmMR, b, gemmNR, c, ldc, mode, beta)
        } else {
            microKernel(3, kc, a, 1, aks, b, gemmNR, c, ldc, mode, beta)
        }
    } else if nv == 2 {
        if aks == 1 {
            microKernel(2, kc, a, ars, 1, b, gemmNR, c, ldc, mode, beta)
        } else {
            microKernel(2, kc, a, 1, aks, b, gemmNR, c, ldc, mode, beta)
        }
    } else {
        if aks == 1 {
            microKernel(1, kc, a, ars, 1, b, gemmNR, c, ldc, mode, beta)
        } else {
            microKernel(1, kc, a, 1, aks, b, gemmNR, c, ldc, mode, beta)
        }
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

// MARK: - Per-thread scratch

/// Per-thread packing buffers of the GEMM.
private let gemmScratch = ThreadScratch()
