import DSLEngine
import Foundation
import PythonTestSupport
import XCTest
@testable import DSLTraining

/// Parameter groups of `SGDOptimizer`: per-group learning-rate multiplier and L2 coefficient,
/// groups skipped in the epochs they are not trained (no update, no decay, velocity kept).
final class OptimizerGroupTests: XCTestCase {
    /// Six parameters in four groups, five Nesterov steps over epochs 0, 0, 1, 1, 2.
    static let groups = [
        ParameterGroup(range: 0..<2, learningRateMultiplier: 1, weightDecay: 0.3),
        ParameterGroup(range: 2..<3, learningRateMultiplier: 64, weightDecay: 0.3 / 64),
        ParameterGroup(range: 3..<5, learningRateMultiplier: 1, weightDecay: 0.3, training: .firstEpochs(1)),
        ParameterGroup(range: 5..<6, learningRateMultiplier: 2, weightDecay: 0, training: .never),
    ]
    static let epochs = [0, 0, 1, 1, 2]
    static let rates: [Float] = [0.01, 0.02, 0.015, 0.01, 0.005]
    static let start: [Float] = [1, -2, 0.5, 3, -1, 2]
    static func gradient(_ step: Int) -> [Float] { (0..<6).map { Float(sin(Double(3 * step + 7 * $0 + 1))) } }

    /// The update in Double from its definition (PyTorch's SGD per param_group: d = g + wd·w,
    /// v = μ·v + d, w −= lr·m·(d + μ·v); a group without gradient is skipped).
    func testGroupsFollowTheDefinition() throws {
        let sgd = try SGDOptimizer(parameterCount: 6, momentum: 0.85, nesterov: true, groups: Self.groups)
        var w = Self.start
        var rw = Self.start.map(Double.init), rv = [Double](repeating: 0, count: 6)
        for (k, epoch) in Self.epochs.enumerated() {
            let g = Self.gradient(k)
            try sgd.step(&w, gradients: g, learningRate: Self.rates[k], epoch: epoch)
            for group in Self.groups where group.training.isTrained(inEpoch: epoch) {
                for i in group.range {
                    let d = Double(g[i]) + Double(group.weightDecay) * rw[i]
                    rv[i] = 0.85 * rv[i] + d
                    rw[i] -= Double(Self.rates[k]) * Double(group.learningRateMultiplier) * (d + 0.85 * rv[i])
                }
            }
        }
        for i in 0..<6 {
            XCTAssertEqual(Double(w[i]), rw[i], accuracy: 1e-5 * max(1, abs(rw[i])), "parameter \(i)")
            XCTAssertEqual(Double(sgd.velocityValues[i]), rv[i], accuracy: 1e-5 * max(1, abs(rv[i])), "velocity \(i)")
        }
        XCTAssertEqual(w[5], Self.start[5], "a never-trained parameter keeps its value")
        XCTAssertEqual(sgd.velocityValues[5], 0)
        // Trained in epoch 0 only: its velocity is the one after step 2, kept through epochs 1 and 2.
        XCTAssertNotEqual(sgd.velocityValues[3], 0)
    }

