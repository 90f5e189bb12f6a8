import XCTest
@testable import DSLEngine

/// The general convolution (`EngineOp.convolution`: rectangular kernels and strides, four
/// paddings, dilation, groups) and its depthwise kernel against a plain Double reference on a
/// sampled grid of geometries: forward, dX, dW and dB, on guarded tensors (NaN past the batch,
/// gradients accumulated onto existing values), with 1 and 2 threads, which must agree bit for
/// bit; and finite-difference gradient checks through whole graphs.
final class GeneralConvTests: XCTestCase {
    struct Case: CustomStringConvertible {
        var g: ConvGeometry
        var h: Int, w: Int, ic: Int, batch: Int, maxBatch: Int
        var inputGradient = true
        var description: String { "\(batch)x\(h)x\(w)x\(ic) \(g)" }
        var inShape: EngineShape { EngineShape(height: h, width: w, channels: ic) }
    }

    struct Data { var x, w, b, dy, dx0, dw0, db0: [Float] }
    struct Ref { var y, yAbs, dx, dxAbs, dw, dwAbs, db, dbAbs: [Double] }
    struct Run { var y, dx, dw, db: [Float]; var algorithm: String; var intact: Bool }

    static func data(_ c: Case, out: EngineShape, seed: UInt64) -> Data {
        var r = TestRandom(seed)
        let wCount = c.g.kernelHeight * c.g.kernelWidth * (c.ic / c.g.groups) * c.g.outChannels
        return Data(x: r.normals(c.batch * c.inShape.count), w: r.normals(wCount), b: r.normals(c.g.outChannels),
                    dy: r.normals(c.batch * out.count), dx0: r.normals(c.batch * c.inShape.count),
                    dw0: r.normals(wCount), db0: r.normals(c.g.outChannels))
    }

    /// The definition, in Double, with the geometry spelled out (PyTorch's Conv2d semantics).
    static func reference(_ c: Case, _ d: Data, out: EngineShape) -> Ref {
        let g = c.g
        let (h, w, ic, oc) = (c.h, c.w, c.ic, g.outChannels)
        let (icg, ocg) = (ic / g.groups, oc / g.groups)
        var ref = Ref(y: [], yAbs: [], dx: d.dx0.map(Double.init), dxAbs: d.dx0.map { Double(abs($0)) },
                      dw: d.dw0.map(Double.init), dwAbs: d.dw0.map { Double(abs($0)) },
                      db: d.db0.map(Double.init), dbAbs: d.db0.map { Double(abs($0)) })
        ref.y = [Double](repeating: 0, count: c.batch * out.count)
        ref.yAbs = ref.y
        for n in 0..<c.batch {
            for oy in 0..<out.height {
                for ox in 0..<out.width {
                    for o in 0..<oc {
                        let group = o / ocg
                        let yi = ((n * out.height + oy) * out.width + ox) * oc + o
                        var sum = g.bias ? Double(d.b[o]) : 0, sumAbs = abs(sum)
                        let dy = Double(d.dy[yi])
                        ref.db[o] += dy; ref.dbAbs[o] += abs(dy)
                        for kh in 0..<g.kernelHeight {
                            let iy = oy * g.strideHeight - g.padTop + kh * g.dilationHeight
                            if iy < 0 || iy >= h { continue }
                            for kw in 0..<g.kernelWidth {
                                let ix = ox * g.strideWidth - g.padLeft + kw * g.dilationWidth
                                if ix < 0 || ix >= w { continue }
                                for i in 0..<icg {
                                    let xi = ((n * h + iy) * w + ix) * ic + group * icg + i
                                    let wi = ((kh * g.kernelWidth + kw) * icg + i) * oc + o
                                    let (xv, wv) = (Double(d.x[xi]), Double(d.w[wi]))
                                    sum += xv * wv; sumAbs += abs(xv * wv)
                                    ref.dx[xi] += dy * wv; ref.dxAbs[xi] += abs(dy * wv)
                                    ref.dw[wi] += dy * xv; ref.dwAbs[wi] += abs(dy * xv)
                                }
                            }
                        }
                        ref.y[yi] = sum; ref.yAbs[yi] = sumAbs
                    }
                }
            }
        }
        return ref
    }

