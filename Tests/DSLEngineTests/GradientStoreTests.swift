import XCTest
@testable import DSLEngine

/// Gradient stores (`EngineKernel.storeInputGradient`): a gradient's first writer stores it
/// instead of adding to zeros. Every gradient must come out bit for bit as when the graph zeroes
/// every gradient and every kernel adds (`EngineGraph.storesGradients = false`), with the stored
/// gradients filled with NaN before their writer runs (`poisonsStoredGradients`), so that an
/// element a kernel leaves unwritten shows.
final class GradientStoreTests: XCTestCase {
    override func tearDown() {
        EngineGraph.storesGradients = true
        EngineGraph.poisonsStoredGradients = false
        ConvKernel.directOverride = nil
        ConvKernel.winogradOverride = nil
        EngineTuning.winogradMinTiles = EngineTuning.defaultWinogradMinTiles
        EngineGraph.fusesReLUBackwardInConvolution = true
    }

    typealias Builder = (EngineGraph) throws -> Void

    private static func conv(_ k: Int, _ s: Int, _ p: Int, _ c: Int, bias: Bool = true) -> EngineOp {
        .conv(kernel: k, stride: s, pad: p, outChannels: c, bias: bias)
    }

    private static func depthwise(_ k: Int, _ s: Int, _ c: Int) -> EngineOp {
        .convolution(ConvGeometry(kernelHeight: k, kernelWidth: k, strideHeight: s, strideWidth: s, padTop: k / 2,
                                  padLeft: k / 2, padBottom: k / 2, padRight: k / 2, groups: c, outChannels: c, bias: s == 1))
    }

    /// Convolutions of every path (3×3 stride 1 and 2, 1×1 stride 1 and 2, 5×5), ReLU and leaky
    /// ReLU, dropout, batch norm with ReLU6, adds (one reading a tensor another node also reads,
    /// one reading the same tensor twice), concat, max pooling.
    private static let convolutions: Builder = { g in
        var x = try g.add(.dropout(p: 0.2), inputs: [0], name: "drop")
        x = try g.add(conv(3, 1, 1, 24), inputs: [x], name: "c1")
        x = try g.add(.relu, inputs: [x], name: "c1.relu")
        x = try g.add(conv(3, 2, 1, 20), inputs: [x], name: "c2")
        let a = try g.add(.leakyRelu(slope: 0.1), inputs: [x], name: "c2.leaky")
        let b = try g.add(conv(1, 1, 0, 20, bias: false), inputs: [a], name: "c3")
        x = try g.add(.add, inputs: [a, b], name: "add1")
        x = try g.add(conv(1, 2, 0, 16), inputs: [x], name: "c4")
        x = try g.add(.batchNorm(), inputs: [x], name: "bn")
        x = try g.add(.activation(.relu6), inputs: [x], name: "bn.relu6")
        let p = try g.add(conv(5, 1, 2, 8), inputs: [x], name: "c5")
        let q = try g.add(conv(3, 1, 1, 8), inputs: [x], name: "c6")
        x = try g.add(.concat, inputs: [p, q], name: "cat")
        x = try g.add(.relu, inputs: [x], name: "cat.relu")
        x = try g.add(.maxPool(kernel: 2, stride: 2, pad: 0), inputs: [x], name: "pool")
        x = try g.add(.add, inputs: [x, x], name: "twice")
        x = try g.add(.dropout(p: 0.5), inputs: [x], name: "drop2")
        x = try g.add(.globalAvgPool, inputs: [x], name: "gap")
        x = try g.add(.linear(outFeatures: 10, bias: true), inputs: [x], name: "fc")
        try g.add(.softmax, inputs: [x], name: "softmax")
    }

