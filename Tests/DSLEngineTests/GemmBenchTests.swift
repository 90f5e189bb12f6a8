import XCTest
@testable import DSLEngine
#if os(Linux)
import Glibc
#endif

/// Prints GFLOP/s of sgemm for the All-CNN-C training shapes; runs only with DSL_BENCH=1
/// (use a release build: `DSL_BENCH=1 swift test -c release --filter GemmBenchTests`).
/// Besides wall-clock GFLOP/s (`benchmarkSGEMM`) it prints GFLOP per CPU-second of the process
/// ("cpu"), which is insensitive to other processes taking the cores away (shared machines).
final class GemmBenchTests: XCTestCase {
    func cpuSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Best GFLOP per CPU-second over repeated calls (about 0.3 s of CPU).
    func cpuRate(m: Int, n: Int, k: Int, ta: Bool, tb: Bool, threads: Int) -> Double {
        let a = UnsafeMutablePointer<Float>.allocate(capacity: m * k)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(m * k) { a[i] = Float(i % 7) * 0.1 }
        for i in 0..<(k * n) { b[i] = Float(i % 5) * 0.1 }
        let saved = engineThreadCount
        engineThreadCount = threads
        defer { engineThreadCount = saved }
        var best = 0.0, total = 0.0, reps = 0
        while reps < 3 || total < 0.3 {
            let t0 = cpuSeconds()
            sgemm(ta, tb, m: m, n: n, k: k, a: a, lda: ta ? m : k, b: b, ldb: tb ? k : n,
                  beta: 0, c: c, ldc: n)
            let dt = cpuSeconds() - t0
            if reps > 0 { best = max(best, 2 * Double(m * n * k) / dt * 1e-9 * Double(threads)) }
            total += dt
            reps += 1
        }
        return best
    }

    func testBenchmarkShapes() throws {
        let env = ProcessInfo.processInfo.environment
        guard env["DSL_BENCH"] == "1" else {
            throw XCTSkip("set DSL_BENCH=1 to run the sgemm benchmark")
        }
        if let v = env["DSL_KC"], let x = Int(v) { gemmKCMax = x }
        if let v = env["DSL_BB"], let x = Int(v) { gemmBBudget = x }
        if let v = env["DSL_AB"], let x = Int(v) { gemmABudget = x }
        let peak1 = machinePeakGFLOPS(threads: 1)
        print(String(format: "peak fp32 FMA: %.1f GFLOP/s per core", peak1))
        var shapes: [(String, Int, Int, Int, Bool, Bool)] = [
            ("fwd conv1  M=65536 K=27    N=96        ", 65536, 96, 27, false, false),
            ("fwd        M=65536 K=864   N=96        ", 65536, 96, 864, false, false),
            ("fwd        M=16384 K=864   N=192       ", 16384, 192, 864, false, false),
            ("fwd        M=16384 K=864   N=96        ", 16384, 96, 864, false, false),
            ("fwd        M=4096  K=1728  N=192       ", 4096, 192, 1728, false, false),
            ("bwd-data   M=16384 K=192   N=1728 (B^T)", 16384, 1728, 192, false, true),
            ("bwd-data   M=65536 K=96    N=864  (B^T)", 65536, 864, 96, false, true),
            ("bwd-data   M=4096  K=192   N=1728 (B^T)", 4096, 1728, 192, false, true),
            ("bwd-weight M=864   K=65536 N=96   (A^T)", 864, 96, 65536, true, false),
            ("bwd-weight M=1728  K=16384 N=192  (A^T)", 1728, 192, 16384, true, false),
            ("bwd-weight M=1728  K=4096  N=192  (A^T)", 1728, 192, 4096, true, false),
            ("conv1 L3-resident M=4096 K=27 N=96     ", 4096, 96, 27, false, false),
            ("bwd-data conv1 M=65536 K=96 N=27 (B^T) ", 65536, 27, 96, false, true),
            ("bwd-wt conv1 M=27 K=65536 N=96 (A^T)   ", 27, 96, 65536, true, false),
            ("1x1 head M=4096 K=192 N=10             ", 4096, 10, 192, false, false),
            ("cache-resident M=512 K=256 N=96        ", 512, 96, 256, false, false),
            ("cache-resident M=512 K=512 N=192       ", 512, 192, 512, false, false),
        ]
        if let only = env["DSL_BENCH_ONLY"] {
            let keep = Set(only.split(separator: ",").compactMap { Int($0) })
            shapes = shapes.enumerated().filter { keep.contains($0.offset) }.map(\.element)
        }
        // DSL_GEMM_SHAPES="m,n,k;m,n,k,ta,tb" benchmarks these shapes instead (ta, tb: 1 reads A
        // or B transposed, as the weight and data gradients do; untransposed by default).
        if let v = env["DSL_GEMM_SHAPES"] {
            shapes = v.split(separator: ";").compactMap { spec in
                let f = spec.split(separator: ",").compactMap { Int($0) }
                guard f.count == 3 || f.count == 5 else { return nil }
                let (ta, tb) = f.count == 5 ? (f[3] == 1, f[4] == 1) : (false, false)
                return ("M=\(f[0]) N=\(f[1]) K=\(f[2])\(ta ? " A^T" : "")\(tb ? " B^T" : "")", f[0], f[1], f[2], ta, tb)
            }
        }
        let threadList = env["DSL_BENCH_T1ONLY"] == "1" ? [1] : [1, 2]
        // DSL_GEMM_TILE=8x48, 6x64 or 12x32 forces that register tile (GemmTile) for every shape.
        let tiles = ["8x48": GemmTile.tile8x48, "6x64": .tile6x64, "12x32": .tile12x32]
        GemmTile.override = env["DSL_GEMM_TILE"].flatMap { tiles[$0] }
        defer { GemmTile.override = nil }
        // DSL_GEMM_PREFETCH=0 turns off the GEMM's prefetch of A and C (for A/B runs).
        gemmPrefetch = env["DSL_GEMM_PREFETCH"] != "0"
        defer { gemmPrefetch = true }
        for (name, m, n, k, ta, tb) in shapes {
            var line = name
            var g1 = 0.0
            for t in threadList {
                let g = benchmarkSGEMM(m: m, n: n, k: k, transA: ta, transB: tb, threads: t)
                let cpu = cpuRate(m: m, n: n, k: k, ta: ta, tb: tb, threads: t)
                if t == 1 { g1 = g }
                line += String(format: " | %dT %6.1f GFLOP/s %4.1f%% (cpu %6.1f %4.1f%%)", t, g,
                               100 * g / (peak1 * Double(t)), cpu, 100 * cpu / (peak1 * Double(t)))
                if t == 2 { line += String(format: " x%.2f", g / g1) }
            }
            print(line)
        }
    }
}

