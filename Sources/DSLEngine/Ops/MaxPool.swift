// Max pooling, PyTorch semantics (padding acts as −∞; windows clipped to the input).
// inp is (B,H,W,C), out is (B,OH,OW,C), argmax is (B,OH,OW,C) offsets into one input sample:
// Int32, or Int64 (two floats of saved storage each) when a sample has more than 2^31 − 1
// elements (`wideArgmax`), which the checker allows.
// Forward saves only the argmax indices (training, or an eval pass with `recordsSwitches`, set
// by `EngineGraph.inputGradient`); backward scatters dY to them (the deconvnet's switches).

/// Whether max pooling on inputs of this shape keeps 64-bit argmax offsets.
func wideArgmax(_ input: EngineShape) -> Bool { input.count > wideArgmaxThreshold }

/// Largest sample (elements) with 32-bit argmax offsets (tests lower it to run the 64-bit path).
nonisolated(unsafe) var wideArgmaxThreshold = Int(Int32.max)

/// Max-pooling kernel; ties pick the first maximum in (kh, kw) order, like PyTorch.
final class MaxPoolKernel: EngineKernel {
    let io: UnaryTensors
    let kernel: Int
    let stride: Int
    let pad: Int
    let argmax: UnsafeMutablePointer<Int32>?
    let argmax64: UnsafeMutablePointer<Int64>?
    /// Saves the argmax in eval forward passes too (storage exists when compiled for training).
    var recordsSwitches = false

    init(kernel: Int, stride: Int, pad: Int, storage s: NodeStorage) {
        io = UnaryTensors(s)
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
        let wide = wideArgmax(s.inputShapes[0])
        argmax = wide ? nil : s.saved.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Int32.self) }
        argmax64 = wide ? s.saved.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Int64.self) } : nil
    }

    func forward(batch: Int, training: Bool) {
        let saves = training || recordsSwitches
        if saves, let indices = argmax64 {
            pool(batch: batch, indices: indices)
        } else if saves, let indices = argmax {
            pool(batch: batch, indices: indices)
        } else {
            poolValues(batch: batch)
        }
    }

    /// The forward pass without indices (inference): each output pixel's channels in blocks
    /// of 64 (four registers), then 16, then one by one; acc starts at −∞ and takes each window
    /// element v in (kh, kw) order where v ≥ acc — `max(acc, v)` of the standard library: on a
    /// tie the later (−0 or +0), a NaN never taken — and is stored once. (It was a pass over
    /// the output pixel's channels per window element: GoogLeNet's 13 max poolings, batch 16,
    /// 19 ms of a 213 ms inference on the Xeon host.)
    private func poolValues(batch: Int) {
        let (w, c, y) = (io.inShape.width, io.inShape.channels, io.output)
        @inline(__always) func take(_ acc: DV, _ v: DV) -> DV { acc.replacing(with: v, where: v .>= acc) }
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> DV { UnsafeRawPointer(p).loadUnaligned(as: DV.self) }
        @inline(__always) func store(_ p: UnsafeMutablePointer<Float>, _ v: DV) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: DV.self) }
        let lowest = DV(repeating: -.infinity)
        forEachWindow(batch: batch) { xs, outOffset, rows, cols in
            let dst = y + outOffset
            var ch = 0
            while ch + 64 <= c {
                var (a0, a1, a2, a3) = (lowest, lowest, lowest, lowest)
                for ih in rows {
                    for iw in cols {
                        let src = xs + (ih * w + iw) * c + ch
                        (a0, a1) = (take(a0, load(src)), take(a1, load(src + 16)))
                        (a2, a3) = (take(a2, load(src + 32)), take(a3, load(src + 48)))
                    }
                }
                store(dst + ch, a0); store(dst + ch + 16, a1); store(dst + ch + 32, a2); store(dst + ch + 48, a3)
                ch += 64
            }
            while ch + 16 <= c {
                var a = lowest
                for ih in rows {
                    for iw in cols { a = take(a, load(xs + (ih * w + iw) * c + ch)) }
                }
                store(dst + ch, a)
                ch += 16
            }
            while ch < c {
                var a = -Float.infinity
                for ih in rows {
                    for iw in cols { a = max(a, xs[(ih * w + iw) * c + ch]) }
                }
                dst[ch] = a
                ch += 1
            }
        }
    }

    /// Calls `body` for every output pixel of `batch` samples, in parallel jobs of one output
    /// row: the sample's input, the pixel's offset in the output (and the indices), and its
    /// window's input rows and columns (clipped to the input: padding acts as −∞).
    @inline(__always)
    private func forEachWindow(batch: Int, _ body: (UnsafePointer<Float>, Int, Range<Int>, Range<Int>) -> Void) {
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let (k, s, p) = (kernel, stride, pad)
        let x = UnsafePointer(io.input)
        parallelFor(batch * oh) { job in
            let sample = job / oh, outRow = job % oh
            let rows = max(0, outRow * s - p)..<min(h, outRow * s - p + k)
            for outCol in 0..<ow {
                body(x + sample * h * w * c, (job * ow + outCol) * c, rows, max(0, outCol * s - p)..<min(w, outCol * s - p + k))
            }
        }
    }

    /// The forward pass recording each maximum's offset in `indices` (training; ties pick the
    /// first maximum, as PyTorch).
    @inline(__always)
    private func pool<Index: FixedWidthInteger>(batch: Int, indices: UnsafeMutablePointer<Index>) {
        let (w, c, y) = (io.inShape.width, io.inShape.channels, io.output)
        forEachWindow(batch: batch) { xs, outOffset, rows, cols in
            let dst = y + outOffset
            dst.update(repeating: -Float.infinity, count: c)
            let idx = indices + outOffset
            idx.update(repeating: 0, count: c)
            for ih in rows {
                for iw in cols {
                    let offset = (ih * w + iw) * c
                    let src = xs + offset
                    for ch in 0..<c {
                        let v = src[ch], better = v > dst[ch]
                        dst[ch] = better ? v : dst[ch]
                        idx[ch] = better ? Index(truncatingIfNeeded: offset + ch) : idx[ch]
                    }
                }
            }
        }
    }

    func backward(batch: Int) {
        if let indices = argmax64 { scatter(batch: batch, indices: indices) } else if let indices = argmax { scatter(batch: batch, indices: indices) }
    }

    /// Backward stores the input gradient (`storeInputGradient`): each sample's part is zeroed
    /// by its own job before the scatter adds to it.
    var storesInputGradient = false
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient = true; return true }

    /// dX[argmax] += dY.
    @inline(__always)
    private func scatter<Index: FixedWidthInteger>(batch: Int, indices: UnsafeMutablePointer<Index>) {
        guard let dIn = io.inputGrad, let dOut = io.outputGrad else { return }
        let inCount = io.inShape.count, outCount = io.outShape.count, zeroFirst = storesInputGradient
        // One job per sample: samples scatter into disjoint parts of dIn, in a fixed order.
        parallelFor(batch) { sample in
            let dx = dIn + sample * inCount
            let dy = dOut + sample * outCount
            let idx = indices + sample * outCount
            if zeroFirst { dx.update(repeating: 0, count: inCount) }
            for i in 0..<outCount { dx[Int(idx[i])] += dy[i] }
        }
    }
}