    /// Runs the kernel the graph would choose on guarded tensors.
    static func run(_ c: Case, _ d: Data, out: EngineShape, threads: Int) throws -> Run {
        let t = KernelTensors()
        let inCount = c.maxBatch * c.inShape.count, outCount = c.maxBatch * out.count
        func padded(_ v: [Float], _ n: Int) -> [Float] { v + [Float](repeating: poison, count: n - v.count) }
        let x = t.make(inCount, padded(d.x, inCount))
        let y = t.make(outCount, [Float](repeating: poison, count: outCount))
        let dy = t.make(outCount, padded(d.dy, outCount))
        let dx = c.inputGradient ? t.make(inCount, padded(d.dx0, inCount)) : nil
        let w = t.make(d.w.count, d.w), dw = t.make(d.dw0.count, d.dw0)
        let b = c.g.bias ? t.make(d.b.count, d.b) : nil, db = c.g.bias ? t.make(d.db0.count, d.db0) : nil
        let plan = GroupedConvPlan(c.g, input: c.inShape, output: out, maxBatch: c.maxBatch)
        let columnFloats = plan.columnFloats(c.g, input: c.inShape, output: out)
        let column = t.make(columnFloats, [Float](repeating: poison, count: columnFloats))
        let storage = NodeStorage(
            inputs: [x.pointer], inputShapes: [c.inShape], inputGrads: [dx?.pointer], output: y.pointer,
            outputShape: out, outputGrad: dy.pointer, parameters: [w.pointer] + (b.map { [$0.pointer] } ?? []),
            parameterGrads: [dw.pointer] + (db.map { [$0.pointer] } ?? []), buffers: [], saved: nil,
            columnScratch: column.pointer, columnScratchFloats: columnFloats, maxBatch: c.maxBatch)
        let kernel: EngineKernel = c.g.isDepthwise(inChannels: c.ic) ? try DepthwiseConvKernel(c.g, storage: storage)
                                                                     : try GroupedConvKernel(c.g, storage: storage)
        withThreads(threads) {
            kernel.forward(batch: c.batch, training: true)
            kernel.backward(batch: c.batch)
        }
        return Run(y: y.first(c.batch * out.count), dx: dx?.first(c.batch * c.inShape.count) ?? [], dw: dw.array,
                   db: db?.array ?? [], algorithm: kernel.algorithm ?? "?", intact: t.intact)
    }