    /// The same five steps with torch.optim.SGD (four param_groups, nesterov, momentum 0.85;
    /// a group frozen in an epoch has requires_grad False, so its gradient is None).
    func testGroupsMatchTorchSGD() throws {
        let python = try PythonEnvironment.requireTorch()
        let sgd = try SGDOptimizer(parameterCount: 6, momentum: 0.85, nesterov: true, groups: Self.groups)
        var w = Self.start
        for (k, epoch) in Self.epochs.enumerated() {
            try sgd.step(&w, gradients: Self.gradient(k), learningRate: Self.rates[k], epoch: epoch)
        }
        func list(_ values: [Float]) -> String { "[" + values.map { "\($0)" }.joined(separator: ", ") + "]" }
        let script = """
        import torch
        start = \(list(Self.start))
        spec = [(0, 2, 1.0, 0.3, 'always'), (2, 3, 64.0, 0.3 / 64, 'always'), (3, 5, 1.0, 0.3, 'first1'), (5, 6, 2.0, 0.0, 'never')]
        params = [torch.tensor(start[a:b], dtype=torch.float32, requires_grad=True) for a, b, _, _, _ in spec]
        base = 1.0
        opt = torch.optim.SGD([dict(params=[p], lr=m, weight_decay=wd) for p, (_, _, m, wd, _) in zip(params, spec)],
                              lr=1.0, momentum=0.85, nesterov=True)
        epochs = \(Self.epochs)
        rates = \(list(Self.rates))
        grads = [\((0..<Self.epochs.count).map { list(Self.gradient($0)) }.joined(separator: ", "))]
        for k, epoch in enumerate(epochs):
            for group, p, (a, b, m, wd, when) in zip(opt.param_groups, params, spec):
                group['lr'] = float(torch.tensor(rates[k], dtype=torch.float32)) * m
                trained = when == 'always' or (when == 'first1' and epoch < 1)
                p.grad = torch.tensor(grads[k][a:b], dtype=torch.float32) if trained else None
            opt.step()
        print(' '.join(repr(float(x)) for p in params for x in p.detach()))
        print(' '.join(repr(float(x)) for p in params for x in (opt.state[p]['momentum_buffer'] if 'momentum_buffer' in opt.state[p] else torch.zeros_like(p)).detach()))
        """
        let (status, output) = PythonEnvironment.run(python, ["-c", script])
        XCTAssertEqual(status, 0, output)
        let lines = output.split(separator: "\n").map { $0.split(separator: " ").compactMap { Double($0) } }
        guard lines.count >= 2, lines[0].count == 6, lines[1].count == 6 else { return XCTFail("unexpected output: \(output)") }
        for i in 0..<6 {
            XCTAssertEqual(Double(w[i]), lines[0][i], accuracy: 2e-6 * max(1, abs(lines[0][i])), "parameter \(i)")
            XCTAssertEqual(Double(sgd.velocityValues[i]), lines[1][i], accuracy: 2e-6 * max(1, abs(lines[1][i])), "velocity \(i)")
        }
    }

    /// Groups are checked: inside the block, disjoint, positive multipliers, non-negative decay.
    func testGroupErrors() throws {
        assertThrowsMessage(try SGDOptimizer(parameterCount: 4, groups: [ParameterGroup(range: 2..<5)]), contains: "2..<5", "outside")
        assertThrowsMessage(try SGDOptimizer(parameterCount: 4, groups: [ParameterGroup(range: 0..<3), ParameterGroup(range: 2..<4)]), contains: "overlaps")
        assertThrowsMessage(try SGDOptimizer(parameterCount: 4, groups: [ParameterGroup(range: 0..<3, learningRateMultiplier: 0)]), contains: "multiplier")
        assertThrowsMessage(try SGDOptimizer(parameterCount: 4, groups: [ParameterGroup(range: 0..<3, weightDecay: -1)]), contains: "decay")
        let sgd = try SGDOptimizer(parameterCount: 4, groups: [ParameterGroup(range: 1..<3, weightDecay: 0.1)])
        XCTAssertEqual(sgd.groups.map(\.range), [0..<1, 1..<3, 3..<4], "uncovered parameters get groups of their own")
        XCTAssertEqual(sgd.groups.map(\.weightDecay), [0, 0.1, 0])
        try sgd.setTraining(.never, forGroup: 1..<3)
        XCTAssertEqual(sgd.groups[1].training, .never)
        assertThrowsMessage(try sgd.setTraining(.never, forGroup: 1..<2), contains: "not the range of a parameter group")
    }

