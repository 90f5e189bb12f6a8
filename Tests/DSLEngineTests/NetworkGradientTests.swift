import XCTest
@testable import DSLEngine

/// Gradient checks of small whole networks: All-CNN-like, an inception module, PyramidNet units.
final class NetworkGradientTests: XCTestCase {
    func testAllCNNLikeStack() throws {
        let report = try GradientChecker(batch: 2, step: 5e-3, entriesPerTensor: 30).check(input: (8, 8, 3)) { g in
            var x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 6, bias: true), inputs: [0], name: "conv1")
            x = try g.add(.relu, inputs: [x], name: "relu1")
            x = try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 6, bias: true), inputs: [x], name: "conv2")
            x = try g.add(.relu, inputs: [x], name: "relu2")
            x = try g.add(.dropout(p: 0.3), inputs: [x], name: "drop")
            x = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 5, bias: true), inputs: [x], name: "conv3")
            x = try g.add(.globalAvgPool, inputs: [x], name: "gap")
            try g.add(.softmax, inputs: [x], name: "softmax")
        }
        assertGradientsMatch(report, "All-CNN-like")
    }

    func testInceptionModule() throws {
        let report = try GradientChecker(batch: 2, step: 5e-3, entriesPerTensor: 25).check(input: (6, 6, 4)) { g in
            let b1 = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 3, bias: true), inputs: [0], name: "b1_1x1")
            var b2 = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 2, bias: true), inputs: [0], name: "b2_1x1")
            b2 = try g.add(.relu, inputs: [b2], name: "b2_relu")
            b2 = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 3, bias: true), inputs: [b2], name: "b2_3x3")
            var b3 = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 2, bias: true), inputs: [0], name: "b3_1x1")
            b3 = try g.add(.relu, inputs: [b3], name: "b3_relu")
            b3 = try g.add(.conv(kernel: 5, stride: 1, pad: 2, outChannels: 3, bias: true), inputs: [b3], name: "b3_5x5")
            var b4 = try g.add(.maxPool(kernel: 3, stride: 1, pad: 1), inputs: [0], name: "b4_pool")
            b4 = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 2, bias: true), inputs: [b4], name: "b4_1x1")
            var x = try g.add(.concat, inputs: [b1, b2, b3, b4], name: "cat")
            XCTAssertEqual(g.shape(of: x), EngineShape(height: 6, width: 6, channels: 11))
            x = try g.add(.relu, inputs: [x], name: "relu")
            x = try g.add(.globalAvgPool, inputs: [x], name: "gap")
            try g.add(.softmax, inputs: [x], name: "softmax")
        }
        assertGradientsMatch(report, "inception module")
    }

    /// BN → conv → BN → ReLU → conv → BN, plus a shortcut; the sum is zero-padded on channels.
    private func addPyramidUnit(_ g: EngineGraph, stride: Int, outChannels: Int) throws {
        var x = try g.add(.batchNorm(), inputs: [0], name: "bn1")
        x = try g.add(.conv(kernel: 3, stride: stride, pad: 1, outChannels: outChannels, bias: false), inputs: [x], name: "conv1")
        x = try g.add(.batchNorm(), inputs: [x], name: "bn2")
        x = try g.add(.relu, inputs: [x], name: "relu")
        x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: outChannels, bias: false), inputs: [x], name: "conv2")
        x = try g.add(.batchNorm(), inputs: [x], name: "bn3")
        let shortcut = stride == 1 ? 0 : try g.add(.avgPool(kernel: 2, stride: 2, pad: 0, ceilMode: true), inputs: [0], name: "shortcut")
        x = try g.add(.add, inputs: [x, shortcut], name: "sum")
        x = try g.add(.globalAvgPool, inputs: [x], name: "gap")
        try g.add(.softmax, inputs: [x], name: "softmax")
    }

    func testPyramidUnitWithZeroPaddedIdentityShortcut() throws {
        let report = try GradientChecker(batch: 3, step: 5e-3, entriesPerTensor: 30).check(input: (4, 4, 3)) { g in
            try addPyramidUnit(g, stride: 1, outChannels: 5)
        }
        assertGradientsMatch(report, "PyramidNet unit, identity shortcut")
    }

    func testPyramidUnitWithPooledShortcut() throws {
        let report = try GradientChecker(batch: 3, step: 5e-3, entriesPerTensor: 30).check(input: (6, 6, 3)) { g in
            try addPyramidUnit(g, stride: 2, outChannels: 5)
        }
        assertGradientsMatch(report, "PyramidNet unit, 2×2 pooled shortcut")
    }

    func testMixedNetworkWithoutBufferReuse() throws {
        // The same check with every tensor in its own storage (no planner reuse, no in-place ReLU).
        let report = try GradientChecker(batch: 2, step: 5e-3, entriesPerTensor: 25).check(input: (6, 6, 3), reuseBuffers: false) { g in
            var x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [0], name: "conv1")
            x = try g.add(.batchNorm(), inputs: [x], name: "bn1")
            x = try g.add(.leakyRelu(slope: 0.1), inputs: [x], name: "leaky")
            x = try g.add(.maxPool(kernel: 2, stride: 2, pad: 0, ceilMode: true), inputs: [x], name: "pool")
            x = try g.add(.linear(outFeatures: 4, bias: true), inputs: [x], name: "fc")
            try g.add(.softmax, inputs: [x], name: "softmax")
        }
        assertGradientsMatch(report, "mixed network without reuse")
    }
}
