import Dispatch

/// Measured peak fp32 FMA rate of this machine in GFLOP/s: one core's rate times `threads`.
///
/// Runs a register-only loop of independent `SIMD16<Float>` fused multiply-adds (enough
/// accumulators to hide the FMA latency) on the calling thread for about 0.1 s and multiplies
/// the best single-thread rate by `threads` (each core has its own FMA units).
public func machinePeakGFLOPS(threads: Int) -> Double {
    let iterations = 200_000
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
    peakSink = sink
    return best * Double(max(1, threads))
}

/// Keeps the peak loop's result alive so the optimiser cannot delete the loop.
nonisolated(unsafe) private var peakSink: Float = 0

/// Number of independent accumulators in the peak loop (FMA latency 4 × up to 2 pipes, plus slack).
private let peakAccumulators = 12

/// `iterations` steps of 12 independent SIMD16 FMAs, all operands held in registers.
@inline(never)
private func peakFMALoop(iterations: Int, seed: Float) -> Float {
    typealias V = SIMD16<Float>
    let x = V(repeating: 0.999_999 + seed)
    let y = V(repeating: 1e-7)
    var c0 = V(repeating: 0), c1 = V(repeating: 1), c2 = V(repeating: 2), c3 = V(repeating: 3)
    var c4 = V(repeating: 4), c5 = V(repeating: 5), c6 = V(repeating: 6), c7 = V(repeating: 7)
    var c8 = V(repeating: 8), c9 = V(repeating: 9), c10 = V(repeating: 10), c11 = V(repeating: 11)
    for _ in 0..<iterations {
        c0 = c0.addingProduct(x, y); c1 = c1.addingProduct(x, y); c2 = c2.addingProduct(x, y)
        c3 = c3.addingProduct(x, y); c4 = c4.addingProduct(x, y); c5 = c5.addingProduct(x, y)
        c6 = c6.addingProduct(x, y); c7 = c7.addingProduct(x, y); c8 = c8.addingProduct(x, y)
        c9 = c9.addingProduct(x, y); c10 = c10.addingProduct(x, y); c11 = c11.addingProduct(x, y)
    }
    let s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11))
    return s.sum()
}
