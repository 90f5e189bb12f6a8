import XCTest
import Dispatch
@testable import DSLEngine

/// 1×1 convolutions of one input run as one GEMM in graphs compiled for inference only
/// (PointwiseSiblings.swift): every output bit for bit as with separate GEMMs, with biases or
/// none, a fused ReLU, a folded batch norm, an activation of its own, storage reused or not,
/// the rows in one chunk or many, 1 and 2 threads, a full and a smaller batch; the memory plan
/// counts what compile allocates; what is not such a sibling is not grouped.
final class PointwiseSiblingTests: XCTestCase {
    static let size = 7, channels = 20, maxBatch = 3

    /// input → {a: 1×1→16 +bias, relu; b: 1×1→24, bn, relu; d: 3×3→8 on b; c: 1×1→5 +bias, gelu;
    /// e: 1×1→7; s: 1×1/s2→4 (not a sibling); p: max pool → q: 1×1→6 +bias (reads p)} →
    /// concat(a, d, c, e, q) → {g: 1×1→8 +bias; h: 1×1→8 +bias, relu} → add(g, h); s (another
    /// shape) feeds nothing but is computed.
    struct Net {
        let graph: EngineGraph
        let a: Int, b: Int, c: Int, e: Int, g: Int, h: Int, s: Int, q: Int
    }

