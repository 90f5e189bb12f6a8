import Dispatch

/// Measured peak fp32 FMA rate of this machine in GFLOP/s: one core's rate times `threads`.
///
/// Runs a loop of 12 independent `SIMD16<Float>` fused multiply-adds per step (accumulators in
/// registers, operands L1-resident; enough chains to hide the FMA latency) on the calling thread
/// for about 0.1 s and multiplies the best single-thread rate by `threads` (each core has its
/// own FMA units).
public func machinePeakGFLOPS(threads: Int) -> Double {
    // A trip count unknown at compile time: with a constant one LLVM rewrites the loop into
    // narrow scalarised pieces in some build configurations.
    let iterations = 200_000 + Int(DispatchTime.now().uptimeNanoseconds & 1)
    // Warm up (clock ramp-up), then keep the best of a few timed runs within the time budget.
    var sink = peakFMALoop(iterations: iterations / 4, seed: 1)
    var best = 0.0
    let budget: UInt64 = 120_000_000  // ns
    let start = DispatchTime.now().uptimeNanoseconds
    var runs = 0
    while runs < 3 || DispatchTime.now().uptimeNanoseconds - start < budget / 2 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        sink += peakFMALoop(iterations: iterations, seed: Float(runs) * 1e-9)
        let t1 = DispatchTime.now().uptimeNanoseconds
        let flops = Double(iterations) * Double(peakAccumulators) * 16 * 2
        best = max(best, flops / Double(max(1, t1 - t0)))
        runs += 1
        if DispatchTime.now().uptimeNanoseconds - start > budget { break }
    }
    // The returned value depends on the loop results, so the optimiser cannot delete the loop
    // (the sums are finite, so this never changes the answer).
    return best * Double(max(1, threads)) + (sink.isFinite ? 0 : 1)
}

/// Number of independent accumulators in the peak loop (FMA latency 4 × up to 2 pipes, plus slack).
private let peakAccumulators = 12

/// `iterations` steps of 12 independent SIMD16 FMAs (4 broadcasts × 3 vectors, all L1-resident
/// operands, 12 accumulators in registers). Written exactly like the GEMM micro-kernel: with
/// identical operands for every accumulator LLVM merges or scalarises the chains (seen in debug
/// builds), while this form compiles to 12 `vfmadd231ps zmm` per step in every configuration.
/// Internal rather than private: as a private function LLVM received a rewritten signature and
/// scalarised the loop in non-WMO builds.
@inline(never)
func peakFMALoop(iterations: Int, seed: Float) -> Float {
    typealias V = SIMD16<Float>
    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 64)
    defer { buffer.deallocate() }
    for i in 0..<64 { buffer[i] = 1e-3 * Float(i % 17) + seed }
    let p = UnsafePointer(buffer)
    @inline(__always) func vec(_ i: Int) -> V { UnsafeRawPointer(p + 16 * i).loadUnaligned(as: V.self) }
    var c00 = V(), c01 = V(), c02 = V(), c10 = V(), c11 = V(), c12 = V()
    var c20 = V(), c21 = V(), c22 = V(), c30 = V(), c31 = V(), c32 = V()
    for _ in 0..<iterations {
        let b0 = vec(0), b1 = vec(1), b2 = vec(2)
        var x = V(repeating: p[48])
        c00.addProduct(x, b0); c01.addProduct(x, b1); c02.addProduct(x, b2)
        x = V(repeating: p[49])
        c10.addProduct(x, b0); c11.addProduct(x, b1); c12.addProduct(x, b2)
        x = V(repeating: p[50])
        c20.addProduct(x, b0); c21.addProduct(x, b1); c22.addProduct(x, b2)
        x = V(repeating: p[51])
        c30.addProduct(x, b0); c31.addProduct(x, b1); c32.addProduct(x, b2)
    }
    let s = ((c00 + c01) + (c02 + c10)) + ((c11 + c12) + (c20 + c21)) + ((c22 + c30) + (c31 + c32))
    return s.sum()
}