    /// Overlapping max and average pooling, concat and adaptive pooling after the stem, then
    /// inverted residuals (1×1 expand, batch norm and activation, depthwise 3×3 at stride 1 and
    /// 2, 1×1 project) with every activation kind, a batch norm without scale, and an add of
    /// tensors with different channel counts (zero-padded).
    private static let mobile: Builder = { g in
        var x = try g.add(conv(3, 1, 1, 12, bias: false), inputs: [0], name: "stem")
        x = try g.add(.batchNorm(), inputs: [x], name: "stem.bn")
        let stem = try g.add(.activation(.hardswish), inputs: [x], name: "stem.act")
        // Overlapping max and average pooling side by side, then adaptive average pooling.
        let maxPooled = try g.add(.maxPool(kernel: 3, stride: 1, pad: 1), inputs: [stem], name: "maxpool")
        let averaged = try g.add(.avgPool(kernel: 3, stride: 1, pad: 1), inputs: [stem], name: "avgpool")
        x = try g.add(.concat, inputs: [maxPooled, averaged], name: "pools")
        var y = try g.add(.adaptiveAvgPool(height: 9, width: 9), inputs: [x], name: "adaptive")
        for (i, (act, stride)) in [(EngineActivation.relu6, 1), (.gelu, 1), (.silu, 2), (.sigmoid, 1), (.tanh, 1),
                                   (.hardsigmoid, 1)].enumerated() {
            let inC = g.shape(of: y).channels
            var t = try g.add(conv(1, 1, 0, 2 * inC + 1, bias: false), inputs: [y], name: "b\(i).expand")
            t = try g.add(.batchNorm(), inputs: [t], name: "b\(i).bn1")
            t = try g.add(.activation(act), inputs: [t], name: "b\(i).act1")
            t = try g.add(depthwise(3, stride, 2 * inC + 1), inputs: [t], name: "b\(i).dw")
            t = try g.add(.batchNorm(scale: i % 2 == 0), inputs: [t], name: "b\(i).bn2")
            t = try g.add(.activation(act), inputs: [t], name: "b\(i).act2")
            let outC = i == 3 ? inC + 5 : inC
            t = try g.add(conv(1, 1, 0, outC, bias: false), inputs: [t], name: "b\(i).project")
            t = try g.add(.batchNorm(), inputs: [t], name: "b\(i).bn3")
            y = stride == 1 ? try g.add(.add, inputs: [t, y], name: "b\(i).add") : t
        }
        y = try g.add(.globalAvgPool, inputs: [y], name: "gap")
        y = try g.add(.linear(outFeatures: 10, bias: true), inputs: [y], name: "fc")
        try g.add(.softmax, inputs: [y], name: "softmax")
    }

    /// Two training steps of a fresh graph; returns, per step, the parameter gradients and (with
    /// every tensor in its own storage) every node's gradient.
    func run(_ build: Builder, stores: Bool, reuse: Bool, batch: Int = 3,
             inputShape: (h: Int, w: Int, c: Int) = (11, 11, 5)) throws -> [[String: [UInt32]]] {
        EngineGraph.storesGradients = stores
        EngineGraph.poisonsStoredGradients = stores
        let g = EngineGraph(inputShape: inputShape, maxBatch: batch, seed: 21)
        g.computesInputGradient = true
        try build(g)
        try g.compile(training: true, reuseBuffers: reuse)
        var random = TestRandom(5)
        var steps: [[String: [UInt32]]] = []
        for step in 0..<2 {
            let x = random.normals(batch * g.inputShape.count)
            let labels = (0..<batch).map { Int32(($0 * 7 + step) % 10) }
            _ = g.forward(x, batch: batch, training: true)
            labels.withUnsafeBufferPointer { _ = g.backward(labels: $0.baseAddress!, batch: batch) }
            var result: [String: [UInt32]] = [:]
            for p in g.parameters { result[p.name] = UnsafeBufferPointer(start: p.grad, count: p.count).map(\.bitPattern) }
            for j in 0..<g.nodeCount where j == 0 || !reuse {
                guard let d = g.gradient(of: j) else { continue }
                result["d(\(g.name(of: j)))"] = UnsafeBufferPointer(start: d, count: batch * g.shape(of: j).count).map(\.bitPattern)
            }
            steps.append(result)
            // SGD, so that the second step sees other weights.
            for i in 0..<g.parameterCount { g.parameterValues[i] -= 0.05 * g.parameterGrads[i] }
        }
        return steps
    }

