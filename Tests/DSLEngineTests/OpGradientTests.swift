import XCTest
@testable import DSLEngine

/// Finite-difference checks of every operator's backward pass (parameters and input).
final class OpGradientTests: XCTestCase {
    func testConvolutionGradients() throws {
        try checkConvolutionConfigurations("conv")
    }

    func testConvolutionOnWideChannels() throws {
        // Several im2col chunks per batch are not needed for correctness, but wide channels and a
        // non-square input exercise the run-copy paths of im2col/col2im.
        let report = try GradientChecker(batch: 3).check(input: (5, 9, 6)) { g in
            try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 5, bias: true), inputs: [0], name: "conv1")
            try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 3, bias: false), inputs: [1], name: "conv2")
        }
        assertGradientsMatch(report, "conv chain")
    }

    private let poolConfigurations: [(kernel: Int, stride: Int, pad: Int, ceil: Bool, size: Int)] = [
        (3, 2, 1, false, 7), (3, 1, 1, false, 6), (2, 2, 0, true, 7), (2, 2, 0, false, 6),
        (3, 2, 1, true, 6), (8, 8, 0, false, 8), (8, 1, 0, false, 8),
    ]

    func testMaxPoolGradients() throws {
        for (k, s, p, ceil, size) in poolConfigurations {
            let checker = GradientChecker(step: 2e-3, spacedInput: true)
            let report = try checker.check(input: (size, size, 3)) { g in
                try g.add(.maxPool(kernel: k, stride: s, pad: p, ceilMode: ceil), inputs: [0], name: "pool")
            }
            assertGradientsMatch(report, "maxPool k\(k) s\(s) p\(p) ceil \(ceil)")
        }
    }

    func testAvgPoolGradients() throws {
        for (k, s, p, ceil, size) in poolConfigurations {
            let report = try GradientChecker().check(input: (size, size, 3)) { g in
                try g.add(.avgPool(kernel: k, stride: s, pad: p, ceilMode: ceil), inputs: [0], name: "pool")
            }
            assertGradientsMatch(report, "avgPool k\(k) s\(s) p\(p) ceil \(ceil)")
        }
    }

    func testGlobalAvgPoolGradients() throws {
        let report = try GradientChecker(batch: 3).check(input: (4, 5, 6)) { g in
            try g.add(.globalAvgPool, inputs: [0], name: "gap")
        }
        assertGradientsMatch(report, "globalAvgPool")
    }

    func testReLUGradients() throws {
        let report = try GradientChecker(step: 2e-3, spacedInput: true).check(input: (3, 3, 4)) { g in
            try g.add(.relu, inputs: [0], name: "relu")
        }
        assertGradientsMatch(report, "relu")
        // In place after a convolution (the planner aliases relu's output with the conv output).
        let inPlace = try GradientChecker(step: 2e-3).check(input: (5, 5, 2)) { g in
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 3, bias: true), inputs: [0], name: "conv1")
            try g.add(.relu, inputs: [1], name: "relu")
        }
        assertGradientsMatch(inPlace, "conv → in-place relu")
    }

    func testLeakyReLUGradients() throws {
        for slope: Float in [0.1, 0, -0.2] {
            let report = try GradientChecker(step: 2e-3, spacedInput: true).check(input: (3, 3, 4)) { g in
                try g.add(.leakyRelu(slope: slope), inputs: [0], name: "leaky")
            }
            assertGradientsMatch(report, "leakyRelu \(slope)")
        }
    }

    func testBatchNormGradientsInTraining() throws {
        let report = try GradientChecker(batch: 4).check(input: (3, 3, 5)) { g in
            try g.add(.batchNorm(), inputs: [0], name: "bn1")
        }
        assertGradientsMatch(report, "batchNorm")
        let afterConv = try GradientChecker(batch: 3).check(input: (4, 4, 2)) { g in
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 3, bias: false), inputs: [0], name: "conv1")
            try g.add(.batchNorm(eps: 1e-3, momentum: 0.2), inputs: [1], name: "bn1")
        }
        assertGradientsMatch(afterConv, "conv → batchNorm")
    }

    func testDropoutGradientsWithFixedMask() throws {
        let report = try GradientChecker(batch: 3).check(input: (4, 4, 3)) { g in
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [0], name: "conv1")
            try g.add(.dropout(p: 0.4), inputs: [1], name: "drop")
        }
        assertGradientsMatch(report, "dropout")
    }

    func testConcatGradients() throws {
        // The input fans out to three consumers: its gradient accumulates over all of them.
        let report = try GradientChecker().check(input: (4, 4, 3)) { g in
            let a = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 2, bias: true), inputs: [0], name: "conv1")
            let b = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 3, bias: false), inputs: [0], name: "conv2")
            try g.add(.concat, inputs: [a, b, 0], name: "cat")
        }
        assertGradientsMatch(report, "concat")
        let single = try GradientChecker().check(input: (2, 2, 3)) { g in
            try g.add(.concat, inputs: [0], name: "cat")
        }
        assertGradientsMatch(single, "concat of one input")
    }

    func testAddGradientsWithZeroPaddedChannels() throws {
        let report = try GradientChecker(batch: 3).check(input: (4, 4, 3)) { g in
            let wide = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 5, bias: true), inputs: [0], name: "conv1")
            let mid = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 4, bias: false), inputs: [0], name: "conv2")
            try g.add(.add, inputs: [wide, 0, mid], name: "sum")
        }
        assertGradientsMatch(report, "add with zero padding")
        let narrowFirst = try GradientChecker(batch: 2).check(input: (3, 3, 2)) { g in
            let wide = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 4, bias: true), inputs: [0], name: "conv1")
            try g.add(.add, inputs: [0, wide], name: "sum")
        }
        assertGradientsMatch(narrowFirst, "add with the narrow input first")
        let same = try GradientChecker().check(input: (3, 3, 2)) { g in
            try g.add(.add, inputs: [0, 0], name: "double")
        }
        assertGradientsMatch(same, "add(x, x)")
    }

    func testLinearGradients() throws {
        for bias in [true, false] {
            let report = try GradientChecker(batch: 3).check(input: (3, 2, 4)) { g in
                try g.add(.linear(outFeatures: 5, bias: bias), inputs: [0], name: "fc")
            }
            assertGradientsMatch(report, "linear bias \(bias)")
        }
    }

    func testSoftmaxCrossEntropyGradients() throws {
        let report = try GradientChecker(batch: 4, entriesPerTensor: 100).check(input: (1, 1, 7)) { g in
            try g.add(.softmax, inputs: [0], name: "softmax")
        }
        assertGradientsMatch(report, "softmax cross-entropy")
    }

    /// A softmax inside the network (over channels at every pixel), then more layers and the loss.
    func testSoftmaxInTheMiddleGradients() throws {
        let report = try GradientChecker(batch: 3).check(input: (4, 5, 3)) { g in
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 6, bias: true), inputs: [0], name: "conv1")
            try g.add(.softmax, inputs: [1], name: "attention")
            try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 4, bias: true), inputs: [2], name: "conv2")
            try g.add(.globalAvgPool, inputs: [3], name: "gap")
        }
        assertGradientsMatch(report, "softmax in the middle")
        // Two softmaxes in a row, on the input itself.
        let direct = try GradientChecker(batch: 2, entriesPerTensor: 60).check(input: (3, 2, 5)) { g in
            try g.add(.softmax, inputs: [0], name: "first")
        }
        assertGradientsMatch(direct, "softmax, then the loss's softmax, over a 3x2 map")
    }

    /// The loss of a final softmax over an H×W map: the mean over batch and pixels of each
    /// pixel's cross-entropy against its image's label.
    func testSoftmaxLossOverAMapGradients() throws {
        let report = try GradientChecker(batch: 3).check(input: (5, 3, 2)) { g in
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [0], name: "conv1")
            try g.add(.softmax, inputs: [1], name: "softmax")
        }
        assertGradientsMatch(report, "softmax loss over a 5x3 map")
    }

    func testGradientCheckCatchesWrongGradients() throws {
        // A 3% error on every gradient entry must be reported.
        var checker = GradientChecker()
        checker.corruptAnalytic = { grads in for i in grads.indices { grads[i] *= 1.03 } }
        let scaled = try checker.check(input: (4, 4, 2)) { g in
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 3, bias: true), inputs: [0], name: "conv1")
        }
        XCTAssertFalse(scaled.passed, "scaled gradients passed: \(scaled)")
        // A single wrong entry is found as well.
        checker.corruptAnalytic = { grads in grads[5] += 0.05 + grads[5] }
        let single = try checker.check(input: (4, 4, 2)) { g in
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 3, bias: true), inputs: [0], name: "conv1")
        }
        XCTAssertEqual(single.failures.count, 1, "\(single)")
    }
}
