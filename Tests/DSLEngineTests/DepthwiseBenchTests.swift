import XCTest
@testable import DSLEngine

/// GB/s of the depthwise kernel on MobileNetV2's depthwise layers (224×224, batch 16) against
/// a plain copy measured with the same harness; runs only with DSL_BENCH=1:
/// `DSL_BENCH=1 swift test --filter DepthwiseBenchTests` (the engine is optimised in debug builds).
final class DepthwiseBenchTests: XCTestCase {
    func testMobileNetV2DepthwiseBandwidth() throws {
        guard ProcessInfo.processInfo.environment["DSL_BENCH"] == "1" else {
            throw XCTSkip("set DSL_BENCH=1 to run the depthwise benchmark")
        }
        let batch = Int(ProcessInfo.processInfo.environment["DSL_BENCH_BATCH"] ?? "") ?? 16
        // (input size, channels, stride) of MobileNetV2's 17 depthwise layers, each distinct once.
        let layers: [(Int, Int, Int, Int)] = [(112, 32, 1, 1), (112, 96, 2, 1), (56, 144, 1, 1), (56, 144, 2, 1),
                                              (28, 192, 1, 2), (28, 192, 2, 1), (14, 384, 1, 4), (14, 576, 1, 2),
                                              (14, 576, 2, 1), (7, 960, 1, 3)]
        for threads in [1, 2] {
            let copy = try benchmarkStreamCopy(threads: threads)
            print(String(format: "%dT stream copy 256 MB: %.1f GB/s (read + write)", threads, copy))
            var fwdBytes = 0.0, fwdTime = 0.0, bwdBytes = 0.0, bwdTime = 0.0
            for (size, c, s, repeats) in layers {
                let r = try benchmarkDepthwise(batch: batch, height: size, width: size, channels: c, stride: s, threads: threads)
                print(String(format: "%dT dw3x3 %3dx%-3d x%-4d s%d: fwd %6.2f ms %5.1f GB/s (%3.0f%% of copy) | bwd %6.2f ms %5.1f GB/s (%3.0f%%)",
                             threads, size, size, c, s, r.forwardSeconds * 1e3, r.forwardGBps, 100 * r.forwardGBps / copy,
                             r.backwardSeconds * 1e3, r.backwardGBps, 100 * r.backwardGBps / copy))
                fwdBytes += Double(repeats) * r.forwardBytes; fwdTime += Double(repeats) * r.forwardSeconds
                bwdBytes += Double(repeats) * r.backwardBytes; bwdTime += Double(repeats) * r.backwardSeconds
            }
            print(String(format: "%dT all 17 depthwise layers, batch %d: fwd %.1f ms %.1f GB/s | bwd %.1f ms %.1f GB/s",
                         threads, batch, fwdTime * 1e3, fwdBytes / fwdTime * 1e-9, bwdTime * 1e3, bwdBytes / bwdTime * 1e-9))
        }
    }
}
