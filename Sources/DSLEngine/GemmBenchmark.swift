import Dispatch

/// Times `sgemm` on an m×n×k problem (beta = 0) with `threads` engine threads; returns GFLOP/s.
///
/// Operands are stored as the transpose flags say (A is k×m when `transA`, B is n×k when
/// `transB`), filled with small pseudo-random values. After one warm-up call the product is
/// repeated for about 0.3 s (at least 3 times) and the best time counts (2·m·n·k flops).
public func benchmarkSGEMM(m: Int, n: Int, k: Int, transA: Bool = false, transB: Bool = false,
                           threads: Int = engineThreadCount) -> Double {
    let a = UnsafeMutablePointer<Float>.allocate(capacity: max(1, m * k))
    let b = UnsafeMutablePointer<Float>.allocate(capacity: max(1, k * n))
    let c = UnsafeMutablePointer<Float>.allocate(capacity: max(1, m * n))
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    var seed: UInt32 = 12345
    func next() -> Float {
        seed = seed &* 1_664_525 &+ 1_013_904_223
        return Float(seed >> 8) / Float(1 << 24) - 0.5
    }
    for i in 0..<(m * k) { a[i] = next() }
    for i in 0..<(k * n) { b[i] = next() }
    c.update(repeating: 0, count: m * n)
    let lda = transA ? m : k
    let ldb = transB ? k : n
    let saved = engineThreadCount
    engineThreadCount = max(1, threads)
    defer { engineThreadCount = saved }
    func run() {
        sgemm(transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
              beta: 0, c: c, ldc: n)
    }
    run()
    var best = UInt64.max
    var total: UInt64 = 0
    var reps = 0
    while reps < 3 || total < 300_000_000 {
        let t0 = DispatchTime.now().uptimeNanoseconds
        run()
        let dt = DispatchTime.now().uptimeNanoseconds - t0
        best = min(best, max(1, dt))
        total += dt
        reps += 1
        if reps >= 1000 { break }
    }
    return 2 * Double(m) * Double(n) * Double(k) / Double(best)
}
