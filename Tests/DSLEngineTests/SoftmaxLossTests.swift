import XCTest
@testable import DSLEngine

/// Softmax over channels anywhere in the graph, and the loss of the final softmax: computed
/// from the logits (not capped for confident models), averaged over batch and pixels, with
/// predictions from the pixel-mean probabilities.
final class SoftmaxLossTests: XCTestCase {
    /// A graph that is just a softmax on an h×w×c input, compiled.
    private func softmaxGraph(_ h: Int, _ w: Int, _ c: Int, batch: Int) throws -> EngineGraph {
        let g = EngineGraph(inputShape: (h, w, c), maxBatch: batch, seed: 1)
        try g.add(.softmax, inputs: [0], name: "softmax")
        try g.compile(training: false)
        return g
    }

    func testSoftmaxNormalisesOverChannelsAtEveryPixel() throws {
        let g = try softmaxGraph(2, 3, 4, batch: 2)
        var random = TestRandom(3)
        let x = random.normals(2 * 24)
        let y = g.forward(x, batch: 2, training: false)
        for pixel in 0..<12 {
            let logits = x[(pixel * 4)..<(pixel * 4 + 4)].map(Double.init)
            let largest = logits.max()!
            let total = logits.reduce(0) { $0 + exp($1 - largest) }
            for c in 0..<4 {
                XCTAssertEqual(Double(y[pixel * 4 + c]), exp(logits[c] - largest) / total, accuracy: 1e-6)
            }
        }
    }

    func testLossOfAMapIsTheMeanOverBatchAndPixels() throws {
        let (h, w, c, batch) = (3, 2, 5, 2)
        let g = try softmaxGraph(h, w, c, batch: batch)
        var random = TestRandom(4)
        let x = random.normals(batch * h * w * c).map { $0 * 3 }
        let labels: [Int32] = [4, 1]
        g.forward(x, batch: batch, training: false)
        let (loss, correct) = g.lossInDouble(labels: labels, batch: batch)
        var expected = 0.0
        var predictions: [Int] = []
        for n in 0..<batch {
            var mean = [Double](repeating: 0, count: c)
            for p in 0..<(h * w) {
                let logits = x[((n * h * w + p) * c)..<((n * h * w + p + 1) * c)].map(Double.init)
                let logSum = log(logits.reduce(0) { $0 + exp($1) })
                expected += (logSum - logits[Int(labels[n])]) / Double(batch * h * w)
                for k in 0..<c { mean[k] += exp(logits[k] - logSum) / Double(h * w) }
            }
            predictions.append(mean.indices.max { mean[$0] < mean[$1] }!)
        }
        XCTAssertEqual(loss, expected, accuracy: 1e-9)
        XCTAssertEqual(g.predictedClasses(batch: batch), predictions)
        XCTAssertEqual(correct, zip(predictions, labels).filter { $0 == Int($1) }.count)
        XCTAssertEqual(g.classCount, c)
    }

    /// A confident wrong prediction costs its full cross-entropy (PyTorch: logsumexp − logit),
    /// not −log of a probability floored at 1e-30 (69.08).
    func testConfidentLossIsNotCapped() throws {
        let g = try softmaxGraph(1, 1, 3, batch: 2)
        g.forward([0, 200, -50, 10, 0, 0], batch: 2, training: false)
        let (loss, correct) = g.loss(labels: [0, 0], batch: 2)
        let second = 10 + log(1 + 2 * exp(-10.0)) - 10
        XCTAssertEqual(Double(loss), (200 + second) / 2, accuracy: 1e-3)
        XCTAssertEqual(correct, 1)
        XCTAssertEqual(g.predictedClasses(batch: 2), [1, 0])
    }

    /// A softmax in the middle: forward and backward with 1 and 2 threads agree bit for bit.
    func testSoftmaxInTheMiddleIsDeterministic() throws {
        var results: [[Float]] = []
        for threads in [1, 2] {
            try withThreads(threads) {
                let g = EngineGraph(inputShape: (16, 16, 8), maxBatch: 4, seed: 5)
                try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 32, bias: true), inputs: [0], name: "conv1")
                try g.add(.softmax, inputs: [1], name: "attention")
                try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 10, bias: true), inputs: [2], name: "conv2")
                try g.add(.softmax, inputs: [3], name: "softmax")
                try g.compile()
                var random = TestRandom(8)
                let x = random.normals(4 * 16 * 16 * 8)
                let y = g.forward(x, batch: 4, training: true)
                let (loss, _) = g.backward(labels: [1, 2, 3, 9], batch: 4)
                results.append(y + [loss] + Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount)))
            }
        }
        XCTAssertTrue(bitIdentical(results[0], results[1]))
    }

    /// Label smoothing ε (PyTorch's CrossEntropyLoss(label_smoothing=ε)): the loss against the
    /// target (1−ε)·onehot + ε/C, over a map's pixels too, computed here from the definition
    /// −Σ_c t_c·log p_c; ε = 0 is the plain cross-entropy.
    func testLabelSmoothingLossIsCrossEntropyAgainstTheSmoothedTarget() throws {
        let (h, w, c, batch) = (2, 1, 5, 3)
        let g = try softmaxGraph(h, w, c, batch: batch)
        var random = TestRandom(11)
        let x = random.normals(batch * h * w * c).map { $0 * 2 }
        let labels: [Int32] = [4, 0, 2]
        g.forward(x, batch: batch, training: false)
        for epsilon in [0, 0.2, 0.9] as [Double] {
            var expected = 0.0
            for n in 0..<batch {
                for p in 0..<(h * w) {
                    let logits = x[((n * h * w + p) * c)..<((n * h * w + p + 1) * c)].map(Double.init)
                    let logSum = log(logits.reduce(0) { $0 + exp($1) })
                    for k in 0..<c {
                        let target = (k == Int(labels[n]) ? 1 - epsilon : 0) + epsilon / Double(c)
                        expected -= target * (logits[k] - logSum) / Double(batch * h * w)
                    }
                }
            }
            XCTAssertEqual(g.lossInDouble(labels: labels, batch: batch, labelSmoothing: Float(epsilon)).loss, expected, accuracy: 1e-6, "ε \(epsilon)")
        }
        let plain = g.lossInDouble(labels: labels, batch: batch).loss
        XCTAssertNotEqual(plain, g.lossInDouble(labels: labels, batch: batch, labelSmoothing: 0.2).loss)
    }

    /// The smoothed loss's gradient, (p − t)/(B·P), against finite differences through a
    /// conv and a linear layer (an output map of 2×2 pixels and a 1×1 one); and the check
    /// fails for the unsmoothed gradient.
    func testLabelSmoothingGradientMatchesFiniteDifferences() throws {
        var checker = GradientChecker()
        checker.batch = 3
        checker.labelSmoothing = 0.2
        checker.step = 1e-3
        let map = try checker.check(input: (4, 4, 2)) { g in
            try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 6, bias: true), inputs: [0], name: "conv")
        }
        assertGradientsMatch(map, "smoothed loss over a 2x2 map")
        let vector = try checker.check(input: (3, 3, 2)) { g in
            try g.add(.linear(outFeatures: 7, bias: true), inputs: [0], name: "fc")
        }
        assertGradientsMatch(vector, "smoothed loss over logits")
        // The plain cross-entropy's gradient is not the smoothed loss's: the check catches it.
        checker.backwardLabelSmoothing = 0
        let plainGradient = try checker.check(input: (3, 3, 2)) { g in try g.add(.linear(outFeatures: 7, bias: true), inputs: [0], name: "fc") }
        XCTAssertFalse(plainGradient.passed, "\(plainGradient)")
    }
}
