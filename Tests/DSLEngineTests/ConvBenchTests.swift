import XCTest
@testable import DSLEngine
#if os(Linux)
import Glibc
#endif

/// Prints the % of one core's peak reached by each convolution pass (forward, backward-weights,
/// backward-data) on the All-CNN-C 3×3 layer shapes; runs only with DSL_BENCH=1 (release build:
/// `DSL_BENCH=1 swift test -c release --filter ConvBenchTests`). Rates are GFLOP per CPU-second
/// of the process (best of several calls), insensitive to other processes on a shared machine.
final class ConvBenchTests: XCTestCase {
    func cpuSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    func wallSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Best CPU-seconds divided by the thread count (CPU-time per thread), and best wall seconds.
    var lastWall = 0.0
    func best(_ body: () -> Void) -> Double {
        body()
        var best = Double.infinity, bestWall = Double.infinity, total = 0.0, reps = 0
        while reps < 3 || total < 0.4 {
            let t0 = cpuSeconds(), w0 = wallSeconds()
            body()
            let dt = cpuSeconds() - t0
            bestWall = min(bestWall, wallSeconds() - w0)
            best = min(best, dt); total += dt; reps += 1
        }
        lastWall = bestWall
        return best / Double(engineThreadCount)
    }

    func testConvPasses() throws {
        let env = ProcessInfo.processInfo.environment
        guard env["DSL_BENCH"] == "1" else { throw XCTSkip("set DSL_BENCH=1 to run the convolution benchmark") }
        let threads = Int(env["DSL_THREADS"] ?? "1") ?? 1
        if let v = env["DSL_WPB"], let x = Int(v) { weightPixelsPerBlock = x }
        if let v = env["DSL_WSB"], let x = Int(v) { weightPixelsPerSubBlock = x }
        if let v = env["DSL_WCF"], let x = Int(v) { weightChunkFloats = x }
        if let v = env["DSL_WJ"], let x = Int(v) { weightJobsPerBlock = x }
        if let v = env["DSL_WTJ"], let x = Int(v) { winogradTilesPerJob = x }
        if let v = env["DSL_WTB"], let x = Int(v) { winogradTilesPerWeightBlock = x }
        if let v = env["DSL_WBB"], let x = Int(v) { winogradWeightBlockBytes = x }
        defer { winogradTilesPerJob = 16; winogradTilesPerWeightBlock = 128; winogradWeightBlockBytes = 1 << 20 }
        // DSL_DIRECT=0 forces im2col + GEMM, DSL_WINOGRAD=0 turns Winograd off.
        if let v = env["DSL_DIRECT"] { ConvKernel.directOverride = v == "1" }
        if let v = env["DSL_WINOGRAD"] { ConvKernel.winogradOverride = v == "1" }
        defer { ConvKernel.directOverride = nil; ConvKernel.winogradOverride = nil }
        let saved = engineThreadCount
        engineThreadCount = threads
        defer { engineThreadCount = saved }
        let peak1 = machinePeakGFLOPS(threads: 1)
        print(String(format: "peak %.1f GFLOP/s per core; %d thread(s); %% of (threads × peak): per CPU-second of each thread, and wall-clock", peak1, threads))
        let batch = Int(env["DSL_BATCH"] ?? "16") ?? 16
        var layers: [(String, Int, Int, Int, Int, Int, Int)] = [  // name, h, ic, oc, k, s, p
            ("conv1 32x32  3->96  s1", 32, 3, 96, 3, 1, 1),
            ("conv2 32x32 96->96  s1", 32, 96, 96, 3, 1, 1),
            ("conv3 32x32 96->96  s2", 32, 96, 96, 3, 2, 1),
            ("conv4 16x16 96->192 s1", 16, 96, 192, 3, 1, 1),
            ("conv5 16x16 192->192 s1", 16, 192, 192, 3, 1, 1),
            ("conv6 16x16 192->192 s2", 16, 192, 192, 3, 2, 1),
            ("conv7 8x8  192->192 p0", 8, 192, 192, 3, 1, 0),
        ]
        // DSL_SHAPE="h,ic,oc,k,s,p" benchmarks one other shape instead.
        if let v = env["DSL_SHAPE"] {
            let f = v.split(separator: ",").compactMap { Int($0) }
            if f.count == 6 { layers = [("shape \(v)", f[0], f[1], f[2], f[3], f[4], f[5])] }
        }
        let only = env["DSL_LAYERS"].map { Set($0.split(separator: ",").map(String.init)) }
        for (name, h, ic, oc, k, s, p) in layers where only?.contains(String(name.prefix(5))) ?? true {
            let oh = (h + 2 * p - k) / s + 1
            let inS = EngineShape(height: h, width: h, channels: ic)
            let outS = EngineShape(height: oh, width: oh, channels: oc)
            let colFloats = ConvKernel.columnFloatsPerSample(kernel: k, input: inS, output: outS)
                * ConvKernel.samplesPerChunk(kernel: k, input: inS, output: outS, maxBatch: batch)
            let x = try allocateFloats(batch * inS.count), dx = try allocateFloats(batch * inS.count)
            let y = try allocateFloats(batch * outS.count), dy = try allocateFloats(batch * outS.count)
            let w = try allocateFloats(k * k * ic * oc), dw = try allocateFloats(k * k * ic * oc)
            let b = try allocateFloats(oc), db = try allocateFloats(oc), col = try allocateFloats(colFloats)
            for i in 0..<(batch * inS.count) { x[i] = Float(i % 13) * 0.1 - 0.6 }
            for i in 0..<(batch * outS.count) { dy[i] = Float(i % 11) * 0.1 - 0.5 }
            for i in 0..<(k * k * ic * oc) { w[i] = Float(i % 7) * 0.01 }
            let st = NodeStorage(inputs: [x], inputShapes: [inS], inputGrads: [ic == 3 ? nil : dx], output: y, outputShape: outS,
                                 outputGrad: dy, parameters: [w, b], parameterGrads: [dw, db], buffers: [], saved: nil,
                                 columnScratch: col, columnScratchFloats: colFloats, maxBatch: batch)
            let kern = try ConvKernel(kernel: k, stride: s, pad: p, storage: st)
            // DSL_MASK=1: backward-data also does the backward of a ReLU before the layer.
            kern.masksInputGradient = env["DSL_MASK"] == "1"
            let flops = 2.0 * Double(batch * oh * oh * k * k * ic * oc)
            func pct(_ t: Double, passes: Double = 1) -> String {
                String(format: "%5.1f%%", passes * flops / t / 1e9 / (peak1 * Double(threads)) * 100)
            }
            // The first layer computes no dX (its input is the image).
            let backwardPasses: Double = ic == 3 ? 1 : 2
            let f = best { kern.forward(batch: batch, training: true) }
            let fWall = lastWall
            let full = best { kern.backward(batch: batch) }
            let fullWall = lastWall
            var line = "\(name)  \(kern.algorithm ?? "")  fwd \(pct(f)) (\(String(format: "%.2f", f * 1000)) ms)"
                + "  bwd \(pct(full, passes: backwardPasses)) (\(String(format: "%.2f", full * 1000)) ms)"
                + " | wall: fwd \(pct(fWall)) bwd \(pct(fullWall, passes: backwardPasses))"
            if kern.winograd {
                let bw = best {
                    runWinogradWeightGradient(shape: kern.plan.winogradForwardShape, samples: batch, input: UnsafePointer(x),
                                              dY: UnsafePointer(dy), dW: dw, dU: kern.winogradGradient,
                                              scratch: col, scratchFloats: colFloats)
                }
                let bd = ic == 3 ? .infinity : best { kern.winogradDataGradient(batch: batch, dOut: dy, dIn: dx) }
                line += " | winograd bwd-w \(pct(bw)) (\(String(format: "%.2f", bw * 1000)) ms) bwd-d \(pct(bd)) (\(String(format: "%.2f", bd * 1000)) ms)"
            }
            if kern.direct {
                let bw = best { kern.directWeightGradient(batch: batch, dOut: dy) }
                let bwWall = lastWall
                let bd = kern.directData ? best { kern.directDataGradient(batch: batch, dOut: dy, dIn: dx) } : .infinity
                let gw = best { kern.gemmWeightGradient(batch: batch, dOut: dy) }
                let gwWall = lastWall
                line += " | direct bwd-w \(pct(bw)) bwd-d \(pct(bd)) | gemm bwd-w \(pct(gw))"
                    + String(format: " | bwd-w wall ms: direct %.2f, gemm %.2f", bwWall * 1000, gwWall * 1000)
            }
            print(line)
            for ptr in [x, dx, y, dy, w, dw, b, db, col] { releaseMemory(ptr) }
        }
    }
}
