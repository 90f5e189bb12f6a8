import XCTest
import Dispatch
import DSLIR
@testable import DSLEngine

/// The add after a convolution fused into its store in graphs compiled for inference only
/// (ResidualAdd.swift): outputs bit for bit the unfused graph's on the Winograd and 1×1 GEMM
/// paths, with the residual as the add's first or second input, with as many channels as the
/// convolution or fewer (a whole 16-channel group, a part of one, none of the last), with and
/// without a bias and a folded batch norm, storage reused, 1 and 2 threads, a full and a
/// smaller batch; the memory plan counts what compile allocates; adds that cannot be fused are not.
final class ResidualAddTests: WinogradOnSmallMapsTestCase {
    struct Case {
        var winograd: Bool
        var shortcut: Int
        var residualFirst: Bool
        var bias = true
        var norm = true
        var size = ResidualAddTests.size, inChannels = ResidualAddTests.inChannels, channels = ResidualAddTests.channels
    }

    static let size = 6, inChannels = 16, channels = 20, maxBatch = 3

    /// input → t: 3×3 conv → `shortcut` channels; y: conv of t (3×3 Winograd or 1×1) → 20
    /// channels [→ bn]; add(y, t) or add(t, y) → relu (in place on the add).
    func makeGraph(_ c: Case, fuse: Bool) throws -> (EngineGraph, add: Int) {
        let saved = (EngineGraph.fusesResidualAdds, ConvKernel.winogradOverride)
        EngineGraph.fusesResidualAdds = fuse
        ConvKernel.winogradOverride = c.winograd ? true : nil
        defer { (EngineGraph.fusesResidualAdds, ConvKernel.winogradOverride) = saved }
        let n = c.size, g = EngineGraph(inputShape: (n, n, c.inChannels), maxBatch: Self.maxBatch, seed: 1)
        let t = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: c.shortcut, bias: true), inputs: [0], name: "t")
        let k = c.winograd ? 3 : 1
        var y = try g.add(.conv(kernel: k, stride: 1, pad: k / 2, outChannels: c.channels, bias: c.bias), inputs: [t], name: "y")
        if c.norm { y = try g.add(.batchNorm(eps: 1e-3, momentum: 0.1, scale: true), inputs: [y], name: "y.bn") }
        let add = try g.add(.add, inputs: c.residualFirst ? [t, y] : [y, t], name: "add")
        _ = try g.add(.relu, inputs: [add], name: "relu")
        let planned = g.plannedBytes(training: false)
        try g.compile(training: false)
        XCTAssertEqual(planned, g.memoryPlan.totalBytes, "\(c)")
        fillParametersAndStatistics(g, seed: 3)
        return (g, add)
    }

    func run(_ g: EngineGraph, batch: Int, threads: Int) -> [Float] {
        var rng = TestRandom(11)
        let x = (0..<batch * g.inputShape.count).map { _ in Float(4 * rng.uniform() - 2) }
        return withThreads(threads) {
            let y: [Float] = g.forward(x, batch: batch, training: false)   // a copy (GradientCheck.swift)
            return y
        }
    }

    func testFusedAddsAreBitForBitTheAdds() throws {
        try check(Self.cases)
    }

    /// A seeded grid: 1×1 to 7×7 maps, 1–40 input channels, 1–97 output channels, residuals of
    /// 1 to all of them, either path, either order, bias and batch norm or not.
    func testSeededGrid() throws {
        var rng = TestRandom(2026)
        try check((0..<24).map { _ in
            let channels = 1 + rng.int(97)
            let winograd = channels >= 16 && rng.int(2) == 0
            return Case(winograd: winograd, shortcut: 1 + rng.int(channels), residualFirst: rng.int(2) == 0,
                        bias: rng.int(2) == 0, norm: rng.int(2) == 0, size: 1 + rng.int(7),
                        inChannels: 1 + rng.int(40), channels: channels)
        })
    }

    static var cases: [Case] {
        var cases: [Case] = []
        for winograd in [true, false] {
            for shortcut in [20, 16, 13] {
                for residualFirst in [true, false] {
                    cases.append(Case(winograd: winograd, shortcut: shortcut, residualFirst: residualFirst))
                }
            }
            cases.append(Case(winograd: winograd, shortcut: 7, residualFirst: false, bias: false, norm: false))
            cases.append(Case(winograd: winograd, shortcut: 5, residualFirst: true, bias: true, norm: false))
        }
        return cases
    }

    func check(_ cases: [Case]) throws {
        for c in cases {
            let (fused, add) = try makeGraph(c, fuse: true)
            let (plain, _) = try makeGraph(c, fuse: false)
            XCTAssertEqual(fused.fusedResidualAdds, [add], "\(c)")
            XCTAssertEqual(plain.fusedResidualAdds, [], "\(c)")
            for batch in [Self.maxBatch, 1] {
                let expected = run(plain, batch: batch, threads: 2)
                for threads in [1, 2] {
                    let got = run(fused, batch: batch, threads: threads)
                    if let i = got.indices.first(where: { got[$0].bitPattern != expected[$0].bitPattern }) {
                        XCTFail("\(c), batch \(batch), \(threads) threads: element \(i): \(got[i]) vs \(expected[i])")
                    }
                }
            }
        }
    }

    /// What is not fused: a convolution whose output has another reader, one followed by a
    /// ReLU, a direct (strided) convolution, an add of three inputs, an add whose other input is
    /// computed after the convolution, a graph compiled for training.
    func testWhatIsNotFused() throws {
        let g = EngineGraph(inputShape: (6, 6, 4), maxBatch: 2, seed: 1)
        let a = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 8, bias: true), inputs: [0], name: "a")
        let b = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 8, bias: true), inputs: [a], name: "b")
        let s1 = try g.add(.add, inputs: [a, b], name: "s1")                  // a also read by b
        let c = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 8, bias: true), inputs: [s1], name: "c")
        let cr = try g.add(.relu, inputs: [c], name: "c.relu")
        let s2 = try g.add(.add, inputs: [cr, s1], name: "s2")                // ReLU between
        let d = try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 8, bias: true), inputs: [s2], name: "d")
        let p = try g.add(.avgPool(kernel: 2, stride: 2, pad: 0), inputs: [s2], name: "p")
        let s3 = try g.add(.add, inputs: [d, p], name: "s3")                  // direct
        let e = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 8, bias: true), inputs: [s3], name: "e")
        let s4 = try g.add(.add, inputs: [e, s3, p], name: "s4")             // three inputs
        let f = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 8, bias: true), inputs: [s4], name: "f")
        let q = try g.add(.maxPool(kernel: 3, stride: 1, pad: 1), inputs: [s4], name: "q")
        _ = try g.add(.add, inputs: [f, q], name: "s5")                       // q computed after f
        try g.compile(training: false)
        XCTAssertEqual(g.fusedResidualAdds, [])
        // The same add after a lone 1×1 convolution is fused, but not in a training graph.
        for training in [false, true] {
            let h = EngineGraph(inputShape: (6, 6, 4), maxBatch: 2, seed: 1)
            let u = try h.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 4, bias: true), inputs: [0], name: "u")
            let v = try h.add(.add, inputs: [u, 0], name: "v")
            _ = try h.add(.softmax, inputs: [v], name: "softmax")
            try h.compile(training: training)
            XCTAssertEqual(h.fusedResidualAdds, training ? [] : [v])
        }
    }
}