/// Round-trip cost of an empty parallelFor over 2 chunks (DSL_BENCH=1).
final class ParallelForBenchTests: XCTestCase {
    func testEmptyParallelForLatency() throws {
        guard ProcessInfo.processInfo.environment["DSL_BENCH"] == "1" else {
            throw XCTSkip("set DSL_BENCH=1 to run the parallelFor benchmark")
        }
        let saved = engineThreadCount
        engineThreadCount = 2
        defer { engineThreadCount = saved }
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 16)
        defer { counts.deallocate() }
        counts.initialize(repeating: 0, count: 16)
        for _ in 0..<100 { parallelFor(2) { counts[$0 * 8] += 1 } }
        let reps = 20000
        let t0 = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<reps { parallelFor(2) { counts[$0 * 8] += 1 } }
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(reps)
        print(String(format: "parallelFor(2) empty: %.2f µs per call", dt / 1000))
        for work in [5_000, 20_000, 100_000] as [UInt64] {
            func spin(_ ns: UInt64) {
                let end = DispatchTime.now().uptimeNanoseconds + ns
                while DispatchTime.now().uptimeNanoseconds < end {}
            }
            let r = 2000
            let t1 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<r { parallelFor(2) { _ in spin(work) } }
            let d = Double(DispatchTime.now().uptimeNanoseconds - t1) / Double(r)
            let t2 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<r { DispatchQueue.concurrentPerform(iterations: 2) { _ in spin(work) } }
            let d2 = Double(DispatchTime.now().uptimeNanoseconds - t2) / Double(r)
            print(String(format: "parallelFor(2) with %d µs per chunk: %.1f µs per call (ideal %d; concurrentPerform %.1f)",
                         Int(work / 1000), d / 1000, Int(work / 1000), d2 / 1000))
        }
    }
}
