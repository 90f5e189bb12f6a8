import XCTest
@testable import DSLEngine

/// The operators other than convolution against plain Double references on sampled grids of
/// shapes (channel counts 1–97, odd and prime sizes, batches 1–3): pooling (max and average,
/// floor and ceil, padding, windows overhanging the input in ceil mode as in PyTorch), batch
/// norm (training and inference), concat, add (narrower inputs zero-padded), linear, dropout,
/// global average pooling, ReLU and leaky ReLU, softmax over channels. Each kernel runs on
/// guarded tensors (NaN past the batch, gradients accumulated onto existing values), with 1
/// and 2 threads, which must agree bit for bit.
final class OpGridTests: XCTestCase {
    static let channels = [1, 2, 3, 5, 7, 16, 17, 31, 48, 49, 97]
    static let sizes = [1, 2, 3, 5, 7, 8, 9, 13, 17]
    static let batches = [1, 2, 3]

    /// One run of a kernel: its outputs (forward values, then gradients) and whether it stayed
    /// inside its tensors.
    struct Run {
        var values: [Float]
        var intact: Bool
    }

    /// Builds the kernel on tensors made by `setUp`, runs `body` with the given threads.
    private func twice(_ label: String, _ failures: inout [String], _ run: (Int) throws -> Run,
                       check: (Run) -> String?) rethrows {
        let two = try run(2), one = try run(1)
        let problems = [check(two), two.intact && one.intact ? nil : "wrote outside its tensors",
                        bitIdentical(one.values, two.values) ? nil : "1 and 2 threads differ"].compactMap { $0 }
        if !problems.isEmpty { failures.append("\(label): " + problems.joined(separator: "; ")) }
    }

    private func report(_ failures: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(failures.isEmpty, "\(failures.count) failures:\n" + failures.prefix(30).joined(separator: "\n"),
                      file: file, line: line)
    }

    /// Samples past the batch are NaN.
    private func padded(_ values: [Float], to count: Int) -> [Float] {
        values + [Float](repeating: poison, count: count - values.count)
    }

    // MARK: Pooling

    /// PyTorch's pooling output size (floor division, ceil mode, last window starting inside
    /// the input or the left padding); nil where PyTorch refuses the shape.
    static func torchPooledSize(_ size: Int, k: Int, s: Int, p: Int, ceil: Bool) -> Int? {
        guard 2 * p <= k else { return nil }
        let numerator = size + 2 * p - k + (ceil ? s - 1 : 0)
        if numerator < 0 { return nil }
        var out = numerator / s + 1
        if ceil && (out - 1) * s >= size + p { out -= 1 }
        return out >= 1 ? out : nil
    }