    func makeNet(fuse: Bool, reuse: Bool, seed: UInt64 = 5) throws -> Net {
        let saved = EngineGraph.fusesPointwiseSiblings
        EngineGraph.fusesPointwiseSiblings = fuse
        defer { EngineGraph.fusesPointwiseSiblings = saved }
        let n = Self.size, g = EngineGraph(inputShape: (n, n, Self.channels), maxBatch: Self.maxBatch, seed: 1)
        let a = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 16, bias: true), inputs: [0], name: "a")
        let ar = try g.add(.relu, inputs: [a], name: "a.relu")
        let b = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 24, bias: false), inputs: [0], name: "b")
        let bn = try g.add(.batchNorm(eps: 1e-3, momentum: 0.1, scale: true), inputs: [b], name: "b.bn")
        let br = try g.add(.relu, inputs: [bn], name: "b.relu")
        let d = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 8, bias: true), inputs: [br], name: "d")
        let c = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 5, bias: true), inputs: [0], name: "c")
        let cg = try g.add(.activation(.gelu), inputs: [c], name: "c.gelu")
        let e = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 7, bias: false), inputs: [0], name: "e")
        let s = try g.add(.conv(kernel: 1, stride: 2, pad: 0, outChannels: 4, bias: true), inputs: [0], name: "s")
        let p = try g.add(.maxPool(kernel: 3, stride: 1, pad: 1), inputs: [0], name: "p")
        let q = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 6, bias: true), inputs: [p], name: "q")
        let cat = try g.add(.concat, inputs: [ar, d, cg, e, q], name: "cat")
        let gg = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 8, bias: true), inputs: [cat], name: "g")
        let h = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 8, bias: true), inputs: [cat], name: "h")
        let hr = try g.add(.relu, inputs: [h], name: "h.relu")
        _ = try g.add(.add, inputs: [gg, hr], name: "sum")
        let planned = g.plannedBytes(training: false, reuseBuffers: reuse)
        try g.compile(training: false, reuseBuffers: reuse)
        XCTAssertEqual(planned, g.memoryPlan.totalBytes, "the plan counts the group's workspace")
        fillParametersAndStatistics(g, seed: seed)
        return Net(graph: g, a: a, b: b, c: c, e: e, g: gg, h: h, s: s, q: q)
    }

    func input(batch: Int) -> [Float] {
        var rng = TestRandom(17)
        return (0..<batch * Self.size * Self.size * Self.channels).map { _ in Float(4 * rng.uniform() - 2) }
    }

    /// Every node's output after a forward pass (reuse off: each node keeps its own storage), or
    /// only the network's output (reuse on).
    func outputs(_ net: Net, batch: Int, threads: Int, reuse: Bool) -> [[Float]] {
        let x = input(batch: batch)
        let g = net.graph
        return withThreads(threads) {
            let y: [Float] = g.forward(x, batch: batch, training: false)   // a copy (GradientCheck.swift)
            if reuse { return [y] }
            return (1..<g.nodeCount).map { j in Array(UnsafeBufferPointer(start: g.value(of: j), count: batch * g.shape(of: j).count)) }
        }
    }

    func testGroupsAreTheOneByOneConvolutionsOfOneInput() throws {
        let net = try makeNet(fuse: true, reuse: true)
        XCTAssertEqual(net.graph.pointwiseSiblingGroups, [[net.a, net.b, net.c, net.e], [net.g, net.h]])
        let plain = try makeNet(fuse: false, reuse: true)
        XCTAssertEqual(plain.graph.pointwiseSiblingGroups, [])
        // A graph compiled for training keeps them apart.
        let saved = EngineGraph.fusesPointwiseSiblings
        defer { EngineGraph.fusesPointwiseSiblings = saved }
        EngineGraph.fusesPointwiseSiblings = true
        let t = EngineGraph(inputShape: (4, 4, 3), maxBatch: 2, seed: 1)
        let u = try t.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 4, bias: true), inputs: [0], name: "u")
        let v = try t.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 4, bias: true), inputs: [0], name: "v")
        let w = try t.add(.add, inputs: [u, v], name: "w")
        _ = try t.add(.softmax, inputs: [w], name: "softmax")
        try t.compile(training: true)
        XCTAssertEqual(t.pointwiseSiblingGroups, [])
    }

    func testOutputsAreBitForBitTheSeparateConvolutions() throws {
        let saved = (pointwiseSiblingChunkRows, pointwiseSiblingMinRows)
        defer { (pointwiseSiblingChunkRows, pointwiseSiblingMinRows) = saved }
        for reuse in [false, true] {
            let fused = try makeNet(fuse: true, reuse: reuse), plain = try makeNet(fuse: false, reuse: reuse)
            for batch in [Self.maxBatch, 1] {
                let expected = outputs(plain, batch: batch, threads: 2, reuse: reuse)
                // One chunk; chunks of 1 row; of 13 rows (the last one shorter).
                // (A minimum above the rows runs each sibling alone, from the leader's step.)
                for (chunk, minRows) in [(4096, 0), (1, 0), (13, 1), (4096, 1 << 20)] {
                    (pointwiseSiblingChunkRows, pointwiseSiblingMinRows) = (chunk, minRows)
                    for threads in [1, 2] {
                        let got = outputs(fused, batch: batch, threads: threads, reuse: reuse)
                        for (j, (x, y)) in zip(got, expected).enumerated() {
                            XCTAssertEqual(x.count, y.count)
                            if let i = x.indices.first(where: { x[$0].bitPattern != y[$0].bitPattern }) {
                                XCTFail("reuse \(reuse), batch \(batch), chunk \(chunk), \(threads) threads: node \(reuse ? fused.graph.nodeCount - 1 : j + 1) element \(i): \(x[i]) vs \(y[i])")
                                break
                            }
                        }
                    }
                }
            }
        }
    }
}

