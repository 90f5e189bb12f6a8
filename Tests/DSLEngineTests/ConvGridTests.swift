import XCTest
@testable import DSLEngine

/// Every convolution algorithm against a plain Double reference on a deterministic sample of
/// the shapes the checker accepts: input channels, output channels, heights and widths,
/// kernels (also larger than the input, with padding), strides, paddings and batch sizes.
/// Each sampled shape runs under every algorithm that applies to it (the automatic choice,
/// im2col + GEMM, the direct kernels forced for all three passes, Winograd), forward (with and
/// without a fused ReLU) and backward (dX, dW and the bias gradient, all accumulated onto
/// existing values), on tensors between guard pages, with NaN in the samples past the batch
/// and in the scratch, and with 1 and 2 threads, which must agree bit for bit.
final class ConvGridTests: XCTestCase {
    private let savedBudget = ConvKernel.columnBudgetFloats

    override func tearDown() {
        ConvKernel.directOverride = nil
        ConvKernel.winogradOverride = nil
        ConvKernel.columnBudgetFloats = savedBudget
    }

    struct Case: CustomStringConvertible {
        var batch = 1, maxBatch = 1, h = 1, w = 1, ic = 1, oc = 1, k = 1, s = 1, p = 0
        var bias = true, inputGradient = true, relu = false
        /// Floats of shared scratch beyond what this layer needs (a larger layer elsewhere).
        var extraScratch = 0
        /// `ConvKernel.columnBudgetFloats` for this case (small: several im2col chunks).
        var budget: Int? = nil
        var oh: Int { (h + 2 * p - k) / s + 1 }
        var ow: Int { (w + 2 * p - k) / s + 1 }
        var valid: Bool { h + 2 * p >= k && w + 2 * p >= k }
        var macs: Int { batch * oh * ow * oc * k * k * ic }
        var description: String {
            "batch \(batch)/\(maxBatch) \(h)x\(w)x\(ic) conv \(k) \(s) \(oc) pad=\(p)\(bias ? "" : " nobias")"
                + "\(inputGradient ? "" : " (no dX)")\(relu ? " +relu" : "")"
                + "\(extraScratch > 0 ? " scratch+\(extraScratch)" : "")\(budget.map { " budget \($0)" } ?? "")"
        }
    }

    static let inputChannels = [1, 2, 3, 5, 7, 11, 13, 16, 17, 31, 47, 48, 49, 64, 97]
    static let outputChannels = [1, 2, 15, 16, 17, 47, 48, 49, 50, 63, 96, 97, 144]
    static let sizes = [1, 2, 3, 5, 7, 8, 9, 11, 13, 17]
    static let kernels = [1, 2, 3, 4, 5, 7]
    static let strides = [1, 2, 3, 5]
    static let batches = [1, 2, 3]

    /// A random valid case with `fix` applied (the fixed dimension is never redrawn).
    static func sample(_ random: inout TestRandom, maxMACs: Int = 600_000, _ fix: (inout Case) -> Void = { _ in }) -> Case {
        for _ in 0..<10_000 {
            var c = Case()
            c.batch = random.pick(batches)
            c.h = random.pick(sizes)
            c.w = random.int(3) == 0 ? c.h : random.pick(sizes)
            c.ic = random.pick(inputChannels)
            c.oc = random.pick(outputChannels)
            c.k = random.pick(kernels)
            c.s = random.int(3) == 0 ? 1 : random.pick(strides)
            c.bias = random.int(4) != 0
            c.inputGradient = random.int(5) != 0
            c.relu = random.int(4) == 0
            c.extraScratch = random.int(4) == 0 ? 1 << 16 : 0
            c.budget = random.int(8) == 0 ? 1 : nil
            fix(&c)
            let pads = [0, 1, 2, (c.k - 1) / 2, c.k / 2, c.k - 1, c.k, c.k + 1]
            c.p = random.pick(pads)
            fix(&c)
            c.maxBatch = c.batch + (random.int(3) == 0 ? 1 : 0)
            if c.valid && c.macs <= maxMACs { return c }
        }
        fatalError("no valid case")
    }

