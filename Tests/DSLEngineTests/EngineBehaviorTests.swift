import XCTest
@testable import DSLEngine

/// Semantics beyond gradients: PyTorch conventions, determinism, planner safety, accounting.
final class EngineBehaviorTests: XCTestCase {
    /// A mid-size network touching every operator.
    private func makeMidSizeNetwork(seed: UInt64 = 7, maxBatch: Int = 8, reuse: Bool = true,
                                    training: Bool = true) throws -> EngineGraph {
        let g = EngineGraph(inputShape: (16, 16, 3), maxBatch: maxBatch, seed: seed)
        var x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 16, bias: false), inputs: [0], name: "conv1")
        x = try g.add(.batchNorm(), inputs: [x], name: "bn1")
        x = try g.add(.relu, inputs: [x], name: "relu1")
        x = try g.add(.maxPool(kernel: 3, stride: 2, pad: 1, ceilMode: true), inputs: [x], name: "pool1")
        let a = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 8, bias: true), inputs: [x], name: "a1x1")
        var b = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 6, bias: true), inputs: [x], name: "b1x1")
        b = try g.add(.leakyRelu(slope: 0.1), inputs: [b], name: "b_leaky")
        b = try g.add(.conv(kernel: 5, stride: 1, pad: 2, outChannels: 8, bias: true), inputs: [b], name: "b5x5")
        var y = try g.add(.concat, inputs: [a, b], name: "cat")
        y = try g.add(.add, inputs: [y, x], name: "sum")
        y = try g.add(.relu, inputs: [y], name: "relu2")
        y = try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 24, bias: false), inputs: [y], name: "conv2")
        y = try g.add(.batchNorm(), inputs: [y], name: "bn2")
        y = try g.add(.relu, inputs: [y], name: "relu3")
        y = try g.add(.avgPool(kernel: 3, stride: 2, pad: 1), inputs: [y], name: "pool2")
        y = try g.add(.dropout(p: 0.2), inputs: [y], name: "drop")
        let gap = try g.add(.globalAvgPool, inputs: [y], name: "gap")
        let fc = try g.add(.linear(outFeatures: 10, bias: true), inputs: [y], name: "fc")
        let gapFC = try g.add(.linear(outFeatures: 10, bias: false), inputs: [gap], name: "gap_fc")
        y = try g.add(.add, inputs: [fc, gapFC], name: "logits")
        try g.add(.softmax, inputs: [y], name: "softmax")
        try g.compile(training: training, reuseBuffers: reuse)
        return g
    }

    private func batchData(_ batch: Int, count: Int, classes: Int = 10) -> ([Float], [Int32]) {
        var random = TestRandom(99)
        return (random.normals(batch * count), (0..<batch).map { _ in Int32(random.int(classes)) })
    }

    func testForwardAndBackwardIdenticalWithOneAndTwoThreads() throws {
        let saved = engineThreadCount
        defer { engineThreadCount = saved }
        var results: [[Float]] = []
        for threads in [1, 2] {
            engineThreadCount = threads
            let g = try makeMidSizeNetwork()
            let (x, labels) = batchData(8, count: g.inputShape.count)
            g.reseedDropout(5)
            let train = g.forward(x, batch: 8, training: true)
            g.backward(labels: labels, batch: 8)
            let grads = Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount))
            let eval = g.forward(x, batch: 8, training: false)
            let running = g.buffers.flatMap { Array(UnsafeBufferPointer(start: $0.value, count: $0.count)) }
            results.append(train + grads + eval + running)
        }
        XCTAssertEqual(results[0].count, results[1].count)
        XCTAssertTrue(results[0].elementsEqual(results[1]) { $0.bitPattern == $1.bitPattern },
                      "results differ between 1 and 2 threads")
    }

    func testSmallerBatchesMatchTheFirstSamplesOfALargerOne() throws {
        let g = try makeMidSizeNetwork()
        let (x, labels) = batchData(8, count: g.inputShape.count)
        let full: [Float] = g.forward(x, batch: 8, training: false)
        let firstThree = Array(x[0..<(3 * g.inputShape.count)])
        let part: [Float] = g.forward(firstThree, batch: 3, training: false)
        // Approximate: a blocked GEMM may round rows differently depending on the row count.
        for (p, f) in zip(part, full[0..<(3 * 10)]) { XCTAssertEqual(p, f, accuracy: 1e-5 * max(1, abs(f))) }
        // Training on a smaller batch after a larger one: no stale data from the larger batch leaks in.
        let fresh = try makeMidSizeNetwork()
        let small = Array(x[0..<(3 * g.inputShape.count)]), smallLabels = Array(labels[0..<3])
        for graph in [g, fresh] { graph.reseedDropout(9) }
        g.forward(x, batch: 8, training: true)
        g.backward(labels: labels, batch: 8)
        g.reseedDropout(9)
        let a: [Float] = g.forward(small, batch: 3, training: true)
        let lossA = g.backward(labels: smallLabels, batch: 3).loss
        let b: [Float] = fresh.forward(small, batch: 3, training: true)
        let lossB = fresh.backward(labels: smallLabels, batch: 3).loss
        XCTAssertEqual(a, b)
        XCTAssertEqual(lossA, lossB)
        XCTAssertEqual(Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount)),
                       Array(UnsafeBufferPointer(start: fresh.parameterGrads, count: fresh.parameterCount)))
    }

    func testConvolutionSplitIntoSeveralIm2colChunks() throws {
        let saved = ConvKernel.columnBudgetFloats
        defer { ConvKernel.columnBudgetFloats = saved }
        func build(_ g: EngineGraph) throws {
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [0], name: "conv1")
            try g.add(.conv(kernel: 5, stride: 2, pad: 2, outChannels: 3, bias: true), inputs: [1], name: "conv2")
        }
        // One sample per chunk: 3 chunks for a batch of 3.
        ConvKernel.columnBudgetFloats = 1
        assertGradientsMatch(try GradientChecker(batch: 3).check(input: (5, 5, 2), build: build), "conv, one sample per im2col chunk")
        let chunked = EngineGraph(inputShape: (5, 5, 2), maxBatch: 3, seed: 4)
        try build(chunked)
        try chunked.compile()
        ConvKernel.columnBudgetFloats = saved
        let whole = EngineGraph(inputShape: (5, 5, 2), maxBatch: 3, seed: 4)
        try build(whole)
        try whole.compile()
        XCTAssertLessThan(chunked.memoryPlan.scratchBytes, whole.memoryPlan.scratchBytes)
        var random = TestRandom(5)
        let x = random.normals(3 * 50)
        let chunkedOutput: [Float] = chunked.forward(x, batch: 3, training: true)
        let wholeOutput: [Float] = whole.forward(x, batch: 3, training: true)
        for (c, w) in zip(chunkedOutput, wholeOutput) { XCTAssertEqual(c, w, accuracy: 1e-5 * max(1, abs(w))) }
    }

    func testPlannerReuseGivesSameGradientsAsNoReuse() throws {
        let reused = try makeMidSizeNetwork(reuse: true)
        let separate = try makeMidSizeNetwork(reuse: false)
        XCTAssertLessThan(reused.memoryPlan.activationBytes, separate.memoryPlan.activationBytes)
        XCTAssertEqual(separate.memoryPlan.activationBytes, separate.memoryPlan.unplannedActivationBytes)
        let (x, labels) = batchData(6, count: reused.inputShape.count)
        for g in [reused, separate] { g.reseedDropout(3) }
        // Two steps, so that stale data left in reused storage by the first would show.
        for _ in 0..<2 {
            var outputs: [[Float]] = []
            var grads: [[Float]] = []
            var losses: [Float] = []
            for g in [reused, separate] {
                outputs.append(g.forward(x, batch: 6, training: true))
                losses.append(g.backward(labels: labels, batch: 6).loss)
                grads.append(Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount)))
            }
            XCTAssertEqual(outputs[0], outputs[1])
            XCTAssertEqual(losses[0], losses[1])
            XCTAssertEqual(grads[0], grads[1])
            XCTAssertTrue(grads[0].contains { $0 != 0 })
        }
    }

    /// A ReLU in place on a convolution's output is applied by the convolution's store, for
    /// every convolution algorithm: outputs, loss and gradients are bit-identical to a separate
    /// ReLU pass (a graph without buffer reuse runs no ReLU in place, so fuses nothing).
    func testReLUFusedIntoEachConvolutionAlgorithmMatchesASeparateReLU() throws {
        // (input h, w, c), kernel, stride, pad, output channels, bias, the algorithm chosen.
        let cases: [((Int, Int, Int), Int, Int, Int, Int, Bool, String)] = [
            ((8, 8, 16), 3, 1, 1, 16, true, "winograd"),
            ((8, 8, 16), 3, 1, 1, 16, false, "winograd"),
            ((9, 9, 3), 3, 1, 1, 96, true, "direct"),   // first layer: streaming stores, dW partial sums
            ((9, 9, 16), 3, 2, 1, 48, true, "direct"),
            ((6, 6, 16), 1, 1, 0, 20, true, "gemm"),
            ((7, 7, 4), 5, 1, 2, 8, true, "im2col+gemm"),
            ((7, 7, 4), 5, 1, 0, 8, false, "im2col+gemm"),
        ]
        let saved = ConvKernel.directOverride, savedTiles = ConvKernel.winogradMinTiles
        defer { ConvKernel.directOverride = saved; ConvKernel.winogradMinTiles = savedTiles }
        ConvKernel.winogradMinTiles = 0   // Winograd on these small maps too
        for (shape, k, stride, pad, oc, bias, algorithm) in cases {
            // These shapes run direct; the test hook turns the direct kernels off for im2col.
            ConvKernel.directOverride = algorithm == "im2col+gemm" ? false : nil
            let label = "\(shape) k\(k) s\(stride) p\(pad) → \(oc)\(bias ? "+bias" : "")"
            var outputs: [[Float]] = [], grads: [[Float]] = [], losses: [Float] = []
            for reuse in [true, false] {
                let g = EngineGraph(inputShape: shape, maxBatch: 3, seed: 5)
                let c = try g.add(.conv(kernel: k, stride: stride, pad: pad, outChannels: oc, bias: bias), inputs: [0], name: "c")
                let r = try g.add(.relu, inputs: [c], name: "r")
                let f = try g.add(.globalAvgPool, inputs: [r], name: "gap")
                let l = try g.add(.linear(outFeatures: 10, bias: true), inputs: [f], name: "fc")
                try g.add(.softmax, inputs: [l], name: "softmax")
                try g.compile(training: true, reuseBuffers: reuse)
                XCTAssertEqual(g.algorithm(of: c), algorithm, label)
                XCTAssertEqual(g.algorithm(of: r), reuse ? "fused fwd" : nil, label)
                let (x, labels) = batchData(3, count: g.inputShape.count)
                _ = g.forward(x, batch: 3, training: true)
                outputs.append(Array(UnsafeBufferPointer(start: g.outputStorage(of: r), count: 3 * g.shape(of: r).count)))
                losses.append(g.backward(labels: labels, batch: 3).loss)
                grads.append(Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount)))
            }
            XCTAssertTrue(outputs[0].contains { $0 > 0 } && outputs[0].contains { $0 == 0 }, label)
            XCTAssertTrue(outputs[0].elementsEqual(outputs[1]) { $0.bitPattern == $1.bitPattern }, label)
            XCTAssertEqual(losses[0].bitPattern, losses[1].bitPattern, label)
            XCTAssertTrue(grads[0].elementsEqual(grads[1]) { $0.bitPattern == $1.bitPattern }, label)
        }
    }

    func testInferenceCompiledGraphMatchesAndUsesLessMemory() throws {
        let trainer = try makeMidSizeNetwork(training: true)
        let inference = try makeMidSizeNetwork(training: false)
        let (x, _) = batchData(4, count: trainer.inputShape.count)
        let expected = trainer.forward(x, batch: 4, training: false)
        // Its batch norms are folded into the convolutions before them: equal within rounding.
        XCTAssertFalse(inference.foldedBatchNorms.isEmpty)
        let folded = inference.forward(x, batch: 4, training: false)
        XCTAssertEqual(folded.count, expected.count)
        for (a, b) in zip(folded, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        // Without folding, the same bits.
        EngineGraph.foldsBatchNorm = false
        defer { EngineGraph.foldsBatchNorm = true }
        let unfolded = try makeMidSizeNetwork(training: false)
        XCTAssertEqual(unfolded.foldedBatchNorms, [])
        XCTAssertEqual(expected, unfolded.forward(x, batch: 4, training: false))
        XCTAssertLessThan(inference.memoryPlan.activationBytes, trainer.memoryPlan.activationBytes)
        XCTAssertLessThan(inference.plannedBytes, trainer.plannedBytes)
    }

    func testPlannerNeverOverlapsLiveTensors() {
        var random = TestRandom(4)
        for _ in 0..<200 {
            let tensors = (0..<random.int(30) + 1).map { _ -> PlannedTensor in
                let start = random.int(40)
                let end = random.int(5) == 0 ? Int.max : start + random.int(15)
                return PlannedTensor(floats: random.int(1000) + 1, start: start, end: end)
            }
            let plan = planArena(tensors, reuse: true)
            for i in tensors.indices {
                XCTAssertLessThanOrEqual(plan.offsets[i] + tensors[i].floats, plan.totalFloats)
                for j in tensors.indices where j > i {
                    let liveTogether = tensors[i].start <= tensors[j].end && tensors[j].start <= tensors[i].end
                    let overlap = plan.offsets[i] < plan.offsets[j] + tensors[j].floats
                        && plan.offsets[j] < plan.offsets[i] + tensors[i].floats
                    XCTAssertFalse(liveTogether && overlap, "tensors \(i) and \(j) share storage while both live")
                }
            }
        }
        // Disjoint lifetimes share; touching ones do not.
        let shared = planArena([PlannedTensor(floats: 64, start: 0, end: 1), PlannedTensor(floats: 64, start: 2, end: 3)], reuse: true)
        XCTAssertEqual(shared.totalFloats, 64)
        let touching = planArena([PlannedTensor(floats: 64, start: 0, end: 1), PlannedTensor(floats: 64, start: 1, end: 3)], reuse: true)
        XCTAssertEqual(touching.totalFloats, 128)
    }

    func testReLURunsInPlaceOnlyWhereSafe() throws {
        func addNodes(_ g: EngineGraph) throws {
            try g.add(.relu, inputs: [0], name: "r0")                                                      // 1: on the input
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 3, bias: true), inputs: [1], name: "c1") // 2
            try g.add(.relu, inputs: [2], name: "r1")                                                      // 3: sole consumer of c1
            try g.add(.relu, inputs: [3], name: "r2")                                                      // 4: r1's output is needed by r1's backward
            try g.add(.batchNorm(), inputs: [4], name: "bn")                                               // 5
            try g.add(.leakyRelu(slope: 0.1), inputs: [5], name: "l1")                                     // 6
            try g.add(.add, inputs: [6, 5], name: "sum")                                                   // 7: bn has two consumers
            try g.add(.relu, inputs: [5], name: "r3")                                                      // 8
            try g.add(.add, inputs: [7, 8], name: "sum2")                                                  // 9
            try g.add(.softmax, inputs: [9], name: "softmax")
        }
        func build(training: Bool, reuse: Bool = true) throws -> EngineGraph {
            let g = EngineGraph(inputShape: (4, 4, 2), maxBatch: 2, seed: 1)
            try addNodes(g)
            try g.compile(training: training, reuseBuffers: reuse)
            return g
        }
        let train = try build(training: true)
        XCTAssertNotEqual(train.outputStorage(of: 1), train.outputStorage(of: 0), "the input is never overwritten")
        XCTAssertEqual(train.outputStorage(of: 3), train.outputStorage(of: 2))
        XCTAssertNotEqual(train.outputStorage(of: 4), train.outputStorage(of: 3))
        XCTAssertNotEqual(train.outputStorage(of: 6), train.outputStorage(of: 5))
        XCTAssertNotEqual(train.outputStorage(of: 8), train.outputStorage(of: 5))
        let inference = try build(training: false)
        XCTAssertEqual(inference.outputStorage(of: 4), inference.outputStorage(of: 2), "relu chains share storage in inference")
        let separate = try build(training: true, reuse: false)
        XCTAssertNotEqual(separate.outputStorage(of: 3), separate.outputStorage(of: 2))
        assertGradientsMatch(try GradientChecker(step: 5e-3).check(input: (4, 4, 2), build: addNodes), "in-place decisions")
    }

    /// In a graph compiled for inference only a dropout is the identity and runs in place
    /// (no copy); in a training graph, or on the input, or when its input has another reader,
    /// it keeps its own storage. The outputs equal the training graph's eval outputs.
    func testDropoutRunsInPlaceInInferenceGraphs() throws {
        func build(training: Bool) throws -> EngineGraph {
            let g = EngineGraph(inputShape: (5, 4, 3), maxBatch: 2, seed: 3)
            try g.add(.dropout(p: 0.3), inputs: [0], name: "d0")                                           // 1: on the input
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 6, bias: true), inputs: [1], name: "c") // 2
            try g.add(.dropout(p: 0.5), inputs: [2], name: "d1")                                           // 3: sole reader of c
            try g.add(.dropout(p: 0.5), inputs: [3], name: "d2")                                           // 4: a chain
            try g.add(.relu, inputs: [4], name: "r")                                                       // 5
            try g.add(.dropout(p: 0.2), inputs: [5], name: "d3")                                           // 6: r has two readers
            try g.add(.add, inputs: [6, 5], name: "sum")                                                   // 7
            try g.add(.globalAvgPool, inputs: [7], name: "gap")
            try g.add(.softmax, inputs: [8], name: "softmax")
            try g.compile(training: training)
            return g
        }
        let inference = try build(training: false), train = try build(training: true)
        XCTAssertNotEqual(inference.outputStorage(of: 1), inference.outputStorage(of: 0), "the input is never overwritten")
        XCTAssertEqual(inference.outputStorage(of: 3), inference.outputStorage(of: 2))
        XCTAssertEqual(inference.outputStorage(of: 4), inference.outputStorage(of: 2))
        XCTAssertNotEqual(inference.outputStorage(of: 6), inference.outputStorage(of: 5))
        for j in [3, 4] { XCTAssertNotEqual(train.outputStorage(of: j), train.outputStorage(of: j - 1)) }
        var random = TestRandom(5)
        let x = random.normals(2 * 5 * 4 * 3)
        inference.forward(x, batch: 2, training: false)
        train.forward(x, batch: 2, training: false)
        for j in [8, 9] {   // (the training graph reuses the storage of earlier nodes)
            let count = 2 * inference.shape(of: j).count
            let a = Array(UnsafeBufferPointer(start: inference.outputStorage(of: j), count: count))
            let b = Array(UnsafeBufferPointer(start: train.outputStorage(of: j), count: count))
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "node \(j)")
        }
    }

    func testBatchNormTrainingUpdatesRunningStatisticsLikePyTorch() throws {
        let g = EngineGraph(inputShape: (2, 3, 2), maxBatch: 4, seed: 1)
        try g.add(.batchNorm(eps: 1e-5, momentum: 0.1), inputs: [0], name: "bn1")
        try g.compile()
        XCTAssertEqual(g.buffers.map(\.name), ["bn1.running_mean", "bn1.running_var"])
        XCTAssertEqual(g.parameters.map(\.name), ["bn1.weight", "bn1.bias"])
        var random = TestRandom(3)
        let x = random.normals(4 * 12).map { $0 * 2 + 1 }
        let y = g.forward(x, batch: 4, training: true)
        for c in 0..<2 {
            let values = stride(from: c, to: x.count, by: 2).map { Double(x[$0]) }
            let mean = values.reduce(0, +) / Double(values.count)
            let biased = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            let unbiased = biased * Double(values.count) / Double(values.count - 1)
            XCTAssertEqual(Double(g.buffers[0].value[c]), 0.1 * mean, accuracy: 1e-6)
            XCTAssertEqual(Double(g.buffers[1].value[c]), 0.9 + 0.1 * unbiased, accuracy: 1e-5)
            // Output normalised with the biased batch variance.
            let expected = (Double(x[c]) - mean) / (biased + 1e-5).squareRoot()
            XCTAssertEqual(Double(y[c]), expected, accuracy: 1e-5)
        }
    }

    func testBatchNormEvalUsesRunningStatistics() throws {
        let g = EngineGraph(inputShape: (1, 2, 3), maxBatch: 2, seed: 1)
        try g.add(.batchNorm(eps: 1e-3), inputs: [0], name: "bn")
        try g.compile()
        let (gamma, beta) = (g.parameters[0].value, g.parameters[1].value)
        let (mean, variance) = (g.buffers[0].value, g.buffers[1].value)
        for c in 0..<3 {
            gamma[c] = Float(c) + 0.5
            beta[c] = -Float(c)
            mean[c] = Float(c) * 0.3
            variance[c] = Float(c) + 2
        }
        let x: [Float] = [1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6]
        let y = g.forward(x, batch: 2, training: false)
        for i in 0..<12 {
            let c = i % 3
            let expected = (x[i] - mean[c]) / (variance[c] + 1e-3).squareRoot() * gamma[c] + beta[c]
            XCTAssertEqual(y[i], expected, accuracy: 1e-5)
        }
        XCTAssertEqual(mean[2], 0.6, "eval must not update running statistics")
    }

    func testDropoutIsInactiveInEvalAndInvertedInTraining() throws {
        let g = EngineGraph(inputShape: (8, 8, 16), maxBatch: 4, seed: 1)
        try g.add(.dropout(p: 0.25), inputs: [0], name: "drop")
        try g.compile()
        var random = TestRandom(8)
        let x = random.normals(4 * 1024).map { abs($0) + 0.5 }
        XCTAssertEqual(g.forward(x, batch: 4, training: false), x)
        let first = g.forward(x, batch: 4, training: true)
        var kept = 0
        for (out, inp) in zip(first, x) {
            if out != 0 {
                kept += 1
                XCTAssertEqual(out, inp / 0.75, accuracy: 1e-6)
            }
        }
        XCTAssertEqual(Double(kept) / Double(x.count), 0.75, accuracy: 0.03)
        let second = g.forward(x, batch: 4, training: true)
        XCTAssertNotEqual(first, second, "each training pass draws a new mask")
        g.reseedDropout(42)
        let third = g.forward(x, batch: 4, training: true)
        g.reseedDropout(42)
        XCTAssertEqual(g.forward(x, batch: 4, training: true), third, "re-seeding repeats the mask")
    }

    func testPoolingFollowsPyTorchSemantics() throws {
        // Output sizes (values from torch.nn.MaxPool2d / AvgPool2d).
        let sizes: [(input: Int, k: Int, s: Int, p: Int, ceil: Bool, expected: Int)] = [
            (32, 3, 2, 1, false, 16), (7, 3, 2, 1, false, 4), (6, 3, 2, 0, false, 2), (6, 3, 2, 0, true, 3),
            (5, 2, 2, 1, true, 3), (7, 2, 2, 0, true, 4), (7, 2, 2, 0, false, 3), (4, 3, 2, 1, true, 3),
            (112, 3, 2, 0, true, 56), (8, 8, 1, 0, false, 1),
            // Ceil mode: the last window may overhang the padded input by up to stride − 1.
            (1, 2, 2, 0, true, 1), (3, 4, 2, 0, true, 1), (2, 3, 2, 0, true, 1), (5, 4, 3, 1, true, 2),
        ]
        for t in sizes {
            let x = EngineShape(height: t.input, width: t.input, channels: 1)
            for op in [EngineOp.maxPool(kernel: t.k, stride: t.s, pad: t.p, ceilMode: t.ceil),
                       .avgPool(kernel: t.k, stride: t.s, pad: t.p, ceilMode: t.ceil)] {
                XCTAssertEqual(try op.outputShape(inputs: [x], node: "pool").height, t.expected, "\(t)")
            }
        }
        // count_include_pad averages over a ceil-mode output on an all-ones 4×4 input.
        let g = EngineGraph(inputShape: (4, 4, 1), maxBatch: 1, seed: 1)
        try g.add(.avgPool(kernel: 3, stride: 2, pad: 1, ceilMode: true), inputs: [0], name: "pool")
        try g.compile(training: false)
        XCTAssertEqual(g.outputShape, EngineShape(height: 3, width: 3, channels: 1))
        let y = g.forward([Float](repeating: 1, count: 16), batch: 1, training: false)
        let numerators: [Float] = [4, 6, 2, 6, 1, 3, 2, 3, 1]
        let denominators: [Float] = [9, 9, 6, 9, 1, 6, 6, 6, 4]
        let expected = zip(numerators, denominators).map { $0 / $1 }
        for (a, b) in zip(y, expected) { XCTAssertEqual(a, b, accuracy: 1e-6) }
        // Max pooling ignores padding (−∞) and picks window maxima.
        let m = EngineGraph(inputShape: (3, 3, 1), maxBatch: 1, seed: 1)
        try m.add(.maxPool(kernel: 2, stride: 2, pad: 1), inputs: [0], name: "pool")
        try m.compile(training: false)
        let x: [Float] = [-1, -2, -3, -4, -5, -6, -7, -8, -9]
        XCTAssertEqual(m.forward(x, batch: 1, training: false), [-1, -2, -4, -5])
    }

    func testSoftmaxIsStableForLargeLogits() throws {
        let g = EngineGraph(inputShape: (1, 1, 3), maxBatch: 2, seed: 1)
        try g.add(.softmax, inputs: [0], name: "softmax")
        try g.compile()
        let p = g.forward([1000, 0, -1000, 1, 2, 3], batch: 2, training: true)
        XCTAssertEqual(Array(p[0..<3]), [1, 0, 0])
        let sum = p[3] + p[4] + p[5]
        XCTAssertEqual(sum, 1, accuracy: 1e-6)
        let (loss, correct) = g.backward(labels: [1, 2], batch: 2)
        let second = log(exp(1.0) + exp(2.0) + exp(3.0)) - 3
        XCTAssertEqual(Double(loss), (1000 + second) / 2, accuracy: 1e-3)
        XCTAssertEqual(correct, 1)
    }

    func testParametersAreNamedContiguousAndSeeded() throws {
        func build(seed: UInt64) throws -> EngineGraph {
            let g = EngineGraph(inputShape: (8, 8, 16), maxBatch: 2, seed: seed)
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 64, bias: true), inputs: [0], name: "conv1")
            try g.add(.batchNorm(), inputs: [1], name: "bn1")
            try g.add(.linear(outFeatures: 10, bias: true), inputs: [2], name: "fc")
            try g.add(.softmax, inputs: [3], name: "softmax")
            try g.compile()
            return g
        }
        let g = try build(seed: 11)
        XCTAssertEqual(g.parameters.map(\.name), ["conv1.weight", "conv1.bias", "bn1.weight", "bn1.bias", "fc.weight", "fc.bias"])
        XCTAssertEqual(g.parameters.map(\.shape), [[3, 3, 16, 64], [64], [64], [64], [4096, 10], [10]])
        var offset = 0
        for p in g.parameters {
            XCTAssertEqual(p.offset, offset)
            XCTAssertEqual(p.value, g.parameterValues + offset)
            XCTAssertEqual(p.grad, g.parameterGrads + offset)
            offset += p.count
        }
        XCTAssertEqual(offset, g.parameterCount)
        func std(_ p: EngineParameter) -> Double {
            let v = (0..<p.count).map { Double(p.value[$0]) }
            let mean = v.reduce(0, +) / Double(v.count)
            return (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        }
        let convStd: Double = (2.0 / 576).squareRoot()
        let linearStd: Double = (1.0 / 4096).squareRoot()
        XCTAssertEqual(std(g.parameters[0]), convStd, accuracy: 0.03 * convStd)
        XCTAssertEqual(std(g.parameters[4]), linearStd, accuracy: 0.03 * linearStd)
        XCTAssertTrue((0..<64).allSatisfy { g.parameters[1].value[$0] == 0 && g.parameters[2].value[$0] == 1 && g.parameters[3].value[$0] == 0 })
        let same = try build(seed: 11), other = try build(seed: 12)
        let values = { (g: EngineGraph) in Array(UnsafeBufferPointer(start: g.parameterValues, count: g.parameterCount)) }
        XCTAssertEqual(values(g), values(same))
        XCTAssertNotEqual(values(g), values(other))
    }

    func testGradientsAccumulateAcrossFanOutAndAreZeroedPerBackward() throws {
        let g = EngineGraph(inputShape: (4, 4, 2), maxBatch: 2, seed: 1)
        let c = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 3, bias: true), inputs: [0], name: "conv")
        let sum = try g.add(.add, inputs: [c, c], name: "twice")
        try g.add(.softmax, inputs: [sum], name: "softmax")
        try g.compile()
        var random = TestRandom(1)
        let x = random.normals(64)
        g.forward(x, batch: 2, training: true)
        let first = g.backward(labels: [1, 2], batch: 2)
        let grads = Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount))
        g.forward(x, batch: 2, training: true)
        let second = g.backward(labels: [1, 2], batch: 2)
        XCTAssertEqual(first.loss, second.loss)
        XCTAssertEqual(grads, Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount)))
    }

    func testShapeErrorsAreThrownWithNodeNames() throws {
        let g = EngineGraph(inputShape: (8, 8, 3), maxBatch: 1, seed: 1)
        let a = try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 4, bias: false), inputs: [0], name: "a")
        XCTAssertEqual(g.shape(of: a), EngineShape(height: 4, width: 4, channels: 4))
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        XCTAssertTrue(message { try g.add(.concat, inputs: [0, a], name: "cat") }.contains("'cat'"))
        XCTAssertTrue(message { try g.add(.add, inputs: [a], name: "sum") }.contains("at least 2"))
        XCTAssertTrue(message { try g.add(.conv(kernel: 9, stride: 1, pad: 0, outChannels: 1, bias: false), inputs: [a], name: "big") }
            .contains("larger than"))
        XCTAssertTrue(message { try g.add(.maxPool(kernel: 3, stride: 1, pad: 2), inputs: [a], name: "pad") }.contains("half"))
        XCTAssertTrue(message { try g.add(.relu, inputs: [5], name: "r") }.contains("does not exist"))
        XCTAssertTrue(message { try g.add(.relu, inputs: [a], name: "a") }.contains("already used"))
        XCTAssertTrue(message { try g.add(.dropout(p: 1), inputs: [a], name: "d") }.contains("[0, 1)"))
        XCTAssertTrue(message { try g.add(.relu, inputs: [0, a], name: "r2") }.contains("exactly 1"))
        // A softmax is an ordinary node: others may follow it.
        let softmax = try g.add(.softmax, inputs: [a], name: "softmax")
        try g.add(.relu, inputs: [softmax], name: "late")
        XCTAssertEqual(g.outputShape, EngineShape(height: 4, width: 4, channels: 4))
    }

    func testPlannedBytesAccounting() throws {
        let g = try makeMidSizeNetwork()
        let plan = g.memoryPlan
        let parts: [Int] = [plan.activationBytes, plan.scratchBytes, plan.parameterBytes, plan.gradientBytes, plan.bufferBytes]
        XCTAssertEqual(g.plannedBytes, parts.reduce(0, +))
        XCTAssertEqual(plan.parameterBytes, 4 * g.parameterCount)
        XCTAssertEqual(plan.gradientBytes, 4 * g.parameterCount)
        XCTAssertEqual(plan.bufferBytes, 4 * 2 * (16 + 24))
        // At least the input, the logits and the probabilities are live at the end.
        let liveAtEnd: Int = 4 * 8 * (16 * 16 * 3 + 10 + 10)
        XCTAssertGreaterThanOrEqual(plan.activationBytes, liveAtEnd)
        XCTAssertGreaterThan(plan.scratchBytes, 0)
    }
    /// Large buffers are 2 MiB aligned, zeroed and advised to use transparent huge pages (the
    /// mapping holding them carries the kernel's `hg` flag, set by `madvise(MADV_HUGEPAGE)`).
    /// (Whether a small buffer's mapping has it is malloc's business: a thread arena's heap
    /// that once held an advised large block keeps the flag.) The test checks the advice, which is what the engine controls: whether
    /// the kernel then backs the range with huge pages (`THPeligible`) also depends on the
    /// machine (a process may have THP disabled by `prctl`, as a CI container did).
    func testLargeBuffersAskForHugePages() throws {
        let count = 3 * hugePageThreshold / 4   // 3 × threshold bytes
        let big = try allocateFloats(count)
        defer { releaseMemory(big) }
        XCTAssertEqual(Int(bitPattern: big) % hugePageBytes, 0)
        XCTAssertTrue((0..<count).allSatisfy { big[$0] == 0 })
        let small = try allocateFloats(1000)
        defer { releaseMemory(small) }
        XCTAssertEqual(Int(bitPattern: small) % 64, 0)
        guard FileManager.default.fileExists(atPath: "/sys/kernel/mm/transparent_hugepage/enabled"),
              // Read to the end: String(contentsOfFile:) stops early on /proc files.
              let data = FileHandle(forReadingAtPath: "/proc/self/smaps")?.readDataToEndOfFile(),
              let smaps = String(data: data, encoding: .utf8), smaps.contains("VmFlags:") else {
            throw XCTSkip("this kernel has no transparent huge pages or no VmFlags in smaps")
        }
        // The VmFlags of the mapping holding `address`.
        func flags(at address: UInt) -> [Substring]? {
            var inside = false
            for line in smaps.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if let range = fields.first, range.contains("-"), !range.hasSuffix(":") {
                    let bounds = range.split(separator: "-").compactMap { UInt($0, radix: 16) }
                    inside = bounds.count == 2 && bounds[0] <= address && address < bounds[1]
                } else if inside && fields.first == "VmFlags:" {
                    return Array(fields.dropFirst())
                }
            }
            return nil
        }
        let bigFlags = try XCTUnwrap(flags(at: UInt(bitPattern: big)), "no mapping holds the large buffer")
        XCTAssertTrue(bigFlags.contains("hg"), "the large buffer was not advised to use huge pages: \(bigFlags)")
    }
}
