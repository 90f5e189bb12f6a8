import XCTest
@testable import DSLEngine

/// A convolution doing the backward of the ReLU before it (`ConvKernel.masksInputGradient`: its
/// backward-data stores dX · (x > 0), x the ReLU's output) gives the gradients the ReLU's own
/// backward gives (`EngineGraph.fusesReLUBackwardInConvolution = false`) bit for bit, on every
/// backward-data path: Winograd (masked in the output transform's store), direct slab passes
/// of stride 1 and 2 (masked per job on the rows just completed, also when the channel blocks
/// are dealt out to jobs), direct stride 2 with a 1×1 kernel (pixel classes without taps, dX
/// accumulated), and the GEMM paths (1×1, im2col; a pass of their own); 1 and 2 threads.
final class ReLUBackwardInConvolutionTests: XCTestCase {
    override func tearDown() {
        EngineGraph.fusesReLUBackwardInConvolution = true
        ConvKernel.directOverride = nil
        ConvKernel.winogradOverride = nil
    }

    private struct Result {
        var grads: [String: [UInt32]]
        var fused: [String]
        var algorithms: [String: String]
    }

    /// Two training steps (SGD between them) of conv → relu → conv … chains; every parameter
    /// gradient and the input gradient, by name.
    private func run(fused: Bool, threads: Int, map: Int, batch: Int, channels: Int, seed: UInt64) throws -> Result {
        EngineGraph.fusesReLUBackwardInConvolution = fused
        let g = EngineGraph(inputShape: (map, map, 3), maxBatch: batch, seed: 7)
        g.computesInputGradient = true
        var x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: channels, bias: true), inputs: [0], name: "c1")
        x = try g.add(.relu, inputs: [x], name: "r1")
        x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: channels, bias: true), inputs: [x], name: "c2")
        x = try g.add(.relu, inputs: [x], name: "r2")
        x = try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: channels + 5, bias: true), inputs: [x], name: "c3")
        x = try g.add(.relu, inputs: [x], name: "r3")
        x = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: channels, bias: false), inputs: [x], name: "c4")
        x = try g.add(.relu, inputs: [x], name: "r4")
        // (A 3×3 here: a 1×1 stride-2 convolution after c4 would leave c3's dY zero on odd rows.)
        x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 20, bias: true), inputs: [x], name: "c5")
        x = try g.add(.relu, inputs: [x], name: "r5")
        x = try g.add(.conv(kernel: 1, stride: 2, pad: 0, outChannels: 24, bias: true), inputs: [x], name: "c6")
        x = try g.add(.globalAvgPool, inputs: [x], name: "gap")
        x = try g.add(.linear(outFeatures: 10, bias: true), inputs: [x], name: "fc")
        try g.add(.softmax, inputs: [x], name: "softmax")
        try g.compile(training: true, reuseBuffers: true)
        var random = TestRandom(seed)
        var result = Result(grads: [:], fused: g.reluBackwardsInConvolution.map { g.name(of: $0.relu) }, algorithms: [:])
        for j in 1..<g.nodeCount { result.algorithms[g.name(of: j)] = g.algorithm(of: j) ?? "" }
        result.grads = try trainingGradientBits(g, batch: batch, threads: threads, random: &random)
        return result
    }

    private func assertSameBits(_ a: Result, _ b: Result, _ label: String) {
        XCTAssertEqual(Set(a.grads.keys), Set(b.grads.keys), label)
        for (name, bits) in a.grads.sorted(by: { $0.key < $1.key }) {
            guard let other = b.grads[name] else { continue }
            if let i = bits.indices.first(where: { bits[$0] != other[$0] }) {
                XCTFail("\(label): \(name)[\(i)] = \(Float(bitPattern: bits[i])), unfused \(Float(bitPattern: other[i]))")
            }
        }
    }

    func testFusedReLUBackwardHasTheBitsOfTheReLUs() throws {
        // (label, direct override, Winograd override, map, batch, channels)
        let cases: [(String, Bool?, Bool?, Int, Int, Int)] = [
            ("by shape", nil, nil, 12, 4, 24),         // c2 Winograd
            ("direct", true, false, 12, 4, 24),        // c2 direct stride 1
            ("direct, channel groups", true, false, 6, 1, 100),  // one band: blocks dealt to jobs
            ("im2col", false, false, 9, 3, 17),        // every 3×3 by im2col + GEMM
            ("direct, 1×1 maps", true, false, 2, 3, 13),  // c3 onwards on 1×1 maps
        ]
        for (label, direct, winograd, map, batch, channels) in cases {
            ConvKernel.directOverride = direct
            ConvKernel.winogradOverride = winograd
            for threads in [1, 2] {
                let seed = UInt64(31 + map)
                let fusedRun = try run(fused: true, threads: threads, map: map, batch: batch, channels: channels, seed: seed)
                let plain = try run(fused: false, threads: threads, map: map, batch: batch, channels: channels, seed: seed)
                XCTAssertEqual(fusedRun.fused, ["r1", "r2", "r3", "r4", "r5"], label)
                XCTAssertEqual(plain.fused, [], label)
                assertSameBits(fusedRun, plain, "\(label), \(threads) thread(s)")
            }
            let algorithms = try run(fused: true, threads: 1, map: map, batch: batch, channels: channels, seed: 1).algorithms
            switch label {
            case "by shape": XCTAssertEqual(algorithms["c2"], "winograd")
            case "direct", "direct, channel groups", "direct, 1×1 maps":
                XCTAssertEqual(algorithms["c2"], "direct"); XCTAssertEqual(algorithms["c3"], "direct")
                XCTAssertEqual(algorithms["c6"], "direct")
            default: XCTAssertEqual(algorithms["c2"], "im2col+gemm")
            }
            XCTAssertEqual(algorithms["c4"], "gemm", label)
            XCTAssertEqual(algorithms["r2"], "fused", label)
        }
    }

    /// The fused ReLU's output gradient is not stored apart: it shares its input's gradient
    /// (what `gradient(of:)` reports for it is nil).
    func testTheReLUsGradientIsItsInputsGradient() throws {
        let g = EngineGraph(inputShape: (8, 8, 3), maxBatch: 2, seed: 7)
        var x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 16, bias: true), inputs: [0], name: "c1")
        let r = try g.add(.relu, inputs: [x], name: "r1")
        x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 16, bias: true), inputs: [r], name: "c2")
        // A ReLU whose output two nodes read keeps its own backward.
        let r2 = try g.add(.relu, inputs: [x], name: "r2")
        let a = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 16, bias: true), inputs: [r2], name: "a")
        let b = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 16, bias: true), inputs: [r2], name: "b")
        x = try g.add(.add, inputs: [a, b], name: "sum")
        x = try g.add(.globalAvgPool, inputs: [x], name: "gap")
        try g.add(.softmax, inputs: [x], name: "softmax")
        try g.compile(training: true)
        XCTAssertEqual(g.reluBackwardsInConvolution.map { g.name(of: $0.relu) }, ["r1"])
        XCTAssertNil(g.gradient(of: r))
        XCTAssertNotNil(g.gradient(of: r2))
        XCTAssertEqual(g.algorithm(of: r), "fused")
        XCTAssertEqual(g.algorithm(of: r2), "fused fwd")
    }
}
