import XCTest
@testable import DSLEngine

/// A batch norm doing the backward of the ReLU, ReLU6 or hardsigmoid fused into its store
/// (`BatchNormKernel.fusedActivationGradient`) gives the gradients the activation's own backward
/// gives (`EngineGraph.fusesActivationBackward = false`) bit for bit, over a grid of shapes:
/// channel counts below, at and above the 64 of the register-resident sums, with ragged groups
/// of 8; blocks of rows that split a reduction chunk; γ and β spread so that every activation
/// clips on both sides; batch norms with and without a scale; 1 and 2 threads.
final class BatchNormActivationBackwardTests: XCTestCase {
    override func tearDown() { EngineGraph.fusesActivationBackward = true }

    /// Two training steps (SGD between them); the parameter gradients and every node's output
    /// gradient the fused graph stores, by name, and the names of the activations it fused.
    private func run(fused: Bool, threads: Int, activation: EngineOp, channels: Int, map: (Int, Int),
                     batch: Int, scale: Bool, seed: UInt64) throws -> (grads: [String: [UInt32]], fusedNames: [String]) {
        EngineGraph.fusesActivationBackward = fused
        let g = EngineGraph(inputShape: (map.0, map.1, 3), maxBatch: batch, seed: 7)
        g.computesInputGradient = true
        var x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: channels, bias: false), inputs: [0], name: "conv")
        x = try g.add(.batchNorm(scale: scale), inputs: [x], name: "bn")
        x = try g.add(activation, inputs: [x], name: "act")
        // A second batch norm and activation reading a convolution's output with a bias.
        x = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: channels + 3, bias: true), inputs: [x], name: "conv2")
        x = try g.add(.batchNorm(), inputs: [x], name: "bn2")
        x = try g.add(activation, inputs: [x], name: "act2")
        x = try g.add(.globalAvgPool, inputs: [x], name: "gap")
        x = try g.add(.linear(outFeatures: 10, bias: true), inputs: [x], name: "fc")
        try g.add(.softmax, inputs: [x], name: "softmax")
        try g.compile(training: true, reuseBuffers: true)
        var random = TestRandom(seed)
        // γ in ±(0.5 … 8) and β in −3 … 3: outputs below 0, inside the range and (ReLU6) above 6.
        for p in g.parameters where p.name.hasPrefix("bn") {
            for i in 0..<p.count {
                let u = Float(random.uniform())
                p.value[i] = p.name.hasSuffix("weight") ? (i % 5 == 0 ? -1 : 1) * (0.5 + 7.5 * u) : 6 * u - 3
            }
        }
        let result = try trainingGradientBits(g, batch: batch, threads: threads, random: &random)
        return (result, g.activationBackwardsInNorm.map { g.name(of: $0.activation) })
    }

    func testFusedActivationBackwardHasTheBitsOfTheActivations() throws {
        var random = TestRandom(11)
        // (channels, map, batch): ≤ 64 with a ragged group, exactly 64, > 64 ragged and not;
        // 1×1 maps; reductions of one chunk and of sixteen, with blocks of rows splitting them.
        let shapes: [(Int, (Int, Int), Int)] = [(3, (5, 4), 2), (13, (9, 7), 3), (64, (8, 8), 2), (65, (6, 5), 3),
                                                (96, (4, 4), 1), (150, (7, 3), 2), (40, (1, 1), 3), (40, (12, 12), 3),
                                                (8, (23, 25), 3)]
        for (i, (channels, map, batch)) in shapes.enumerated() {
            for activation in [EngineOp.relu, .activation(.relu6), .activation(.hardsigmoid)] {
                let scale = i % 2 == 0, seed = random.next()
                let label = "\(activation) c\(channels) \(map.0)x\(map.1) b\(batch) scale \(scale)"
                let reference = try run(fused: false, threads: 1, activation: activation, channels: channels, map: map,
                                        batch: batch, scale: scale, seed: seed)
                XCTAssertEqual(reference.fusedNames, [], label)
                for threads in [1, 2] {
                    let fused = try run(fused: true, threads: threads, activation: activation, channels: channels, map: map,
                                        batch: batch, scale: scale, seed: seed)
                    XCTAssertEqual(fused.fusedNames, ["act", "act2"], label)
                    XCTAssertEqual(Set(fused.grads.keys), Set(reference.grads.keys), label)
                    for (name, bits) in reference.grads.sorted(by: { $0.key < $1.key }) {
                        let other = fused.grads[name] ?? []
                        let at = bits.indices.first { $0 >= other.count || bits[$0] != other[$0] }
                        XCTAssertNil(at, "\(label), \(threads) threads: \(name) differs at \(at.map(String.init) ?? "")")
                    }
                }
            }
        }
    }

    /// The activation's output gradient lives until the batch norm's backward reads it; the
    /// batch norm's own output gradient is not written, and `gradient(of:)` says so.
    func testTheBatchNormsOwnGradientIsNotMaterialised() throws {
        let g = EngineGraph(inputShape: (6, 6, 3), maxBatch: 2, seed: 1)
        let c = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 16, bias: false), inputs: [0], name: "conv")
        let bn = try g.add(.batchNorm(), inputs: [c], name: "bn")
        let act = try g.add(.relu, inputs: [bn], name: "relu")
        let gap = try g.add(.globalAvgPool, inputs: [act], name: "gap")
        try g.add(.softmax, inputs: [try g.add(.linear(outFeatures: 4, bias: true), inputs: [gap], name: "fc")], name: "softmax")
        try g.compile(training: true)
        XCTAssertEqual(g.activationBackwardsInNorm.map(\.activation), [act])
        XCTAssertEqual(g.activationBackwardsInNorm.map(\.norm), [bn])
        XCTAssertEqual(g.algorithm(of: act), "fused")
        XCTAssertNil(g.gradient(of: bn))
        XCTAssertNotNil(g.gradient(of: act))
    }
}
