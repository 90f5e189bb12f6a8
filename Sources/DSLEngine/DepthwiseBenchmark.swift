import Dispatch

// Memory-bound kernels are measured in bytes per second against the machine's bandwidth,
// measured with the same harness on a plain copy (`benchmarkStreamCopy`).

/// Bytes moved and best times of one depthwise layer (`benchmarkDepthwise`).
public struct DepthwiseBenchmark {
    /// Compulsory traffic of forward: read x, write y (the weights are negligible).
    public var forwardBytes: Double
    /// Compulsory traffic of backward: read x and dy (dW), read dy, read and write dX.
    public var backwardBytes: Double
    public var forwardSeconds: Double
    public var backwardSeconds: Double
    public var forwardGBps: Double { forwardBytes / forwardSeconds * 1e-9 }
    public var backwardGBps: Double { backwardBytes / backwardSeconds * 1e-9 }
}

/// Best of repeated runs (one warm-up, then ≥ 3 runs and ≥ `budget` seconds) of `body`, in seconds.
func bestTime(budget: Double = 0.3, _ body: () -> Void) -> Double {
    body()
    var best = Double.infinity, total = 0.0, reps = 0
    while reps < 3 || total < budget {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        best = min(best, dt)
        total += dt
        reps += 1
        if reps >= 1000 { break }
    }
    return best
}

/// Times the depthwise kernel (3×3 or any `kernel`, padding kernel/2) on a batch of h×w×c
/// inputs with `threads` engine threads: forward, and backward with dX, dW and dB.
public func benchmarkDepthwise(batch: Int, height h: Int, width w: Int, channels c: Int, kernel k: Int = 3,
                               stride s: Int, threads: Int = engineThreadCount) throws -> DepthwiseBenchmark {
    let g = ConvGeometry(kernelHeight: k, kernelWidth: k, strideHeight: s, strideWidth: s, padTop: k / 2, padLeft: k / 2,
                         padBottom: k / 2, padRight: k / 2, groups: c, outChannels: c, bias: false)
    let x = EngineShape(height: h, width: w, channels: c)
    let (oh, ow) = g.outputSize(height: h, width: w)!
    let y = EngineShape(height: oh, width: ow, channels: c)
    let xs = try allocateFloats(batch * x.count), dx = try allocateFloats(batch * x.count)
    let ys = try allocateFloats(batch * y.count), dy = try allocateFloats(batch * y.count)
    let wt = try allocateFloats(k * k * c), dw = try allocateFloats(k * k * c)
    defer { for p in [xs, dx, ys, dy, wt, dw] { releaseMemory(p) } }
    for i in 0..<(batch * x.count) { xs[i] = Float(i % 17) * 0.1 - 0.8 }
    for i in 0..<(batch * y.count) { dy[i] = Float(i % 13) * 0.1 - 0.6 }
    for i in 0..<(k * k * c) { wt[i] = Float(i % 7) * 0.1 - 0.3 }
    let storage = NodeStorage(inputs: [xs], inputShapes: [x], inputGrads: [dx], output: ys, outputShape: y, outputGrad: dy,
                              parameters: [wt], parameterGrads: [dw], buffers: [], saved: nil,
                              columnScratch: xs, columnScratchFloats: 0, maxBatch: batch)
    let kernel = try DepthwiseConvKernel(g, storage: storage)
    let saved = engineThreadCount
    engineThreadCount = max(1, threads)
    defer { engineThreadCount = saved }
    let forward = bestTime { kernel.forward(batch: batch, training: true) }
    let backward = bestTime { kernel.backward(batch: batch) }
    let (xb, yb) = (4 * Double(batch * x.count), 4 * Double(batch * y.count))
    return DepthwiseBenchmark(forwardBytes: xb + yb, backwardBytes: xb + yb + 2 * xb,
                              forwardSeconds: forward, backwardSeconds: backward)
}

/// The machine's bandwidth with the engine's harness: GB/s of a parallel copy of `megabytes`
/// MB (bytes read + bytes written per second, STREAM's convention), split into 64 fixed chunks
/// over `threads` threads.
public func benchmarkStreamCopy(megabytes: Int = 256, threads: Int = engineThreadCount) throws -> Double {
    let count = megabytes << 18
    let a = try allocateFloats(count), b = try allocateFloats(count)
    defer { releaseMemory(a); releaseMemory(b) }
    for i in stride(from: 0, to: count, by: 1024) { a[i] = 1 }
    let saved = engineThreadCount
    engineThreadCount = max(1, threads)
    defer { engineThreadCount = saved }
    let chunks = 64
    let t = bestTime {
        parallelFor(chunks) { chunk in
            let r = chunkRange(chunk, of: chunks, count: count)
            (b + r.lowerBound).update(from: a + r.lowerBound, count: r.count)
        }
    }
    return 8 * Double(count) / t * 1e-9
}