    func testPoolingGrid() throws {
        var random = TestRandom(11)
        var failures: [String] = []
        var overhanging = 0, tested = 0
        for index in 0..<500 {
            let (h, w) = (random.pick(Self.sizes), random.int(3) == 0 ? 0 : random.pick(Self.sizes))
            let width = w == 0 ? h : w
            let c = random.pick(Self.channels), batch = random.pick(Self.batches)
            let k = random.pick([1, 2, 3, 4, 5, 7]), s = random.pick([1, 2, 3, 5]), p = random.int(k / 2 + 1)
            let ceil = random.int(2) == 0, isMax = random.int(2) == 0
            let op: EngineOp = isMax ? .maxPool(kernel: k, stride: s, pad: p, ceilMode: ceil)
                                     : .avgPool(kernel: k, stride: s, pad: p, ceilMode: ceil)
            let inShape = EngineShape(height: h, width: width, channels: c)
            let expectedH = Self.torchPooledSize(h, k: k, s: s, p: p, ceil: ceil)
            let expectedW = Self.torchPooledSize(width, k: k, s: s, p: p, ceil: ceil)
            let label = "\(batch)x\(h)x\(width)x\(c) \(op)"
            guard let oh = expectedH, let ow = expectedW else {
                // PyTorch refuses it: so does the engine (and the checker).
                XCTAssertThrowsError(try op.outputShape(inputs: [inShape], node: "pool"), label)
                continue
            }
            let outShape: EngineShape
            do { outShape = try op.outputShape(inputs: [inShape], node: "pool") } catch {
                failures.append("\(label): refused a shape PyTorch accepts: \(error)")
                continue
            }
            guard outShape == EngineShape(height: oh, width: ow, channels: c) else {
                failures.append("\(label): output \(outShape), PyTorch \(oh)x\(ow)")
                continue
            }
            tested += 1
            if (oh - 1) * s - p + k > h + p || (ow - 1) * s - p + k > width + p { overhanging += 1 }
            // Distinct values: no ties for the maximum.
            let x = random.spaced(batch * inShape.count).map { $0 * 3 }
            let dy = random.normals(batch * outShape.count), dx0 = random.normals(batch * inShape.count)
            // Reference (PyTorch): max over the window clipped to the input; average of the
            // window clipped to the input, divided by its size clipped to input + padding.
            var y = [Double](repeating: 0, count: batch * outShape.count), dx = dx0.map(Double.init)
            var yAbs = y, dxAbs = dx0.map { Double(abs($0)) }
            for n in 0..<batch {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let (y0, x0) = (oy * s - p, ox * s - p)
                        let divisor = Double((min(y0 + k, h + p) - y0) * (min(x0 + k, width + p) - x0))
                        for ch in 0..<c {
                            let o = ((n * oh + oy) * ow + ox) * c + ch
                            var best = -Double.infinity, at = -1, sum = 0.0, sumAbs = 0.0
                            for iy in max(0, y0)..<min(h, y0 + k) {
                                for ix in max(0, x0)..<min(width, x0 + k) {
                                    let i = ((n * h + iy) * width + ix) * c + ch
                                    let v = Double(x[i])
                                    if v > best { best = v; at = i }
                                    sum += v; sumAbs += abs(v)
                                }
                            }
                            if isMax {
                                y[o] = best; yAbs[o] = abs(best)
                                dx[at] += Double(dy[o]); dxAbs[at] += abs(Double(dy[o]))
                            } else {
                                y[o] = sum / divisor; yAbs[o] = sumAbs / divisor
                                for iy in max(0, y0)..<min(h, y0 + k) {
                                    for ix in max(0, x0)..<min(width, x0 + k) {
                                        let i = ((n * h + iy) * width + ix) * c + ch
                                        dx[i] += Double(dy[o]) / divisor; dxAbs[i] += abs(Double(dy[o])) / divisor
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let maxBatch = batch + index % 2
            twice(label, &failures, { threads in
                let t = KernelTensors()
                let xs = t.make(maxBatch * inShape.count, padded(x, to: maxBatch * inShape.count))
                let ys = t.make(maxBatch * outShape.count, [Float](repeating: poison, count: maxBatch * outShape.count))
                let dys = t.make(maxBatch * outShape.count, padded(dy, to: maxBatch * outShape.count))
                let dxs = t.make(maxBatch * inShape.count, padded(dx0, to: maxBatch * inShape.count))
                // Every third case keeps 64-bit argmax offsets (as for samples over 2^31 elements).
                let savedThreshold = wideArgmaxThreshold
                if index % 3 == 0 { wideArgmaxThreshold = 0 }
                defer { wideArgmaxThreshold = savedThreshold }
                let savedFloats = op.savedFloatsPerSample(input: inShape, output: outShape)
                let saved = isMax ? t.make(maxBatch * savedFloats) : nil
                let storage = NodeStorage(inputs: [xs.pointer], inputShapes: [inShape], inputGrads: [dxs.pointer],
                                          output: ys.pointer, outputShape: outShape, outputGrad: dys.pointer,
                                          parameters: [], parameterGrads: [], buffers: [], saved: saved?.pointer,
                                          columnScratch: xs.pointer, columnScratchFloats: 0, maxBatch: maxBatch)
                let kernel: EngineKernel = isMax ? MaxPoolKernel(kernel: k, stride: s, pad: p, storage: storage)
                                                 : AvgPoolKernel(kernel: k, stride: s, pad: p, storage: storage)
                // Inference first (no argmax kept), then training forward and backward.
                var values: [Float] = []
                withThreads(threads) {
                    kernel.forward(batch: batch, training: false)
                    values = (ys.first(batch * outShape.count))
                    kernel.forward(batch: batch, training: true)
                    kernel.backward(batch: batch)
                }
                return Run(values: values + ys.first(batch * outShape.count) + dxs.first(batch * inShape.count),
                           intact: t.intact)
            }, check: { r in
                let count = batch * outShape.count
                return mismatch(Array(r.values[0..<count]), y, abs: yAbs, rel: 1e-6, "y (inference)")
                    ?? mismatch(Array(r.values[count..<(2 * count)]), y, abs: yAbs, rel: 1e-6, "y")
                    ?? mismatch(Array(r.values[(2 * count)...]), dx, abs: dxAbs, rel: 1e-6, "dx")
            })
        }
        report(failures)
        XCTAssertGreaterThan(overhanging, 10, "the sample should include windows overhanging the padded input")
        XCTAssertGreaterThan(tested, 200)
    }

    /// Max pooling's inference pass (no argmax kept; 64- and 16-channel registers, then one by
    /// one) on inputs full of ties, −0 and +0, −∞ and NaN: bit for bit `Swift.max` folded over
    /// the window in (kh, kw) order from −∞ (on a tie the later value, a NaN never taken), with
    /// 1 and 2 threads, inside its tensors.
    func testMaxPoolInferenceBitsWithTiesZerosAndNaN() throws {
        var random = TestRandom(13)
        var failures: [String] = []
        let palette: [Float] = [0, -0.0, 0, -0.0, -1, -0.5, .nan, -.infinity, 0, -0.0, 1, .infinity]
        var tested = 0, zeroTies = 0
        for _ in 0..<120 {
            let (h, w) = (random.pick([1, 2, 3, 5, 7, 9]), random.pick([1, 2, 4, 7, 8]))
            let c = random.pick([1, 5, 16, 17, 48, 63, 64, 65, 80, 128, 131, 150])
            let batch = random.pick(Self.batches)
            let k = random.pick([1, 2, 3, 5]), s = random.pick([1, 2, 3]), p = random.int(k / 2 + 1), ceil = random.int(2) == 0
            let inShape = EngineShape(height: h, width: w, channels: c)
            let op = EngineOp.maxPool(kernel: k, stride: s, pad: p, ceilMode: ceil)
            guard let outShape = try? op.outputShape(inputs: [inShape], node: "pool") else { continue }
            let (oh, ow) = (outShape.height, outShape.width)
            let x = (0..<(batch * inShape.count)).map { _ in palette[random.int(palette.count)] }
            var expected = [Float](repeating: 0, count: batch * outShape.count)
            for n in 0..<batch {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let (y0, x0) = (oy * s - p, ox * s - p)
                        for ch in 0..<c {
                            var a = -Float.infinity
                            for iy in max(0, y0)..<min(h, y0 + k) {
                                for ix in max(0, x0)..<min(w, x0 + k) {
                                    let v = x[((n * h + iy) * w + ix) * c + ch]
                                    if v == 0 && a == 0 && v.sign != a.sign { zeroTies += 1 }
                                    a = max(a, v)
                                }
                            }
                            expected[((n * oh + oy) * ow + ox) * c + ch] = a
                        }
                    }
                }
            }
            let label = "\(batch)x\(h)x\(w)x\(c) \(op)"
            tested += 1
            twice(label, &failures, { threads in
                let t = KernelTensors()
                let maxBatch = batch + 1
                let xs = t.make(maxBatch * inShape.count, padded(x, to: maxBatch * inShape.count))
                let ys = t.make(maxBatch * outShape.count, [Float](repeating: poison, count: maxBatch * outShape.count))
                let storage = NodeStorage(inputs: [xs.pointer], inputShapes: [inShape], inputGrads: [nil],
                                          output: ys.pointer, outputShape: outShape, outputGrad: nil,
                                          parameters: [], parameterGrads: [], buffers: [], saved: nil,
                                          columnScratch: xs.pointer, columnScratchFloats: 0, maxBatch: maxBatch)
                let kernel = MaxPoolKernel(kernel: k, stride: s, pad: p, storage: storage)
                withThreads(threads) { kernel.forward(batch: batch, training: false) }
                return Run(values: ys.first(batch * outShape.count), intact: t.intact)
            }, check: { r in
                let i = r.values.indices.first { r.values[$0].bitPattern != expected[$0].bitPattern }
                return i.map { "element \($0): \(r.values[$0]) vs \(expected[$0])" }
            })
        }
        report(failures)
        XCTAssertGreaterThan(tested, 80)
        XCTAssertGreaterThan(zeroTies, 1000, "windows should hold −0 and +0 as the maximum")
        print("max pooling inference: \(tested) shapes, \(zeroTies) ties of −0 and +0")
    }

    // MARK: Batch norm

    func testBatchNormGrid() throws {
        var random = TestRandom(12)
        var failures: [String] = []
        for index in 0..<60 {
            let c = random.pick(Self.channels), batch = random.pick(Self.batches)
            let (h, w) = (random.pick([1, 2, 3, 5, 7, 13]), random.pick([1, 2, 3, 5, 7, 13]))
            if batch * h * w == 1 { continue }  // one value per channel: no variance (PyTorch refuses it too)
            let shape = EngineShape(height: h, width: w, channels: c)
            let label = "\(batch)x\(shape) bn"
            let rows = batch * h * w, count = rows * c
            let x = random.normals(count).map { $0 * 2 + 0.5 }, dy = random.normals(count), dx0 = random.normals(count)
            let gamma = random.normals(c).map { $0 + 1 }, beta = random.normals(c)
            let dg0 = random.normals(c), db0 = random.normals(c)
            let mean0 = random.normals(c), var0 = random.normals(c).map { abs($0) + 0.5 }
            let (eps, momentum) = (1e-5, 0.1)
            // Reference: batch statistics (biased variance) normalise; running statistics move
            // toward the batch mean and the unbiased variance; inference uses the running ones.
            var mean = [Double](repeating: 0, count: c), variance = mean
            for r in 0..<rows { for ch in 0..<c { mean[ch] += Double(x[r * c + ch]) / Double(rows) } }
            for r in 0..<rows { for ch in 0..<c { let d = Double(x[r * c + ch]) - mean[ch]; variance[ch] += d * d / Double(rows) } }
            let invStd = variance.map { 1 / ($0 + eps).squareRoot() }
            var y = [Double](repeating: 0, count: count), yAbs = y
            var xhat = y, dbeta = db0.map(Double.init), dgamma = dg0.map(Double.init)
            var dbAbs = db0.map { Double(abs($0)) }, dgAbs = dg0.map { Double(abs($0)) }
            for r in 0..<rows {
                for ch in 0..<c {
                    let i = r * c + ch
                    xhat[i] = (Double(x[i]) - mean[ch]) * invStd[ch]
                    y[i] = xhat[i] * Double(gamma[ch]) + Double(beta[ch])
                    yAbs[i] = abs(xhat[i] * Double(gamma[ch])) + abs(Double(beta[ch])) + abs(Double(x[i]) * invStd[ch] * Double(gamma[ch]))
                    dbeta[ch] += Double(dy[i]); dbAbs[ch] += abs(Double(dy[i]))
                    dgamma[ch] += Double(dy[i]) * xhat[i]; dgAbs[ch] += abs(Double(dy[i]) * xhat[i])
                }
            }
            var dx = dx0.map(Double.init), dxAbs = dx0.map { Double(abs($0)) }
            for r in 0..<rows {
                for ch in 0..<c {
                    let i = r * c + ch
                    let meanDy = (dbeta[ch] - Double(db0[ch])) / Double(rows)
                    let meanDyXhat = (dgamma[ch] - Double(dg0[ch])) / Double(rows)
                    let scale = Double(gamma[ch]) * invStd[ch]
                    dx[i] += scale * (Double(dy[i]) - meanDy - xhat[i] * meanDyXhat)
                    dxAbs[i] += abs(scale) * (abs(Double(dy[i])) + 3 * (dbAbs[ch] + dgAbs[ch]) / Double(rows))
                }
            }
            let runMean = (0..<c).map { (1 - momentum) * Double(mean0[$0]) + momentum * mean[$0] }
            let runVar = (0..<c).map { (1 - momentum) * Double(var0[$0]) + momentum * variance[$0] * Double(rows) / Double(rows - 1) }
            var yEval = [Double](repeating: 0, count: count), yEvalAbs = yEval
            for r in 0..<rows {
                for ch in 0..<c {
                    let i = r * c + ch, inv = 1 / (runVar[ch] + eps).squareRoot()
                    yEval[i] = (Double(x[i]) - runMean[ch]) * inv * Double(gamma[ch]) + Double(beta[ch])
                    yEvalAbs[i] = (abs(Double(x[i])) + abs(runMean[ch])) * inv * abs(Double(gamma[ch])) + abs(Double(beta[ch]))
                }
            }
            let maxBatch = batch + index % 2, capacity = maxBatch * shape.count
            try twice(label, &failures, { threads in
                let t = KernelTensors()
                let xs = t.make(capacity, padded(x, to: capacity)), ys = t.make(capacity, padded([], to: capacity))
                let dys = t.make(capacity, padded(dy, to: capacity)), dxs = t.make(capacity, padded(dx0, to: capacity))
                let saved = t.make(capacity)
                let g = t.make(c, gamma), b = t.make(c, beta), dg = t.make(c, dg0), db = t.make(c, db0)
                let rm = t.make(c, mean0), rv = t.make(c, var0)
                let storage = NodeStorage(inputs: [xs.pointer], inputShapes: [shape], inputGrads: [dxs.pointer],
                                          output: ys.pointer, outputShape: shape, outputGrad: dys.pointer,
                                          parameters: [g.pointer, b.pointer], parameterGrads: [dg.pointer, db.pointer],
                                          buffers: [rm.pointer, rv.pointer], saved: saved.pointer,
                                          columnScratch: xs.pointer, columnScratchFloats: 0, maxBatch: maxBatch)
                let kernel = try BatchNormKernel(eps: Float(eps), momentum: Float(momentum), storage: storage)
                var values: [Float] = []
                withThreads(threads) {
                    kernel.forward(batch: batch, training: true)
                    values = (ys.first(count))
                    kernel.backward(batch: batch)
                    values += dxs.first(count) + dg.array + db.array + rm.array + rv.array
                    kernel.forward(batch: batch, training: false)
                    values += ys.first(count)
                }
                return Run(values: values, intact: t.intact)
            }, check: { r in
                var o = 0
                func next(_ n: Int) -> [Float] { defer { o += n }; return Array(r.values[o..<(o + n)]) }
                return mismatch(next(count), y, abs: yAbs, rel: 1e-5, "y")
                    ?? mismatch(next(count), dx, abs: dxAbs, rel: 1e-5, "dx")
                    ?? mismatch(next(c), dgamma, abs: dgAbs, rel: 1e-5, "dgamma")
                    ?? mismatch(next(c), dbeta, abs: dbAbs, rel: 1e-5, "dbeta")
                    ?? mismatch(next(c), runMean, abs: runMean.map { abs($0) + 1 }, rel: 1e-5, "running_mean")
                    ?? mismatch(next(c), runVar, abs: runVar.map { abs($0) + 1 }, rel: 1e-5, "running_var")
                    ?? mismatch(next(count), yEval, abs: yEvalAbs, rel: 1e-5, "y (inference)")
            })
        }
        report(failures)
    }

    // MARK: Merges

    func testConcatAndAddGrid() throws {
        var random = TestRandom(13)
        var failures: [String] = []
        for index in 0..<80 {
            let isAdd = index % 2 == 0
            let inputs = random.pick([1, 2, 3, 4])
            if isAdd && inputs < 2 { continue }
            let widths = (0..<inputs).map { _ in random.pick(Self.channels) }
            let (h, w) = (random.pick(Self.sizes), random.pick(Self.sizes))
            let batch = random.pick(Self.batches), pixels = batch * h * w
            let shapes = widths.map { EngineShape(height: h, width: w, channels: $0) }
            let op: EngineOp = isAdd ? .add : .concat
            let out = try op.outputShape(inputs: shapes, node: "merge")
            let oc = out.channels
            let label = "\(batch)x\(h)x\(w) \(op) of \(widths)"
            XCTAssertEqual(oc, isAdd ? widths.max()! : widths.reduce(0, +), label)
            let xs = widths.map { random.normals(pixels * $0) }
            let dy = random.normals(pixels * oc)
            let dx0 = widths.map { random.normals(pixels * $0) }
            // Reference: concat places input i at its channel offset; add sums the inputs, each
            // zero-padded to the widest.
            var y = [Double](repeating: 0, count: pixels * oc), yAbs = y
            var dx = dx0.map { $0.map(Double.init) }
            var offset = 0
            for (i, c) in widths.enumerated() {
                for q in 0..<pixels {
                    for ch in 0..<c {
                        let o = q * oc + (isAdd ? 0 : offset) + ch
                        y[o] += Double(xs[i][q * c + ch]); yAbs[o] += abs(Double(xs[i][q * c + ch]))
                        dx[i][q * c + ch] += Double(dy[o])
                    }
                }
                offset += c
            }
            let maxBatch = batch + index % 3 / 2
            twice(label, &failures, { threads in
                let t = KernelTensors()
                let cap = maxBatch * h * w
                let inputs = zip(widths, xs).map { t.make(cap * $0, padded($1, to: cap * $0)) }
                let grads = zip(widths, dx0).map { t.make(cap * $0, padded($1, to: cap * $0)) }
                let ys = t.make(cap * oc, padded([], to: cap * oc)), dys = t.make(cap * oc, padded(dy, to: cap * oc))
                let storage = NodeStorage(inputs: inputs.map(\.pointer), inputShapes: shapes, inputGrads: grads.map(\.pointer),
                                          output: ys.pointer, outputShape: out, outputGrad: dys.pointer,
                                          parameters: [], parameterGrads: [], buffers: [], saved: nil,
                                          columnScratch: ys.pointer, columnScratchFloats: 0, maxBatch: maxBatch)
                let kernel: EngineKernel = isAdd ? AddKernel(storage: storage) : ConcatKernel(storage: storage)
                withThreads(threads) {
                    kernel.forward(batch: batch, training: true)
                    kernel.backward(batch: batch)
                }
                return Run(values: (ys.first(pixels * oc)) + zip(grads, widths).flatMap { $0.first(pixels * $1) },
                           intact: t.intact)
            }, check: { r in
                if let m = mismatch(Array(r.values.prefix(pixels * oc)), y, abs: yAbs, rel: 1e-6, "y") { return m }
                var o = pixels * oc
                for (i, c) in widths.enumerated() {
                    if let m = mismatch(Array(r.values[o..<(o + pixels * c)]), dx[i], abs: dx[i].map { abs($0) + 1 }, rel: 1e-6, "dx\(i)") { return m }
                    o += pixels * c
                }
                return nil
            })
        }
        report(failures)
    }

    // MARK: Linear

    func testLinearGrid() throws {
        var random = TestRandom(14)
        var failures: [String] = []
        for index in 0..<60 {
            let shape = EngineShape(height: random.pick([1, 1, 2, 3, 5]), width: random.pick([1, 1, 2, 7]),
                                    channels: random.pick(Self.channels))
            let out = random.pick([1, 2, 10, 15, 16, 17, 47, 48, 49, 97])
            let batch = random.pick(Self.batches), bias = random.int(3) != 0
            let f = shape.count
            let label = "\(batch)x\(shape) linear→\(out)\(bias ? "+bias" : "")"
            let x = random.normals(batch * f), weight = random.normals(f * out), b = random.normals(out)
            let dy = random.normals(batch * out), dx0 = random.normals(batch * f)
            let dw0 = random.normals(f * out), db0 = random.normals(out)
            var y = [Double](repeating: 0, count: batch * out), yAbs = y
            var dx = dx0.map(Double.init), dxAbs = dx0.map { Double(abs($0)) }
            var dw = dw0.map(Double.init), dwAbs = dw0.map { Double(abs($0)) }
            var db = db0.map(Double.init), dbAbs = db0.map { Double(abs($0)) }
            for n in 0..<batch {
                for o in 0..<out {
                    if bias { y[n * out + o] = Double(b[o]); yAbs[n * out + o] = Double(abs(b[o])) }
                    db[o] += Double(dy[n * out + o]); dbAbs[o] += abs(Double(dy[n * out + o]))
                    for i in 0..<f {
                        let (xv, wv, g) = (Double(x[n * f + i]), Double(weight[i * out + o]), Double(dy[n * out + o]))
                        y[n * out + o] += xv * wv; yAbs[n * out + o] += abs(xv * wv)
                        dx[n * f + i] += g * wv; dxAbs[n * f + i] += abs(g * wv)
                        dw[i * out + o] += xv * g; dwAbs[i * out + o] += abs(xv * g)
                    }
                }
            }
            let maxBatch = batch + index % 2
            let outShape = EngineShape(height: 1, width: 1, channels: out)
            try twice(label, &failures, { threads in
                let t = KernelTensors()
                let xs = t.make(maxBatch * f, padded(x, to: maxBatch * f)), ys = t.make(maxBatch * out, padded([], to: maxBatch * out))
                let dys = t.make(maxBatch * out, padded(dy, to: maxBatch * out)), dxs = t.make(maxBatch * f, padded(dx0, to: maxBatch * f))
                let ws = t.make(f * out, weight), dws = t.make(f * out, dw0)
                let bs = t.make(out, b), dbs = t.make(out, db0)
                let storage = NodeStorage(inputs: [xs.pointer], inputShapes: [shape], inputGrads: [dxs.pointer],
                                          output: ys.pointer, outputShape: outShape, outputGrad: dys.pointer,
                                          parameters: [ws.pointer] + (bias ? [bs.pointer] : []),
                                          parameterGrads: [dws.pointer] + (bias ? [dbs.pointer] : []), buffers: [], saved: nil,
                                          columnScratch: xs.pointer, columnScratchFloats: 0, maxBatch: maxBatch)
                let kernel = try LinearKernel(storage: storage)
                withThreads(threads) {
                    kernel.forward(batch: batch, training: true)
                    kernel.backward(batch: batch)
                }
                return Run(values: (ys.first(batch * out)) + dxs.first(batch * f) + dws.array + dbs.array,
                           intact: t.intact)
            }, check: { r in
                var o = 0
                func next(_ n: Int) -> [Float] { defer { o += n }; return Array(r.values[o..<(o + n)]) }
                return mismatch(next(batch * out), y, abs: yAbs, rel: 1e-5, "y")
                    ?? mismatch(next(batch * f), dx, abs: dxAbs, rel: 1e-5, "dx")
                    ?? mismatch(next(f * out), dw, abs: dwAbs, rel: 1e-5, "dW")
                    ?? (bias ? mismatch(next(out), db, abs: dbAbs, rel: 1e-5, "db") : nil)
            })
        }
        report(failures)
    }

    // MARK: Elementwise and global pooling

    func testDropoutGlobalAvgPoolAndReLUGrid() throws {
        var random = TestRandom(15)
        var failures: [String] = []
        for index in 0..<90 {
            let shape = EngineShape(height: random.pick(Self.sizes), width: random.pick(Self.sizes), channels: random.pick(Self.channels))
            let batch = random.pick(Self.batches), maxBatch = batch + index % 2
            let kind = index % 3
            let count = batch * shape.count, capacity = maxBatch * shape.count
            let x = random.spaced(count), dx0 = random.normals(count)
            let outShape = kind == 1 ? EngineShape(height: 1, width: 1, channels: shape.channels) : shape
            let outCount = batch * outShape.count, outCapacity = maxBatch * outShape.count
            let dy = random.normals(outCount)
            let probability = random.pick([Float(0.1), 0.5, 0.9])
            let slope = random.pick([Float(0), 0.1, -0.2])
            let label = "\(batch)x\(shape) " + ["dropout(\(probability))", "gap", "leaky(\(slope))"][kind]
            twice(label, &failures, { threads in
                let t = KernelTensors()
                let xs = t.make(capacity, padded(x, to: capacity)), dxs = t.make(capacity, padded(dx0, to: capacity))
                let ys = t.make(outCapacity, padded([], to: outCapacity)), dys = t.make(outCapacity, padded(dy, to: outCapacity))
                let saved = kind == 0 ? t.make(capacity) : nil
                let storage = NodeStorage(inputs: [xs.pointer], inputShapes: [shape], inputGrads: [dxs.pointer],
                                          output: ys.pointer, outputShape: outShape, outputGrad: dys.pointer,
                                          parameters: [], parameterGrads: [], buffers: [], saved: saved?.pointer,
                                          columnScratch: xs.pointer, columnScratchFloats: 0, maxBatch: maxBatch)
                let state = UnsafeMutablePointer<UInt64>.allocate(capacity: 2)
                defer { state.deallocate() }
                state[0] = 77; state[1] = 3
                let kernel: EngineKernel
                switch kind {
                case 0: kernel = DropoutKernel(probability: probability, nodeIndex: 5, randomState: state, storage: storage)
                case 1: kernel = GlobalAvgPoolKernel(storage: storage)
                default: kernel = ReLUKernel(slope: slope, signFromOutput: slope > 0, storage: storage)
                }
                var values: [Float] = []
                withThreads(threads) {
                    kernel.forward(batch: batch, training: false)
                    values = (ys.first(outCount))
                    kernel.forward(batch: batch, training: true)
                    kernel.backward(batch: batch)
                }
                values += ys.first(outCount) + dxs.first(count)
                return Run(values: values, intact: t.intact)
            }, check: { r in
                let inference = Array(r.values[0..<outCount]), train = Array(r.values[outCount..<(2 * outCount)])
                let dx = Array(r.values[(2 * outCount)...])
                switch kind {
                case 0:
                    // Inference copies; training keeps each element with mask 1/(1−p) or drops it,
                    // and the gradient goes through the same mask.
                    if inference != x { return "dropout changed its input in inference" }
                    let keep = 1 / (1 - probability)
                    var kept = 0
                    for i in 0..<count {
                        let m: Float = train[i] == 0 ? 0 : keep
                        if m != 0 { kept += 1 }
                        if train[i] != x[i] * m { return "y[\(i)] = \(train[i]), not x·mask" }
                        if dx[i] != dx0[i] + dy[i] * m { return "dx[\(i)] = \(dx[i]), not dx0 + dy·mask" }
                    }
                    if count >= 2000 && abs(Double(kept) / Double(count) - Double(1 - probability)) > 0.05 {
                        return "kept \(kept) of \(count) with p = \(probability)"
                    }
                    return nil
                case 1:
                    let pixels = shape.height * shape.width, c = shape.channels
                    var y = [Double](repeating: 0, count: outCount), yAbs = y
                    var ref = dx0.map(Double.init)
                    for n in 0..<batch {
                        for q in 0..<pixels {
                            for ch in 0..<c {
                                y[n * c + ch] += Double(x[(n * pixels + q) * c + ch]) / Double(pixels)
                                yAbs[n * c + ch] += abs(Double(x[(n * pixels + q) * c + ch])) / Double(pixels)
                                ref[(n * pixels + q) * c + ch] += Double(dy[n * c + ch]) / Double(pixels)
                            }
                        }
                    }
                    return mismatch(inference, y, abs: yAbs, rel: 1e-5, "y (inference)") ?? mismatch(train, y, abs: yAbs, rel: 1e-5, "y")
                        ?? mismatch(dx, ref, abs: ref.map { abs($0) + 1 }, rel: 1e-6, "dx")
                default:
                    let y = x.map { Double($0 > 0 ? $0 : slope * $0) }
                    let ref = (0..<count).map { Double(dx0[$0]) + Double(x[$0] > 0 ? dy[$0] : slope * dy[$0]) }
                    return mismatch(inference, y, abs: y.map { abs($0) }, rel: 1e-6, "y (inference)")
                        ?? mismatch(train, y, abs: y.map { abs($0) }, rel: 1e-6, "y")
                        ?? mismatch(dx, ref, abs: ref.map { abs($0) + 1 }, rel: 1e-6, "dx")
                }
            })
        }
        report(failures)
    }

    // MARK: Softmax

    /// Softmax over channels at every pixel: forward, backward inside a network (dX += y ⊙
    /// (dY − Σ dY·y)), and as the loss node (cross-entropy from the logits, mean over batch and
    /// pixels; gradient (y − onehot)/(B·P)).
    func testSoftmaxGrid() throws {
        var random = TestRandom(16)
        var failures: [String] = []
        for index in 0..<60 {
            let shape = EngineShape(height: random.pick([1, 1, 2, 3, 7]), width: random.pick([1, 2, 5, 9]),
                                    channels: random.pick(Self.channels))
            let batch = random.pick(Self.batches), maxBatch = batch + index % 2
            let (c, pixels) = (shape.channels, shape.height * shape.width)
            let count = batch * shape.count, capacity = maxBatch * shape.count
            let x = random.normals(count).map { $0 * 4 }, dy = random.normals(count), dx0 = random.normals(count)
            let labels = (0..<batch).map { _ in Int32(random.int(c)) }
            let label = "\(batch)x\(shape) softmax"
            var y = [Double](repeating: 0, count: count), dx = dx0.map(Double.init), dxLoss = dx0.map(Double.init)
            var loss = 0.0
            for r in 0..<(batch * pixels) {
                let logits = x[(r * c)..<((r + 1) * c)].map(Double.init)
                let largest = logits.max()!
                let logSum = largest + log(logits.reduce(0) { $0 + exp($1 - largest) })
                let n = r / pixels, l = Int(labels[n])
                loss += (logSum - logits[l]) / Double(batch * pixels)
                var dot = 0.0
                for k in 0..<c { y[r * c + k] = exp(logits[k] - logSum); dot += Double(dy[r * c + k]) * y[r * c + k] }
                for k in 0..<c {
                    dx[r * c + k] += y[r * c + k] * (Double(dy[r * c + k]) - dot)
                    dxLoss[r * c + k] += (y[r * c + k] - (k == l ? 1 : 0)) / Double(batch * pixels)
                }
            }
            try twice(label, &failures, { threads in
                let t = KernelTensors()
                let xs = t.make(capacity, padded(x, to: capacity)), ys = t.make(capacity, padded([], to: capacity))
                let dys = t.make(capacity, padded(dy, to: capacity)), dxs = t.make(capacity, padded(dx0, to: capacity))
                let storage = NodeStorage(inputs: [xs.pointer], inputShapes: [shape], inputGrads: [dxs.pointer],
                                          output: ys.pointer, outputShape: shape, outputGrad: dys.pointer,
                                          parameters: [], parameterGrads: [], buffers: [], saved: nil,
                                          columnScratch: xs.pointer, columnScratchFloats: 0, maxBatch: maxBatch)
                let kernel = try SoftmaxKernel(storage: storage)
                var values: [Float] = []
                withThreads(threads) {
                    kernel.forward(batch: batch, training: true)
                    values = ys.first(count)
                    kernel.backward(batch: batch)
                    values += dxs.first(count)
                    dxs.pointer.update(from: dx0, count: count)
                    let (l, _) = labels.withUnsafeBufferPointer {
                        kernel.lossAndGradient(labels: $0.baseAddress!, batch: batch, accumulateGradient: true)
                    }
                    values += dxs.first(count) + [Float(l)]
                }
                return Run(values: values, intact: t.intact)
            }, check: { r in
                mismatch(Array(r.values[0..<count]), y, abs: y, rel: 1e-5, floor: 0.1, "y")
                    ?? mismatch(Array(r.values[count..<(2 * count)]), dx, abs: dx.map { abs($0) + 1 }, rel: 1e-5, "dx")
                    ?? mismatch(Array(r.values[(2 * count)..<(3 * count)]), dxLoss, abs: dxLoss.map { abs($0) + 1 }, rel: 1e-5, "dx (loss)")
                    ?? mismatch([r.values[3 * count]], [loss], abs: [abs(loss) + 1], rel: 1e-6, "loss")
            })
        }
        report(failures)
    }
}
