import XCTest
@testable import DSLEngine

/// Batch norm folded into the convolution before it in graphs compiled for inference only
/// (ConvKernel.foldedNorm): outputs equal the unfolded graph's within rounding, on every
/// convolution algorithm (Winograd, direct, 1×1 GEMM, im2col + GEMM), with and without a bias,
/// a scale and the activations a batch norm fuses; the folded weights are computed again after
/// the running statistics or weights may have been written, and only then; what cannot be
/// folded is not.
final class BatchNormFoldTests: WinogradOnSmallMapsTestCase {

    struct Case {
        var size: Int, ic: Int, kernel: Int, stride: Int, pad: Int, oc: Int, bias: Bool
        var scale = true
        var act: EngineOp? = nil
        var direct: Bool? = nil
    }

    static let cases: [Case] = [
        Case(size: 9, ic: 16, kernel: 3, stride: 1, pad: 1, oc: 32, bias: false, act: .relu),          // Winograd
        Case(size: 8, ic: 17, kernel: 3, stride: 1, pad: 1, oc: 19, bias: true, scale: false),         // Winograd, ragged
        Case(size: 7, ic: 5, kernel: 3, stride: 2, pad: 1, oc: 7, bias: true, act: .activation(.relu6)), // direct
        Case(size: 6, ic: 24, kernel: 1, stride: 1, pad: 0, oc: 50, bias: false, act: .activation(.sigmoid)), // 1×1 GEMM
        Case(size: 6, ic: 3, kernel: 5, stride: 1, pad: 2, oc: 13, bias: true, act: .relu, direct: false), // im2col + GEMM
        Case(size: 5, ic: 2, kernel: 2, stride: 2, pad: 0, oc: 3, bias: false, scale: false, act: .activation(.tanh)),
    ]

    /// input → conv → bn [→ act]; weights, γ, β and the running statistics drawn from `seed`.
    func makeGraph(_ c: Case, batch: Int, fold: Bool, seed: UInt64) throws -> EngineGraph {
        let saved = (EngineGraph.foldsBatchNorm, ConvKernel.directOverride)
        EngineGraph.foldsBatchNorm = fold
        ConvKernel.directOverride = c.direct
        defer { (EngineGraph.foldsBatchNorm, ConvKernel.directOverride) = saved }
        let g = EngineGraph(inputShape: (c.size, c.size, c.ic), maxBatch: batch, seed: 1)
        var x = try g.add(.conv(kernel: c.kernel, stride: c.stride, pad: c.pad, outChannels: c.oc, bias: c.bias),
                          inputs: [0], name: "conv")
        x = try g.add(.batchNorm(eps: 1e-3, momentum: 0.1, scale: c.scale), inputs: [x], name: "bn")
        if let act = c.act { x = try g.add(act, inputs: [x], name: "act") }
        let planned = g.plannedBytes(training: false)
        try g.compile(training: false)
        // The plan counts the folded weights' block, as compile allocates it.
        XCTAssertEqual(planned, g.memoryPlan.totalBytes, "\(c)")
        fillParametersAndStatistics(g, seed: seed)
        return g
    }

    func input(_ c: Case, batch: Int) -> [Float] {
        var rng = TestRandom(99)
        return (0..<batch * c.size * c.size * c.ic).map { _ in Float(4 * rng.uniform() - 2) }
    }