    private func assertSameBits(_ build: Builder, _ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
        for reuse in [false, true] {
            let added = try run(build, stores: false, reuse: reuse)
            let stored = try run(build, stores: true, reuse: reuse)
            XCTAssertEqual(Set(added[0].keys), Set(stored[0].keys), file: file, line: line)
            XCTAssertTrue(added[0].keys.contains("d(input)"), "\(label): no input gradient compared", file: file, line: line)
            for step in 0..<2 {
                for (name, bits) in added[step].sorted(by: { $0.key < $1.key }) {
                    let other = stored[step][name] ?? []
                    let firstDifference = bits.indices.first { $0 >= other.count || bits[$0] != other[$0] }
                    XCTAssertTrue(bits == other, "\(label), reuse \(reuse), step \(step): \(name) differs at element "
                                  + "\(firstDifference.map(String.init) ?? "count") (added \(firstDifference.map { Float(bitPattern: bits[$0]) } ?? 0), "
                                  + "stored \(firstDifference.map { Float(bitPattern: other[$0]) } ?? 0))", file: file, line: line)
                }
            }
        }
    }

    /// The engine's own choices, and each convolution path forced everywhere it applies.
    func testStoredGradientsHaveTheBitsOfAddedOnes() throws {
        let cases: [(String, Bool?, Bool?, Int)] = [
            ("by shape", nil, nil, EngineTuning.defaultWinogradMinTiles),
            ("Winograd", nil, true, 0),
            ("direct", true, false, 0),
            ("GEMM", false, false, 0),
        ]
        for (label, direct, winograd, minTiles) in cases {
            ConvKernel.directOverride = direct
            ConvKernel.winogradOverride = winograd
            EngineTuning.winogradMinTiles = minTiles
            try assertSameBits(Self.convolutions, "convolutions, \(label)")
            try assertSameBits(Self.mobile, "inverted residuals, \(label)")
        }
    }

    /// The compiled graphs store the gradients the test means to cover: a store by each kind
    /// of kernel, and the adds reading one tensor twice or beside another reader left to add.
    func testWhichGradientsAreStored() throws {
        EngineGraph.storesGradients = true
        // The ReLU's own store (the convolution after it would otherwise do its backward).
        EngineGraph.fusesReLUBackwardInConvolution = false
        ConvKernel.directOverride = true
        ConvKernel.winogradOverride = false
        let g = EngineGraph(inputShape: (11, 11, 5), maxBatch: 2, seed: 21)
        try Self.convolutions(g)
        try g.compile(training: true)
        let storedBy = Dictionary(uniqueKeysWithValues: (1..<g.nodeCount).map { k in
            (g.name(of: k), Set(g.storedGradients(by: k).map { g.name(of: $0) }))
        })
        XCTAssertEqual(storedBy["c1.relu"], ["c1"])
        XCTAssertEqual(storedBy["c2.leaky"], ["c2"])
        XCTAssertEqual(storedBy["add1"], ["c2.leaky", "c3"], "the add writes first; c3 adds to c2.leaky's gradient")
        XCTAssertEqual(storedBy["c3"], [])
        XCTAssertEqual(storedBy["bn"], ["c4"])
        XCTAssertEqual(g.algorithm(of: (1..<g.nodeCount).first { g.name(of: $0) == "c4" }!), "direct")
        XCTAssertEqual(storedBy["c4"], [], "1×1 at stride 2, direct: pixels no tap reaches, so it adds")
        XCTAssertEqual(storedBy["c6"], ["bn.relu6"], "c6 (direct 3×3) writes first, c5 adds")
        XCTAssertEqual(storedBy["twice"], [], "reads its input twice")
        XCTAssertEqual(storedBy["drop2"], ["twice"])
    }
}