    /// The sampled grid: for every value of every dimension three cases that take it, 60
    /// unconstrained cases, and the shapes of issue #11 and of the specs' first layers.
    static func cases() -> [Case] {
        var random = TestRandom(2026)
        var cases: [Case] = []
        for _ in 0..<4 {
            for v in inputChannels { cases.append(sample(&random) { $0.ic = v }) }
            for v in outputChannels { cases.append(sample(&random) { $0.oc = v }) }
            for v in sizes { cases.append(sample(&random) { $0.h = v }) }
            for v in sizes { cases.append(sample(&random) { $0.w = v }) }
            for v in kernels { cases.append(sample(&random) { $0.k = v }) }
            for v in strides { cases.append(sample(&random) { $0.s = v }) }
            for v in batches { cases.append(sample(&random) { $0.batch = v }) }
            // Kernels larger than the input (with enough padding).
            cases.append(sample(&random) { $0.h = 2; $0.w = 3; $0.k = 5 })
            cases.append(sample(&random) { $0.h = 1; $0.w = 1; $0.k = 7 })
            // 3×3 stride 1 (Winograd's shapes) and few input channels with many outputs
            // (the direct kernel's streaming first-layer path and small-dW partial sums).
            cases.append(sample(&random) { $0.k = 3; $0.s = 1; $0.p = min($0.p, 2) })
            let (few, many) = (random.pick([1, 2, 3, 5, 7]), random.pick([49, 50, 63, 96, 97, 144]))
            cases.append(sample(&random) { $0.ic = few; $0.oc = many })
        }
        for _ in 0..<100 { cases.append(sample(&random)) }
        // Winograd's shapes (3×3, stride 1, padding ≤ 2) with room for its weight-gradient
        // blocks in the shared scratch (as when a larger layer sizes it).
        for _ in 0..<60 {
            let pad = random.int(3)
            cases.append(sample(&random, maxMACs: 1_500_000) { $0.k = 3; $0.s = 1; $0.p = pad; $0.extraScratch = 1 << 18; $0.budget = nil })
        }
        // Issue #11: `input 8x8x3` / `conv 3 1 50` crashed in the streaming stores.
        cases.append(Case(batch: 2, maxBatch: 2, h: 8, w: 8, ic: 3, oc: 50, k: 3, s: 1, p: 1))
        cases.append(Case(batch: 3, maxBatch: 3, h: 9, w: 7, ic: 5, oc: 63, k: 3, s: 2, p: 1, relu: true))
        cases.append(Case(batch: 3, maxBatch: 4, h: 8, w: 8, ic: 3, oc: 96, k: 3, s: 1, p: 1, inputGradient: false))
        cases.append(Case(batch: 2, maxBatch: 2, h: 8, w: 8, ic: 3, oc: 144, k: 3, s: 1, p: 1, inputGradient: false))
        // Larger ones, so that 1 and 2 threads really split the work.
        cases.append(Case(batch: 3, maxBatch: 3, h: 17, w: 13, ic: 17, oc: 50, k: 3, s: 1, p: 1, relu: true))
        cases.append(Case(batch: 2, maxBatch: 3, h: 16, w: 16, ic: 48, oc: 97, k: 3, s: 2, p: 1))
        cases.append(Case(batch: 2, maxBatch: 2, h: 13, w: 11, ic: 64, oc: 48, k: 5, s: 1, p: 2))
        cases.append(Case(batch: 3, maxBatch: 3, h: 16, w: 16, ic: 31, oc: 16, k: 1, s: 1, p: 0))
        return cases
    }

    struct Data {
        var x, weight, bias, dy, dx0, dw0, db0: [Float]
    }

    struct Reference {
        var y, dx, dw, db: [Double]
        var yAbs, dxAbs, dwAbs, dbAbs: [Double]
    }

    static func data(_ c: Case, seed: UInt64) -> Data {
        var r = TestRandom(seed)
        let scale = Float(1 / Double(c.k * c.k * c.ic).squareRoot())
        return Data(x: r.normals(c.batch * c.h * c.w * c.ic), weight: r.normals(c.k * c.k * c.ic * c.oc).map { $0 * scale },
                    bias: r.normals(c.oc), dy: r.normals(c.batch * c.oh * c.ow * c.oc),
                    dx0: r.normals(c.batch * c.h * c.w * c.ic), dw0: r.normals(c.k * c.k * c.ic * c.oc), db0: r.normals(c.oc))
    }