extension PointwiseSiblingTests {
    /// A seeded grid: 2–5 siblings of an input of 1–70 channels on 1×1 to 9×9 maps, each with
    /// 1–70 output channels, a bias or none and then nothing, a ReLU, a batch norm (folded), both,
    /// or a GELU of its own; their outputs concatenated. Bit for bit against separate GEMMs, in
    /// one chunk and in chunks of 1 and 7 rows, batches 3 and 1, 1 and 2 threads. Every other
    /// case is compiled with the chunk hook at 5 rows: the workspace then holds 5 rows of result,
    /// and a later call asking for more runs in chunks of 5 (it wrote past the workspace).
    func testSeededGrid() throws {
        let saved = (pointwiseSiblingChunkRows, pointwiseSiblingMinRows)
        defer { (pointwiseSiblingChunkRows, pointwiseSiblingMinRows) = saved }
        var rng = TestRandom(2027)
        for index in 0..<16 {
            let size = 1 + rng.int(9), inChannels = 1 + rng.int(70)
            let siblings = (0..<(2 + rng.int(4))).map { _ in (channels: 1 + rng.int(70), bias: rng.int(2) == 0, tail: rng.int(5)) }
            func make(fuse: Bool) throws -> (EngineGraph, [Int]) {
                let savedFuse = EngineGraph.fusesPointwiseSiblings
                EngineGraph.fusesPointwiseSiblings = fuse
                defer { EngineGraph.fusesPointwiseSiblings = savedFuse }
                let g = EngineGraph(inputShape: (size, size, inChannels), maxBatch: Self.maxBatch, seed: 1)
                var convs: [Int] = [], outs: [Int] = []
                for (i, sib) in siblings.enumerated() {
                    var y = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: sib.channels, bias: sib.bias), inputs: [0], name: "c\(i)")
                    convs.append(y)
                    if sib.tail == 2 || sib.tail == 3 { y = try g.add(.batchNorm(eps: 1e-3, momentum: 0.1, scale: true), inputs: [y], name: "bn\(i)") }
                    if sib.tail == 1 || sib.tail == 3 { y = try g.add(.relu, inputs: [y], name: "relu\(i)") }
                    if sib.tail == 4 { y = try g.add(.activation(.gelu), inputs: [y], name: "gelu\(i)") }
                    outs.append(y)
                }
                _ = try g.add(.concat, inputs: outs, name: "cat")
                let planned = g.plannedBytes(training: false)
                try g.compile(training: false)
                XCTAssertEqual(planned, g.memoryPlan.totalBytes, "case \(index)")
                fillParametersAndStatistics(g, seed: 9)
                return (g, convs)
            }
            (pointwiseSiblingChunkRows, pointwiseSiblingMinRows) = (index % 2 == 0 ? saved.0 : 5, saved.1)
            let (fused, convs) = try make(fuse: true), (plain, _) = try make(fuse: false)
            XCTAssertEqual(fused.pointwiseSiblingGroups, [convs], "case \(index)")
            for batch in [Self.maxBatch, 1] {
                var rng = TestRandom(UInt64(31 + index))
                let x = (0..<(batch * fused.inputShape.count)).map { _ in Float(4 * rng.uniform() - 2) }
                let expected: [Float] = withThreads(2) { plain.forward(x, batch: batch, training: false) }
                for chunk in [4096, 1, 7] {
                    (pointwiseSiblingChunkRows, pointwiseSiblingMinRows) = (chunk, 0)
                    for threads in [1, 2] {
                        let got: [Float] = withThreads(threads) { fused.forward(x, batch: batch, training: false) }
                        if let i = got.indices.first(where: { got[$0].bitPattern != expected[$0].bitPattern }) {
                            XCTFail("case \(index) (\(size)x\(size)x\(inChannels), \(siblings)), batch \(batch), chunk \(chunk), \(threads) threads: element \(i): \(got[i]) vs \(expected[i])")
                        }
                    }
                }
            }
        }
    }
}