extension GradientStoreTests {
    /// `EngineGraph.inputGradient` (saliency, deconvnet, guided backpropagation) from several
    /// nodes: the same bits with stores as without.
    func testVisualisationInputGradientsHaveTheBitsOfAddedOnes() throws {
        func inputGradients(stores: Bool) throws -> [[UInt32]] {
            EngineGraph.storesGradients = stores
            EngineGraph.poisonsStoredGradients = stores
            let g = EngineGraph(inputShape: (11, 11, 5), maxBatch: 2, seed: 8)
            g.computesInputGradient = true
            try GradientStoreTests.convolutions(g)
            try g.compile(training: true)
            var random = TestRandom(9)
            let x = random.normals(2 * g.inputShape.count)
            var result: [[UInt32]] = []
            for name in ["c1.relu", "add1", "bn.relu6", "cat.relu", "twice", "fc"] {
                let node = try XCTUnwrap((1..<g.nodeCount).first { g.name(of: $0) == name })
                for rule in ReLUBackwardRule.allCases {
                    _ = x.withUnsafeBufferPointer { g.forwardForInputGradient($0.baseAddress!, batch: 2, through: node) }
                    let seed = random.normals(2 * g.shape(of: node).count)
                    let d = seed.withUnsafeBufferPointer { g.inputGradient(seed: $0.baseAddress!, batch: 2, rule: rule) }
                    result.append(UnsafeBufferPointer(start: d, count: 2 * g.inputShape.count).map(\.bitPattern))
                }
            }
            return result
        }
        let added = try inputGradients(stores: false), stored = try inputGradients(stores: true)
        XCTAssertEqual(added.count, 18)
        for (i, (a, b)) in zip(added, stored).enumerated() {
            XCTAssertTrue(a.contains { $0 != 0 }, "case \(i): the input gradient is zero")
            XCTAssertEqual(a, b, "case \(i) (node \(i / 3), rule \(ReLUBackwardRule.allCases[i % 3]))")
        }
    }
}

extension GradientStoreTests {
    /// A seeded grid of convolution layers (odd, prime, narrow and wide channel counts, kernels
    /// 1-5, strides 1-3, 1×1 maps, 'valid' borders) between a depthwise layer and a batch norm
    /// with ReLU, each convolution path forced in turn, 1 and 2 threads: every gradient
    /// bit for bit as with stores off (stored gradients poisoned with NaN first).
    func testStoredGradientsOverAGridOfShapes() throws {
        var random = TestRandom(1129)
        func pick(_ values: [Int]) -> Int { values[Int(random.uniform() * Double(values.count))] }
        var checked = 0
        for shape in 0..<24 {
            let (size, ic, oc) = (pick([1, 2, 5, 7, 9]), pick([1, 3, 13, 16, 17, 48, 53]), pick([1, 5, 16, 31, 48, 61, 97]))
            let k = pick([1, 2, 3, 5]), s = pick([1, 1, 2, 3])
            let p = k == 1 ? 0 : pick([0, k / 2])
            guard (size + 2 * p - k) / s + 1 >= 1, size + 2 * p >= k else { continue }
            let build: Builder = { g in
                var x = try g.add(.convolution(ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, padBottom: 1,
                                                            padRight: 1, groups: ic, outChannels: ic, bias: true)),
                                  inputs: [0], name: "dw")
                x = try g.add(.conv(kernel: k, stride: s, pad: p, outChannels: oc, bias: shape % 2 == 0), inputs: [x], name: "conv")
                x = try g.add(.batchNorm(), inputs: [x], name: "bn")
                x = try g.add(.relu, inputs: [x], name: "relu")
                x = try g.add(.globalAvgPool, inputs: [x], name: "gap")
                x = try g.add(.linear(outFeatures: 10, bias: true), inputs: [x], name: "fc")
                try g.add(.softmax, inputs: [x], name: "softmax")
            }
            for (direct, winograd) in [(nil, nil), (true, false), (false, false), (nil, true)] as [(Bool?, Bool?)] {
                ConvKernel.directOverride = direct
                ConvKernel.winogradOverride = winograd
                EngineTuning.winogradMinTiles = winograd == true ? 0 : EngineTuning.defaultWinogradMinTiles
                let saved = engineThreadCount
                defer { engineThreadCount = saved }
                var results: [[[String: [UInt32]]]] = []
                for (stores, threads) in [(false, 1), (true, 1), (true, 2)] {
                    engineThreadCount = threads
                    results.append(try run(build, stores: stores, reuse: false, inputShape: (size, size, ic)))
                }
                let label = "\(size)×\(size)×\(ic) → conv \(k)/\(s)/\(p) → \(oc), direct \(String(describing: direct)), winograd \(String(describing: winograd))"
                XCTAssertTrue(results[0] == results[1], "\(label): stores change the gradients")
                XCTAssertTrue(results[1] == results[2], "\(label): 1 and 2 threads differ")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 60)
    }
}