    /// The definition: y[n,oy,ox,o] = b[o] + Σ x[n, oy·s−p+kh, ox·s−p+kw, i]·W[kh,kw,i,o], and
    /// its gradients accumulated onto dx0, dw0, db0.
    static func reference(_ c: Case, _ d: Data) -> Reference {
        let (oh, ow) = (c.oh, c.ow)
        var y = [Double](repeating: 0, count: c.batch * oh * ow * c.oc), yAbs = y
        var dx = d.dx0.map(Double.init), dxAbs = d.dx0.map { Double(abs($0)) }
        var dw = d.dw0.map(Double.init), dwAbs = d.dw0.map { Double(abs($0)) }
        var db = d.db0.map(Double.init), dbAbs = d.db0.map { Double(abs($0)) }
        for n in 0..<c.batch {
            for oy in 0..<oh {
                for ox in 0..<ow {
                    let out = ((n * oh + oy) * ow + ox) * c.oc
                    for o in 0..<c.oc {
                        if c.bias { y[out + o] = Double(d.bias[o]); yAbs[out + o] = Double(abs(d.bias[o])) }
                        db[o] += Double(d.dy[out + o]); dbAbs[o] += Double(abs(d.dy[out + o]))
                    }
                    for kh in 0..<c.k {
                        let iy = oy * c.s - c.p + kh
                        if iy < 0 || iy >= c.h { continue }
                        for kw in 0..<c.k {
                            let ix = ox * c.s - c.p + kw
                            if ix < 0 || ix >= c.w { continue }
                            let inp = ((n * c.h + iy) * c.w + ix) * c.ic
                            for i in 0..<c.ic {
                                let xv = Double(d.x[inp + i])
                                let wrow = ((kh * c.k + kw) * c.ic + i) * c.oc
                                var g = 0.0, gAbs = 0.0
                                for o in 0..<c.oc {
                                    let wv = Double(d.weight[wrow + o]), dyv = Double(d.dy[out + o])
                                    y[out + o] += xv * wv; yAbs[out + o] += abs(xv * wv)
                                    g += dyv * wv; gAbs += abs(dyv * wv)
                                    dw[wrow + o] += xv * dyv; dwAbs[wrow + o] += abs(xv * dyv)
                                }
                                dx[inp + i] += g; dxAbs[inp + i] += gAbs
                            }
                        }
                    }
                }
            }
        }
        if c.relu { y = y.map { max($0, 0) } }
        return Reference(y: y, dx: dx, dw: dw, db: db, yAbs: yAbs, dxAbs: dxAbs, dwAbs: dwAbs, dbAbs: dbAbs)
    }

    enum Mode: String, CaseIterable { case automatic, im2col, direct, winograd }

    struct Run {
        var y, dx, dw, db: [Float]
        var algorithm: String
        var paths: Set<String>
        var intact: Bool
        var all: [Float] { y + dx + dw + db }
    }

    /// One convolution kernel on guarded tensors: forward, then backward from `d.dy`.
    static func run(_ c: Case, _ d: Data, mode: Mode, threads: Int) throws -> Run {
        switch mode {
        case .automatic: ConvKernel.directOverride = nil; ConvKernel.winogradOverride = nil
        case .im2col: ConvKernel.directOverride = false; ConvKernel.winogradOverride = false
        case .direct: ConvKernel.directOverride = true; ConvKernel.winogradOverride = false
        case .winograd: ConvKernel.directOverride = nil; ConvKernel.winogradOverride = true
        }
        let saved = ConvKernel.columnBudgetFloats
        if let budget = c.budget { ConvKernel.columnBudgetFloats = budget }
        defer {
            ConvKernel.directOverride = nil
            ConvKernel.winogradOverride = nil
            ConvKernel.columnBudgetFloats = saved
        }
        let inShape = EngineShape(height: c.h, width: c.w, channels: c.ic)
        let outShape = EngineShape(height: c.oh, width: c.ow, channels: c.oc)
        let spare = { (per: Int) in [Float](repeating: poison, count: (c.maxBatch - c.batch) * per) }
        let t = KernelTensors()
        let x = t.make(c.maxBatch * inShape.count, d.x + spare(inShape.count))
        let y = t.make(c.maxBatch * outShape.count, [Float](repeating: poison, count: c.maxBatch * outShape.count))
        let dy = t.make(c.maxBatch * outShape.count, d.dy + spare(outShape.count))
        let dx = c.inputGradient ? t.make(c.maxBatch * inShape.count, d.dx0 + spare(inShape.count)) : nil
        let w = t.make(d.weight.count, d.weight), dw = t.make(d.dw0.count, d.dw0)
        let b = c.bias ? t.make(c.oc, d.bias) : nil, db = c.bias ? t.make(c.oc, d.db0) : nil
        let pointwise = c.k == 1 && c.s == 1 && c.p == 0
        let needed = pointwise ? 0 : ConvKernel.columnFloatsPerSample(kernel: c.k, input: inShape, output: outShape)
            * ConvKernel.samplesPerChunk(kernel: c.k, input: inShape, output: outShape, maxBatch: c.maxBatch)
        let columnFloats = needed + c.extraScratch
        let column = t.make(max(1, columnFloats), [Float](repeating: poison, count: max(1, columnFloats)))
        let storage = NodeStorage(
            inputs: [x.pointer], inputShapes: [inShape], inputGrads: [dx?.pointer], output: y.pointer,
            outputShape: outShape, outputGrad: dy.pointer, parameters: [w.pointer] + (b.map { [$0.pointer] } ?? []),
            parameterGrads: [dw.pointer] + (db.map { [$0.pointer] } ?? []), buffers: [], saved: nil,
            columnScratch: column.pointer, columnScratchFloats: columnFloats, maxBatch: c.maxBatch)
        let kernel = try ConvKernel(kernel: c.k, stride: c.s, pad: c.p, storage: storage)
        kernel.fusedReLU = c.relu
        withThreads(threads) {
            kernel.forward(batch: c.batch, training: true)
            kernel.backward(batch: c.batch)
        }
        var paths: Set<String> = [kernel.algorithm ?? "?"]
        if kernel.direct {
            let blocks = (c.oc + directNR - 1) / directNR
            if blocks > 1 && blocks * c.k * c.k * c.ic * directNR <= smallPackedFloats { paths.insert("direct streaming forward") }
            if kernel.directWeights && usesWeightPartials(kernel: c.k, c: c.ic, oc: c.oc) {
                paths.insert(c.oc % (2 * directNR) == 0 ? "direct dW partial sums (96 wide)" : "direct dW partial sums")
            }
            if kernel.directWeights && !usesWeightPartials(kernel: c.k, c: c.ic, oc: c.oc) { paths.insert("direct dW tiles") }
            if kernel.directData && c.inputGradient { paths.insert("direct dX") }
        }
        return Run(y: Array(y.array.prefix(c.batch * outShape.count)),
                   dx: dx.map { Array($0.array.prefix(c.batch * inShape.count)) } ?? [],
                   dw: dw.array, db: db?.array ?? [], algorithm: kernel.algorithm ?? "?", paths: paths, intact: t.intact)
    }