/// GoogLeNet's inference at 224×224 (specs/googlenet.dsl built on the engine), batch 16, with the
/// sibling 1×1 convolutions as one GEMM and as separate ones, alternated in one process, and
/// the time of the 1×1 convolutions. Runs only with DSL_BENCH=1:
/// `DSL_BENCH=1 swift test -c release --filter PointwiseSiblingBenchTests`.
final class PointwiseSiblingBenchTests: XCTestCase {
    static func googLeNet(_ g: EngineGraph) throws {
        var n = 0
        func add(_ op: EngineOp, _ ins: [Int]) throws -> Int { n += 1; return try g.add(op, inputs: ins, name: "n\(n)") }
        func conv(_ x: Int, _ k: Int, _ s: Int, _ o: Int) throws -> Int {
            try add(.relu, [try add(.conv(kernel: k, stride: s, pad: k / 2, outChannels: o, bias: true), [x])])
        }
        func pool(_ x: Int, stride: Int) throws -> Int {
            try add(.maxPool(kernel: 3, stride: stride, pad: stride == 1 ? 1 : 0, ceilMode: true), [x])
        }
        func inception(_ x: Int, _ c: (Int, Int, Int, Int, Int, Int)) throws -> Int {
            let b1 = try conv(x, 1, 1, c.0)
            let b2 = try conv(try conv(x, 1, 1, c.1), 3, 1, c.2)
            let b3 = try conv(try conv(x, 1, 1, c.3), 5, 1, c.4)
            let b4 = try conv(try pool(x, stride: 1), 1, 1, c.5)
            return try add(.concat, [b1, b2, b3, b4])
        }
        var x = try pool(try conv(0, 7, 2, 64), stride: 2)
        x = try pool(try conv(try conv(x, 1, 1, 64), 3, 1, 192), stride: 2)
        x = try inception(x, (64, 96, 128, 16, 32, 32))
        x = try pool(try inception(x, (128, 128, 192, 32, 96, 64)), stride: 2)
        for c in [(192, 96, 208, 16, 48, 64), (160, 112, 224, 24, 64, 64), (128, 128, 256, 24, 64, 64),
                  (112, 144, 288, 32, 64, 64), (256, 160, 320, 32, 128, 128)] { x = try inception(x, c) }
        x = try pool(x, stride: 2)
        x = try inception(try inception(x, (256, 160, 320, 32, 128, 128)), (384, 192, 384, 48, 128, 128))
        x = try add(.globalAvgPool, [x])
        _ = try add(.softmax, [try add(.linear(outFeatures: 1000, bias: true), [x])])
    }

    func testGoogLeNetInference() throws {
        guard ProcessInfo.processInfo.environment["DSL_BENCH"] == "1" else { throw XCTSkip("set DSL_BENCH=1 to run") }
        let batch = 16, rounds = 5
        let saved = EngineGraph.fusesPointwiseSiblings
        defer { EngineGraph.fusesPointwiseSiblings = saved }
        var graphs: [EngineGraph] = []
        for fuse in [true, false] {
            EngineGraph.fusesPointwiseSiblings = fuse
            let g = EngineGraph(inputShape: (224, 224, 3), maxBatch: batch, seed: 1)
            try Self.googLeNet(g)
            try g.compile(training: false)
            XCTAssertEqual(g.pointwiseSiblingGroups.count, fuse ? 9 : 0)
            graphs.append(g)
        }
        var total = [[Double]](repeating: [], count: 2), pointwise = total
        alternateInferencePasses(graphs, batch: batch, rounds: rounds) { i, g, ms in
            total[i].append(ms)
            pointwise[i].append(forwardMilliseconds(g) { op in
                if case let .conv(k, 1, 0, _, _) = op { return k == 1 }
                return false
            })
        }
        if ProcessInfo.processInfo.environment["DSL_BENCH_GROUPS"] == "1" {
            for group in graphs[0].pointwiseSiblingGroups {
                let ms = graphs.map { g in 1000 * group.reduce(0) { $0 + g.forwardSeconds[$1] } }
                print("group \(group): \(String(format: "%.2f", ms[0])) ms as one GEMM, \(String(format: "%.2f", ms[1])) ms separately (last round)")
            }
        }
        for (i, name) in ["one GEMM per group", "separate GEMMs"].enumerated() {
            print("GoogLeNet inference, batch \(batch), \(name): \(medianAndRange(total[i])) ms per batch, 1×1 convolutions \(medianAndRange(pointwise[i])) ms (median (min-max) of \(rounds))")
        }
    }
}