    func assertClose(_ a: [Float], _ b: [Float], _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, label, file: file, line: line)
        // Winograd's rounding is a few 1e-6 of the largest output in each graph (WinogradTests
        // allow 1e-4), and the two graphs round different products.
        let largest = b.map(abs).max() ?? 0
        for i in a.indices where abs(a[i] - b[i]) > 1e-4 * max(1, largest) {
            XCTFail("\(label): element \(i): folded \(a[i]), unfolded \(b[i])", file: file, line: line)
            return
        }
    }

    /// Compiles `c` folded and unfolded, checks that exactly the batch norm folds and both
    /// graphs run the same algorithm, and compares their outputs (1 and 2 threads identical);
    /// returns the convolution's algorithm.
    @discardableResult
    func checkFolded(_ c: Case, batch: Int, seed: UInt64, _ label: String,
                     file: StaticString = #filePath, line: UInt = #line) throws -> String? {
        let x = input(c, batch: batch)
        let folded = try makeGraph(c, batch: batch, fold: true, seed: seed)
        let plain = try makeGraph(c, batch: batch, fold: false, seed: seed)
        XCTAssertEqual(folded.foldedBatchNorms, [2], label, file: file, line: line)
        XCTAssertEqual(plain.foldedBatchNorms, [], label, file: file, line: line)
        XCTAssertEqual(folded.algorithm(of: 1), plain.algorithm(of: 1), label, file: file, line: line)
        let expected = plain.forward(x, batch: batch, training: false)
        let one = withThreads(1) { folded.forward(x, batch: batch, training: false) }
        let two = withThreads(2) { folded.forward(x, batch: batch, training: false) }
        assertClose(one, expected, "\(label) (\(folded.algorithm(of: 1) ?? "?"))", file: file, line: line)
        XCTAssertEqual(one, two, "\(label): 1 and 2 threads", file: file, line: line)
        return folded.algorithm(of: 1)
    }

    func testFoldedEqualsUnfoldedOnEveryAlgorithm() throws {
        var algorithms: [String] = []
        for (n, c) in Self.cases.enumerated() {
            algorithms.append(try checkFolded(c, batch: 3, seed: UInt64(n), "case \(n)") ?? "")
        }
        XCTAssertEqual(algorithms.map { $0.hasPrefix("direct") ? "direct" : $0 },
                       ["winograd", "winograd", "direct", "gemm", "im2col+gemm", "direct"])
    }

    /// A seeded grid: odd, prime, narrow and wide channel counts, 1×1 maps, kernels 1–5,
    /// strides 1–3, every padding that fits, batches 1–3, each algorithm forced or chosen.
    func testFoldedEqualsUnfoldedOnAShapeGrid() throws {
        var r = TestRandom(2026)
        let acts: [EngineOp?] = [nil, .relu, .activation(.relu6), .activation(.sigmoid), .activation(.tanh)]
        let directs: [Bool?] = [nil, false, true]
        for n in 0..<48 {
            let kernel = [1, 2, 3, 3, 5][r.int(5)], stride = 1 + r.int(3)
            let pad = r.int(kernel / 2 + 1)
            let size = max(kernel - 2 * pad, 1) + r.int(8)
            let c = Case(size: size, ic: 1 + r.int(40), kernel: kernel, stride: stride, pad: pad,
                         oc: [1, 7, 16, 17, 31, 32, 33, 48, 53, 64, 97][r.int(11)], bias: r.int(2) == 0,
                         scale: r.int(2) == 0, act: acts[r.int(acts.count)], direct: directs[r.int(3)])
            let batch = 1 + r.int(3)
            try checkFolded(c, batch: batch, seed: UInt64(100 + n), "\(c) batch \(batch)")
        }
    }

    /// Statistics, γ, β and weights changed between calls are used by the next call; calls
    /// between which nobody was handed pointers to write them do not fold again.
    func testChangedStatisticsAndWeightsAreRefolded() throws {
        let c = Self.cases[0], batch = 2, x = input(c, batch: batch)
        let folded = try makeGraph(c, batch: batch, fold: true, seed: 7)
        let plain = try makeGraph(c, batch: batch, fold: false, seed: 7)
        let conv = try XCTUnwrap(folded.kernels.compactMap { $0 as? ConvKernel }.first)
        _ = folded.forward(x, batch: batch, training: false)
        XCTAssertEqual(conv.foldCount, 1)
        for g in [folded, plain] {
            for b in g.buffers { for i in 0..<b.count { b.value[i] = b.name.hasSuffix("running_var") ? 0.5 + Float(i % 3) : 0.1 * Float(i % 5) } }
        }
        assertClose(folded.forward(x, batch: batch, training: false), plain.forward(x, batch: batch, training: false), "after new statistics")
        XCTAssertEqual(conv.foldCount, 2)
        for g in [folded, plain] {
            for i in 0..<g.parameterCount { g.parameterValues[i] *= -1.5 }
        }
        assertClose(folded.forward(x, batch: batch, training: false), plain.forward(x, batch: batch, training: false), "after new weights")
        assertClose(folded.forward(x, batch: batch, training: false), plain.forward(x, batch: batch, training: false), "again")
        XCTAssertEqual(conv.foldCount, 3, "an unchanged generation does not fold again")
    }

    /// A convolution whose output something else also reads keeps its batch norm as a pass; a
    /// training graph never folds.
    func testUnfoldableGraphs() throws {
        let g = EngineGraph(inputShape: (6, 6, 4), maxBatch: 2, seed: 1)
        let conv = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: false), inputs: [0], name: "conv")
        let bn = try g.add(.batchNorm(), inputs: [conv], name: "bn")
        try g.add(.add, inputs: [bn, conv], name: "sum")
        try g.compile(training: false)
        XCTAssertEqual(g.foldedBatchNorms, [])

        let t = try makeGraphForTraining()
        XCTAssertEqual(t.foldedBatchNorms, [])
    }

    func makeGraphForTraining() throws -> EngineGraph {
        let g = EngineGraph(inputShape: (6, 6, 4), maxBatch: 2, seed: 1)
        let conv = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: false), inputs: [0], name: "conv")
        let bn = try g.add(.batchNorm(), inputs: [conv], name: "bn")
        let gap = try g.add(.globalAvgPool, inputs: [bn], name: "gap")
        try g.add(.softmax, inputs: [gap], name: "sm")
        try g.compile(training: true)
        return g
    }
}