    /// `ParameterGroup.groups(for:)` on a hand-built engine: conv (weight, bias), a batch norm
    /// after it, a fused conv+bn style node name, a linear; BN shifts get the multiplier M and
    /// decay wd/M (only with decayAll), weights wd, the rest 0 unless decayAll.
    func testGroupsOfAnEngine() throws {
        let g = EngineGraph(inputShape: (4, 4, 3), maxBatch: 2, seed: 1)
        try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [0], name: "conv1")
        try g.add(.batchNorm(), inputs: [1], name: "conv1.bn")
        try g.add(.linear(outFeatures: 5, bias: true), inputs: [2], name: "fc")
        try g.add(.softmax, inputs: [3], name: "softmax")
        try g.compile(training: true)
        let names = g.parameters.map(\.name)
        XCTAssertEqual(names, ["conv1.weight", "conv1.bias", "conv1.bn.weight", "conv1.bn.bias", "fc.weight", "fc.bias"])
        let weightsOnly = ParameterGroup.groups(for: g, weightDecay: 0.01, batchNormBiasMultiplier: 64)
        XCTAssertEqual(weightsOnly.map(\.learningRateMultiplier), [1, 1, 1, 64, 1, 1])
        XCTAssertEqual(weightsOnly.map(\.weightDecay), [0.01, 0, 0, 0, 0.01, 0])
        let all = ParameterGroup.groups(for: g, weightDecay: 0.01, decayAll: true, batchNormBiasMultiplier: 64)
        XCTAssertEqual(all.map(\.weightDecay), [0.01, 0.01, 0.01, 0.01 / 64, 0.01, 0.01])
        XCTAssertEqual(all.map(\.range), g.parameters.map { $0.offset..<($0.offset + $0.count) })
        XCTAssertEqual(all.map(\.training), g.parameters.map(\.training))
    }

    /// The engine's smoothed loss and its logit gradient against torch's
    /// F.cross_entropy(logits, labels, label_smoothing=0.2) (mean over the batch).
    func testLabelSmoothedLossMatchesTorch() throws {
        let python = try PythonEnvironment.requireTorch()
        let (batch, classes) = (4, 10)
        let g = EngineGraph(inputShape: (1, 1, classes), maxBatch: batch, seed: 1)
        g.computesInputGradient = true
        try g.add(.softmax, inputs: [0], name: "softmax")
        try g.compile(training: true)
        let logits = (0..<(batch * classes)).map { Float(sin(Double($0) * 1.7) * 3) }
        let labels: [Int32] = [3, 0, 9, 3]
        _ = logits.withUnsafeBufferPointer { g.forward($0.baseAddress!, batch: batch, training: true) }
        let (loss, _) = labels.withUnsafeBufferPointer { g.backward(labels: $0.baseAddress!, batch: batch, labelSmoothing: 0.2) }
        let gradient = Array(UnsafeBufferPointer(start: try XCTUnwrap(g.inputGradient), count: batch * classes))
        let script = """
        import torch, torch.nn.functional as F
        x = torch.tensor([\(logits.map { "\($0)" }.joined(separator: ", "))], dtype=torch.float64).reshape(\(batch), \(classes)).requires_grad_()
        loss = F.cross_entropy(x, torch.tensor([\(labels.map { "\($0)" }.joined(separator: ", "))]), label_smoothing=0.2)
        loss.backward()
        print(repr(loss.item()))
        print(' '.join(repr(v) for v in x.grad.flatten().tolist()))
        """
        let (status, output) = PythonEnvironment.run(python, ["-c", script])
        XCTAssertEqual(status, 0, output)
        let lines = output.split(separator: "\n").map { $0.split(separator: " ").compactMap { Double($0) } }
        guard lines.count >= 2, lines[0].count == 1, lines[1].count == batch * classes else { return XCTFail("unexpected output: \(output)") }
        XCTAssertEqual(Double(loss), lines[0][0], accuracy: 1e-5)
        for i in 0..<(batch * classes) { XCTAssertEqual(Double(gradient[i]), lines[1][i], accuracy: 1e-6, "logit \(i)") }
    }
}