    func testEveryAlgorithmOnTheShapeGrid() throws {
        let cases = ConvGridTests.cases()
        var covered: [String: Int] = [:]
        var failures: [String] = []
        for (index, c) in cases.enumerated() {
            let d = ConvGridTests.data(c, seed: UInt64(index) &+ 17)
            let ref = ConvGridTests.reference(c, d)
            let applies = WinogradShape.applies(kernel: c.k, stride: c.s, pad: c.p)
            let pointwise = c.k == 1 && c.s == 1 && c.p == 0
            for mode in Mode.allCases {
                if mode == .winograd && !applies { continue }
                if mode == .direct && pointwise { continue }
                let two = try ConvGridTests.run(c, d, mode: mode, threads: 2)
                let one = try ConvGridTests.run(c, d, mode: mode, threads: 1)
                for p in two.paths { covered[p, default: 0] += 1 }
                let label = "\(c) [\(mode.rawValue): \(two.algorithm)]"
                let rel = two.algorithm == "winograd" ? 2e-4 : 2e-5
                let problems = [
                    mismatch(two.y, ref.y, abs: ref.yAbs, rel: rel, "y"),
                    c.inputGradient ? mismatch(two.dx, ref.dx, abs: ref.dxAbs, rel: rel, "dx") : nil,
                    mismatch(two.dw, ref.dw, abs: ref.dwAbs, rel: rel, "dW"),
                    c.bias ? mismatch(two.db, ref.db, abs: ref.dbAbs, rel: rel, "db") : nil,
                    two.intact && one.intact ? nil : "wrote outside its tensors",
                    bitIdentical(one.all, two.all) ? nil : "1 and 2 threads differ",
                ].compactMap { $0 }
                if !problems.isEmpty { failures.append("\(label): " + problems.joined(separator: "; ")) }
            }
        }
        XCTAssertTrue(failures.isEmpty, "\(failures.count) failures:\n" + failures.prefix(30).joined(separator: "\n"))
        // The sample reaches every algorithm and every special path of the direct kernels.
        for path in ["winograd", "gemm", "im2col+gemm", "direct", "direct streaming forward", "direct dW partial sums",
                     "direct dW partial sums (96 wide)", "direct dW tiles", "direct dX"] {
            XCTAssertGreaterThan(covered[path, default: 0], 0, "no case ran \(path): \(covered)")
        }
        if ProcessInfo.processInfo.environment["DSL_GRID_VERBOSE"] != nil {
            print("\(cases.count) cases; paths: \(covered.sorted { $0.key < $1.key })")
        }
    }
}