/// PyramidNet-110's inference (specs/pyramidnet-110-a48.dsl), batch 64, with its adds fused into
/// the convolutions before them and as passes of their own, alternated in one process. Runs only
/// with DSL_BENCH=1: `DSL_BENCH=1 swift test -c release --filter ResidualAddBenchTests`.
final class ResidualAddBenchTests: XCTestCase {
    func testPyramidNetInference() throws {
        guard ProcessInfo.processInfo.environment["DSL_BENCH"] == "1" else { throw XCTSkip("set DSL_BENCH=1 to run") }
        let batch = 64, rounds = 9
        let specs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("specs")
        let text = try String(contentsOf: specs.appendingPathComponent("pyramidnet-110-a48.dsl"), encoding: .utf8)
        let checked = Frontend.check(text: text)
        let ir = try XCTUnwrap(checked.graph)
        let saved = EngineGraph.fusesResidualAdds
        defer { EngineGraph.fusesResidualAdds = saved }
        var graphs: [EngineGraph] = []
        for fuse in [true, false] {
            EngineGraph.fusesResidualAdds = fuse
            let g = try lower(ir, maxBatch: batch, seed: 1).engine
            try g.compile(training: false)
            // 52 of the 54 adds: the two units that start a stage add an average pooling of
            // their input, computed after the convolution.
            XCTAssertEqual(g.fusedResidualAdds.count, fuse ? 52 : 0)
            graphs.append(g)
        }
        // Per round: the whole pass, and (profiled) its convolutions and its adds.
        var times = [[Double]](repeating: [], count: 2), convs = times, adds = times
        alternateInferencePasses(graphs, batch: batch, rounds: rounds) { i, g, ms in
            times[i].append(ms)
            convs[i].append(forwardMilliseconds(g) { if case .conv = $0 { return true } else { return false } })
            adds[i].append(forwardMilliseconds(g) { $0 == .add })
        }
        for (i, name) in ["adds fused", "adds apart"].enumerated() {
            print("PyramidNet-110 inference, batch \(batch), \(name): \(medianAndRange(times[i])) ms per batch, convolutions \(medianAndRange(convs[i])) ms, adds \(medianAndRange(adds[i])) ms (median (min-max) of \(rounds))")
        }
    }
}
