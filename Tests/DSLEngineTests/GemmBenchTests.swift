import XCTest
@testable import DSLEngine
#if os(Linux)
import Glibc
#endif

/// Prints GFLOP/s of sgemm for the All-CNN-C training shapes; runs only with DSL_BENCH=1
/// (use a release build: `DSL_BENCH=1 swift test -c release --filter GemmBenchTests`).
final class GemmBenchTests: XCTestCase {
    func testBenchmarkShapes() throws {
        guard ProcessInfo.processInfo.environment["DSL_BENCH"] == "1" else {
            throw XCTSkip("set DSL_BENCH=1 to run the sgemm benchmark")
        }
        let peak1 = machinePeakGFLOPS(threads: 1)
        print(String(format: "peak fp32 FMA: %.1f GFLOP/s per core", peak1))
        var shapes: [(String, Int, Int, Int, Bool, Bool)] = [
            ("fwd conv1  M=65536 K=27   N=96 ", 65536, 96, 27, false, false),
            ("fwd        M=65536 K=864  N=96 ", 65536, 96, 864, false, false),
            ("fwd        M=16384 K=864  N=192", 16384, 192, 864, false, false),
            ("fwd        M=16384 K=864  N=96 ", 16384, 96, 864, false, false),
            ("fwd        M=4096  K=1728 N=192", 4096, 192, 1728, false, false),
            ("bwd-data   M=16384 K=192  N=1728 (B^T)", 16384, 1728, 192, false, true),
            ("bwd-data   M=65536 K=96   N=864  (B^T)", 65536, 864, 96, false, true),
            ("bwd-data   M=4096  K=192  N=1728 (B^T)", 4096, 1728, 192, false, true),
            ("bwd-weight M=864   K=65536 N=96  (A^T)", 864, 96, 65536, true, false),
            ("bwd-weight M=1728  K=16384 N=192 (A^T)", 1728, 192, 16384, true, false),
            ("bwd-weight M=1728  K=4096  N=192 (A^T)", 1728, 192, 4096, true, false),
        ]
        if let only = ProcessInfo.processInfo.environment["DSL_BENCH_ONLY"], let i = Int(only) {
            shapes = [shapes[i]]
        }
        let threadList = ProcessInfo.processInfo.environment["DSL_BENCH_T1ONLY"] == "1" ? [1] : [1, 2]
        for (name, m, n, k, ta, tb) in shapes {
            var line = name
            var g1 = 0.0
            for t in threadList {
                let g = benchmarkSGEMM(m: m, n: n, k: k, transA: ta, transB: tb, threads: t)
                if t == 1 { g1 = g }
                line += String(format: "  %dT %6.1f GFLOP/s (%4.1f%% of %dT peak)", t, g,
                               100 * g / (peak1 * Double(t)), t)
                if t == 2 { line += String(format: "  x%.2f", g / g1) }
            }
            print(line)
        }
    }
}