    /// Sampled geometries: groups 1, 2, C (depthwise, channel counts around the 16-lane vector),
    /// dilation 1–3, kernels 1×1 to 7×7 and rectangles (1×7, 7×1, 3×5), strides 1–3 per axis,
    /// asymmetric paddings, batches 1–3 (with and without room past the batch).
    static func cases() -> [Case] {
        var r = TestRandom(2024)
        var cases: [Case] = []
        let kernels = [(1, 1), (3, 3), (5, 5), (7, 7), (1, 7), (7, 1), (3, 5), (2, 2), (3, 1)]
        while cases.count < 220 {
            let (kh, kw) = r.pick(kernels)
            let depthwise = r.int(2) == 0
            let ic = depthwise ? r.pick([1, 3, 8, 16, 17, 32, 33, 48]) : r.pick([1, 2, 4, 6, 8, 12, 17])
            let groups = depthwise ? ic : r.pick([1, 2, ic].filter { ic % $0 == 0 })
            let oc = depthwise ? ic : groups * r.pick([1, 2, 3, 5])
            let g = ConvGeometry(kernelHeight: kh, kernelWidth: kw, strideHeight: r.pick([1, 1, 2, 3]),
                                 strideWidth: r.pick([1, 1, 2, 3]), padTop: r.int(4), padLeft: r.int(4),
                                 padBottom: r.int(3), padRight: r.int(3), dilationHeight: r.pick([1, 1, 2, 3]),
                                 dilationWidth: r.pick([1, 1, 2]), groups: groups, outChannels: oc, bias: r.int(3) != 0)
            let batch = r.pick([1, 2, 3])
            let c = Case(g: g, h: r.pick([1, 2, 5, 7, 9, 13]), w: r.pick([1, 3, 6, 8, 11]), ic: ic, batch: batch,
                         maxBatch: batch + r.int(2), inputGradient: r.int(5) != 0)
            if g.outputSize(height: c.h, width: c.w) == nil { continue }
            cases.append(c)
        }
        // Shapes of the networks: MobileNetV2's depthwise layers (small), Inception's 1×7 / 7×1,
        // ResNeXt's grouped 3×3, a dilated 3×3, a multiplier-2 depthwise (grouped path).
        cases.append(Case(g: ConvGeometry(kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2, padTop: 1,
                                          padLeft: 1, padBottom: 1, padRight: 1, groups: 32, outChannels: 32, bias: false),
                          h: 12, w: 12, ic: 32, batch: 2, maxBatch: 2))
        cases.append(Case(g: ConvGeometry(kernelHeight: 1, kernelWidth: 7, padLeft: 3, padRight: 3, outChannels: 6, bias: true),
                          h: 7, w: 7, ic: 5, batch: 2, maxBatch: 3))
        cases.append(Case(g: ConvGeometry(kernelHeight: 7, kernelWidth: 1, padTop: 3, padBottom: 3, outChannels: 6, bias: true),
                          h: 7, w: 7, ic: 5, batch: 2, maxBatch: 2))
        cases.append(Case(g: ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1,
                                          groups: 8, outChannels: 16, bias: false), h: 6, w: 6, ic: 16, batch: 3, maxBatch: 3))
        cases.append(Case(g: ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2,
                                          dilationHeight: 2, dilationWidth: 2, outChannels: 4, bias: true),
                          h: 9, w: 8, ic: 3, batch: 1, maxBatch: 1))
        cases.append(Case(g: ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1,
                                          groups: 5, outChannels: 10, bias: true), h: 5, w: 4, ic: 5, batch: 2, maxBatch: 2))
        // Depthwise 3×3 on ≥ 16 channels: the register fast paths (interior pixels), with
        // stride 1 (also backward-data) and 2, dilation, asymmetric and no padding.
        for (i, (ic, s, d, pads)) in [(16, 1, 1, (1, 1, 1, 1)), (17, 1, 1, (1, 1, 1, 1)), (32, 2, 1, (1, 1, 1, 1)),
                                      (48, 1, 2, (2, 2, 2, 2)), (33, 1, 1, (0, 2, 1, 0)), (16, 2, 1, (0, 1, 1, 0)),
                                      (16, 1, 1, (0, 0, 0, 0)), (32, 1, 3, (3, 1, 3, 1))].enumerated() {
            cases.append(Case(g: ConvGeometry(kernelHeight: 3, kernelWidth: 3, strideHeight: s, strideWidth: s,
                                              padTop: pads.0, padLeft: pads.1, padBottom: pads.2, padRight: pads.3,
                                              dilationHeight: d, dilationWidth: i % 2 == 0 ? d : 1, groups: ic,
                                              outChannels: ic, bias: i % 3 != 0),
                              h: 9 + i % 3, w: 10 + i % 4, ic: ic, batch: 1 + i % 3, maxBatch: 2 + i % 3))
        }
        // Depthwise 5×5 (EfficientNet), 1×7 and 7×1 on ≥ 16 channels: the interior path of any kernel.
        for (i, (kh, kw, ic, s)) in [(5, 5, 32, 1), (5, 5, 48, 2), (1, 7, 16, 1), (7, 1, 17, 1), (5, 3, 33, 1)].enumerated() {
            cases.append(Case(g: ConvGeometry(kernelHeight: kh, kernelWidth: kw, strideHeight: s, strideWidth: s,
                                              padTop: kh / 2, padLeft: kw / 2, padBottom: kh / 2 + i % 2, padRight: kw / 2,
                                              dilationHeight: 1 + i % 2, groups: ic, outChannels: ic, bias: i % 2 == 0),
                              h: 11 + i, w: 12, ic: ic, batch: 1 + i % 3, maxBatch: 3))
        }
        // 1×1 stride-1 unpadded, grouped: the input read in place.
        for (ic, groups, oc) in [(6, 2, 4), (8, 4, 12), (5, 5, 10), (4, 1, 3), (12, 3, 3)] {
            cases.append(Case(g: ConvGeometry(kernelHeight: 1, kernelWidth: 1, groups: groups, outChannels: oc, bias: ic % 2 == 0),
                              h: 3, w: 5, ic: ic, batch: 2, maxBatch: 3))
        }
        return cases
    }

    func testConvolutionGridAgainstDoubleReference() throws {
        var failures: [String] = []
        var algorithms: [String: Int] = [:]
        for (index, c) in Self.cases().enumerated() {
            let out = try EngineOp.convolution(c.g).outputShape(inputs: [c.inShape], node: "conv")
            let (oh, ow) = c.g.outputSize(height: c.h, width: c.w)!
            XCTAssertEqual(out, EngineShape(height: oh, width: ow, channels: c.g.outChannels))
            let d = Self.data(c, out: out, seed: UInt64(index) &+ 5)
            let ref = Self.reference(c, d, out: out)
            let two = try Self.run(c, d, out: out, threads: 2), one = try Self.run(c, d, out: out, threads: 1)
            algorithms[two.algorithm, default: 0] += 1
            let rel = 2e-5
            let problems = [
                mismatch(two.y, ref.y, abs: ref.yAbs, rel: rel, "y"),
                c.inputGradient ? mismatch(two.dx, ref.dx, abs: ref.dxAbs, rel: rel, "dx") : nil,
                mismatch(two.dw, ref.dw, abs: ref.dwAbs, rel: rel, "dW"),
                c.g.bias ? mismatch(two.db, ref.db, abs: ref.dbAbs, rel: rel, "db") : nil,
                two.intact && one.intact ? nil : "wrote outside its tensors",
                bitIdentical(one.y + one.dx + one.dw + one.db, two.y + two.dx + two.dw + two.db) ? nil : "1 and 2 threads differ",
            ].compactMap { $0 }
            if !problems.isEmpty { failures.append("\(c) [\(two.algorithm)]: " + problems.joined(separator: "; ")) }
        }
        XCTAssertTrue(failures.isEmpty, "\(failures.count) failures:\n" + failures.prefix(20).joined(separator: "\n"))
        // Every path ran.
        for name in ["depthwise", "im2col+gemm per group", "gemm per group"] {
            XCTAssertGreaterThan(algorithms[name] ?? 0, 3, "\(name) ran too rarely: \(algorithms)")
        }
    }

    /// The reference comparison notices a padding applied on the wrong side (so the grid can fail).
    func testGridNoticesSwappedPadding() throws {
        let c = Case(g: ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 2, padLeft: 0, padBottom: 0, padRight: 2,
                                     groups: 4, outChannels: 4, bias: false), h: 5, w: 5, ic: 4, batch: 1, maxBatch: 1)
        var swapped = c
        (swapped.g.padTop, swapped.g.padBottom, swapped.g.padLeft, swapped.g.padRight) = (0, 2, 2, 0)
        let out = try EngineOp.convolution(c.g).outputShape(inputs: [c.inShape], node: "conv")
        let d = Self.data(c, out: out, seed: 3)
        let run = try Self.run(swapped, d, out: out, threads: 1)
        let ref = Self.reference(c, d, out: out)
        XCTAssertNotNil(mismatch(run.y, ref.y, abs: ref.yAbs, rel: 2e-5, "y"))
        XCTAssertEqual(run.algorithm, "depthwise")
    }

    func testRefusesGeometriesThatDoNotFit() {
        let x = EngineShape(height: 5, width: 5, channels: 6)
        let bad: [ConvGeometry] = [
            ConvGeometry(kernelHeight: 3, kernelWidth: 3, groups: 4, outChannels: 8, bias: false),   // 4 ∤ 6
            ConvGeometry(kernelHeight: 3, kernelWidth: 3, groups: 3, outChannels: 8, bias: false),   // 3 ∤ 8
            ConvGeometry(kernelHeight: 3, kernelWidth: 3, dilationHeight: 3, outChannels: 8, bias: false),  // 7 > 5
            ConvGeometry(kernelHeight: 1, kernelWidth: 7, outChannels: 8, bias: false),
            ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: -1, outChannels: 8, bias: false),
        ]
        for g in bad { XCTAssertThrowsError(try EngineOp.convolution(g).outputShape(inputs: [x], node: "c"), "\(g)") }
    }

    // MARK: Finite differences

    func testConvolutionGradients() throws {
        let configs: [(String, (h: Int, w: Int, c: Int), ConvGeometry, Int)] = [
            ("groups 2 rect 3x5 asym", (6, 7, 4), ConvGeometry(kernelHeight: 3, kernelWidth: 5, strideHeight: 1, strideWidth: 2,
                                                              padTop: 2, padLeft: 1, padBottom: 0, padRight: 2, groups: 2,
                                                              outChannels: 6, bias: true), 2),
            ("1x7", (5, 9, 3), ConvGeometry(kernelHeight: 1, kernelWidth: 7, padLeft: 3, padRight: 3, outChannels: 4, bias: true), 3),
            ("7x1 stride 2", (9, 4, 3), ConvGeometry(kernelHeight: 7, kernelWidth: 1, strideHeight: 2, padTop: 3, padBottom: 3,
                                                     outChannels: 4, bias: false), 1),
            ("dilation 2", (7, 7, 2), ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 2, padLeft: 2, padBottom: 2, padRight: 2,
                                                   dilationHeight: 2, dilationWidth: 2, outChannels: 3, bias: true), 2),
            ("depthwise 3x3 s2", (7, 6, 5), ConvGeometry(kernelHeight: 3, kernelWidth: 3, strideHeight: 2, strideWidth: 2,
                                                         padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, groups: 5,
                                                         outChannels: 5, bias: true), 3),
            ("depthwise 5x5 dilation 2, 17 channels", (7, 7, 17), ConvGeometry(kernelHeight: 5, kernelWidth: 5, padTop: 4, padLeft: 3,
                                                                 padBottom: 4, padRight: 5, dilationHeight: 2,
                                                                 dilationWidth: 2, groups: 17, outChannels: 17, bias: false), 2),
            ("depthwise multiplier 2", (5, 5, 3), ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, padBottom: 1,
                                                                padRight: 1, groups: 3, outChannels: 6, bias: true), 2),
            ("grouped 1x1", (4, 3, 6), ConvGeometry(kernelHeight: 1, kernelWidth: 1, groups: 3, outChannels: 9, bias: true), 2),
            ("depthwise 1x1 stride 2", (5, 5, 4), ConvGeometry(kernelHeight: 1, kernelWidth: 1, strideHeight: 2, strideWidth: 2,
                                                              groups: 4, outChannels: 4, bias: true), 1),
        ]
        for (label, input, g, batch) in configs {
            let report = try GradientChecker(batch: batch).check(input: input) { graph in
                try graph.add(.convolution(g), inputs: [0], name: "conv1")
            }
            assertGradientsMatch(report, label)
        }
    }

    /// MobileNetV2's block (expand 1×1, depthwise 3×3, project 1×1) with batch norm and the
    /// smooth or once-kinked activations. (With ReLU6, as with ReLU, after batch norm a weight's
    /// step moves every value of its channel and some cross the kink at 0: the central
    /// differences then disagree with the gradient at a few entries though nothing is wrong;
    /// ReLU6 is checked on spaced inputs in ActivationTests.)
    func testInvertedResidualGradients() throws {
        for act in [EngineActivation.hardswish, .silu, .gelu, .sigmoid, .tanh, .hardsigmoid] {
        let report = try GradientChecker(batch: 3, step: 2e-3).check(input: (6, 6, 4)) { graph in
            let e = try graph.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 8, bias: false), inputs: [0], name: "expand")
            let eb = try graph.add(.batchNorm(), inputs: [e], name: "expand.bn")
            let ea = try graph.add(.activation(act), inputs: [eb], name: "expand.act")
            let d = try graph.add(.convolution(ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, padBottom: 1,
                                                            padRight: 1, groups: 8, outChannels: 8, bias: false)),
                                  inputs: [ea], name: "dw")
            let db = try graph.add(.batchNorm(), inputs: [d], name: "dw.bn")
            let da = try graph.add(.activation(act), inputs: [db], name: "dw.act")
            let p = try graph.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 4, bias: false), inputs: [da], name: "project")
            try graph.add(.add, inputs: [p, 0], name: "sum")
        }
        assertGradientsMatch(report, "inverted residual \(act)")
        }
    }
}
