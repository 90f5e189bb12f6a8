import XCTest
@testable import DSLEngine

/// `EngineGraph.setTrainedParameters`: backward does only the work trained parameters need,
/// and their gradients are bit-identical to a full backward's.
final class TrainedParameterTests: XCTestCase {
    /// Convolutions of every algorithm family in a chain (the engine picks Winograd for the
    /// 3×3/1 layers, the direct kernels for the narrow first and strided layers, GEMM for 1×1).
    private func makeNetwork() throws -> (EngineGraph, [String: Int]) {
        let g = EngineGraph(inputShape: (12, 12, 3), maxBatch: 4, seed: 3)
        var ids: [String: Int] = [:]
        var x = try g.add(.conv(kernel: 2, stride: 1, pad: 0, outChannels: 24, bias: true), inputs: [0], name: "whiten")
        ids["whiten"] = x
        x = try g.add(.relu, inputs: [x], name: "relu0")
        x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 32, bias: false), inputs: [x], name: "c3")
        ids["c3"] = x
        x = try g.add(.batchNorm(), inputs: [x], name: "bn")
        x = try g.add(.relu, inputs: [x], name: "relu1")
        x = try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 16, bias: true), inputs: [x], name: "s2")
        ids["s2"] = x
        x = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 16, bias: true), inputs: [x], name: "p1")
        ids["p1"] = x
        x = try g.add(.relu, inputs: [x], name: "relu2")
        x = try g.add(.conv(kernel: 5, stride: 1, pad: 2, outChannels: 8, bias: true), inputs: [x], name: "c5")
        ids["c5"] = x
        x = try g.add(.globalAvgPool, inputs: [x], name: "gap")
        x = try g.add(.linear(outFeatures: 10, bias: true), inputs: [x], name: "fc")
        try g.add(.softmax, inputs: [x], name: "softmax")
        try g.compile(training: true)
        return (g, ids)
    }

    private func gradients(_ g: EngineGraph, _ x: [Float], _ labels: [Int32]) -> [String: [Float]] {
        _ = g.forward(x, batch: 4, training: true)
        g.backward(labels: labels, batch: 4)
        var result: [String: [Float]] = [:]
        for p in g.parameters { result[p.name] = Array(UnsafeBufferPointer(start: p.grad, count: p.count)) }
        return result
    }

    func testFrozenParametersGetNoGradientAndTheOthersAreExact() throws {
        let (g, ids) = try makeNetwork()
        var random = TestRandom(17)
        let x = random.normals(4 * g.inputShape.count)
        let labels: [Int32] = [1, 7, 3, 9]
        let full = gradients(g, x, labels)
        XCTAssertTrue(full.values.allSatisfy { $0.contains { $0 != 0 } }, "a full backward left a gradient zero")
        let cases: [(frozen: Set<String>, noInputGradient: [String])] = [
            // airbench's first epochs: the whitening weights frozen, its bias trained.
            (["whiten.weight"], []),
            // Later: the whole first layer frozen, so the next convolution needs no input gradient.
            (["whiten.weight", "whiten.bias"], ["c3"]),
            // A frozen backbone: everything before the 1×1 layer.
            (["whiten.weight", "whiten.bias", "c3.weight", "bn.weight", "bn.bias", "s2.weight", "s2.bias"], ["c3", "s2", "p1"]),
            // Frozen in the middle only: input gradients still flow to the trained layers before.
            (["s2.weight", "s2.bias", "p1.weight"], []),
            (["whiten.weight", "c3.weight", "c5.bias"], []),
        ]
        for (frozen, noInput) in cases {
            g.setTrainedParameters { !frozen.contains($0.name) }
            let partial = gradients(g, x, labels)
            for p in g.parameters {
                if frozen.contains(p.name) {
                    XCTAssertTrue(partial[p.name]!.allSatisfy { $0 == 0 }, "\(frozen): frozen \(p.name) has a gradient")
                } else {
                    XCTAssertTrue(partial[p.name]!.elementsEqual(full[p.name]!) { $0.bitPattern == $1.bitPattern },
                                  "\(frozen): \(p.name) differs from the full backward")
                }
            }
            for (name, id) in ids {
                let conv = try XCTUnwrap(g.kernels[id] as? ConvKernel)
                XCTAssertEqual(conv.wantsInputGradient, !noInput.contains(name) && name != "whiten", "\(frozen): \(name)")
            }
        }
        // Everything trained again: the full backward.
        g.setTrainedParameters { _ in true }
        XCTAssertEqual(gradients(g, x, labels), full)
    }

    /// The algorithms the test covers, so that a change of the engine's choices shows here.
    func testTheNetworkCoversTheConvolutionAlgorithms() throws {
        let (g, ids) = try makeNetwork()
        let algorithms = Set(ids.values.compactMap { g.algorithm(of: $0) }.map { $0.split(separator: " ").first.map(String.init) ?? $0 })
        XCTAssertTrue(algorithms.contains("winograd"), "\(algorithms)")
        XCTAssertGreaterThanOrEqual(algorithms.count, 2, "\(algorithms)")
    }
}
