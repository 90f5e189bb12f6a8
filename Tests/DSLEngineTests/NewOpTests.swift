import XCTest
import Foundation
@testable import DSLEngine

/// The activations, the broadcasting product and adaptive average pooling against Double
/// references (PyTorch's definitions and autograd's gradients at the kinks), on guarded tensors
/// with 1 and 2 threads (bit-identical), and finite-difference gradient checks through graphs.
final class NewOpTests: XCTestCase {
    private func padded(_ values: [Float], to count: Int) -> [Float] {
        values + [Float](repeating: poison, count: count - values.count)
    }

    // MARK: Activations

    /// PyTorch's forward, in Double.
    static func reference(_ a: EngineActivation, _ x: Double) -> Double {
        switch a {
        case .gelu: return 0.5 * x * (1 + erf(x / 2.0.squareRoot()))
        case .silu: return x / (1 + exp(-x))
        case .relu6: return min(max(x, 0), 6)
        case .hardswish: return x * min(max(x + 3, 0), 6) / 6
        case .hardsigmoid: return min(max(x + 3, 0), 6) / 6
        case .sigmoid: return 1 / (1 + exp(-x))
        case .tanh: return Foundation.tanh(x)
        }
    }

    /// Autograd's derivative, in Double (aten/src/ATen/native/cpu/Activation.cpp conventions).
    static func referenceDerivative(_ a: EngineActivation, _ x: Double) -> Double {
        switch a {
        case .gelu: return 0.5 * (1 + erf(x / 2.0.squareRoot())) + x * exp(-x * x / 2) / (2 * Double.pi).squareRoot()
        case .silu: let s = 1 / (1 + exp(-x)); return s * (1 + x * (1 - s))
        case .relu6: return x > 0 && x < 6 ? 1 : 0                      // hardtanh_backward
        case .hardswish: return x < -3 ? 0 : (x <= 3 ? x / 3 + 0.5 : 1)  // hardswish_backward
        case .hardsigmoid: return x > -3 && x < 3 ? 1.0 / 6 : 0          // hardsigmoid_backward
        case .sigmoid: let s = 1 / (1 + exp(-x)); return s * (1 - s)
        case .tanh: let t = Foundation.tanh(x); return 1 - t * t
        }
    }

    func testActivationsAgainstReferenceWithKinks() throws {
        var random = TestRandom(31)
        var failures: [String] = []
        let kinks: [Float] = [0, 6, -3, 3, -0.0, 1e-7, -1e-7, 5.9999995, 6.0000005, -3.0000002, 3.0000002, 20, -20, 9, -9]
        for kind in EngineActivation.allCases {
            for (count, batch) in [(17, 1), (3 * 4099, 3), (2 * 70_001, 2)] {
                let x = (kinks + random.normals(batch * count - kinks.count).map { $0 * 4 })
                let dy = random.normals(batch * count), dx0 = random.normals(batch * count)
                let shape = EngineShape(height: 1, width: count, channels: 1)
                let maxBatch = batch + 1
                let inPlaceModes = kind.backwardFromOutput ? [false, true] : [false]
                for inPlace in inPlaceModes {
                    func run(_ threads: Int) -> (values: [Float], intact: Bool) {
                        let t = KernelTensors()
                        let xs = t.make(maxBatch * count, padded(x, to: maxBatch * count))
                        let ys = inPlace ? xs : t.make(maxBatch * count, [Float](repeating: poison, count: maxBatch * count))
                        let dys = t.make(maxBatch * count, padded(dy, to: maxBatch * count))
                        let dxs = t.make(maxBatch * count, padded(dx0, to: maxBatch * count))
                        let storage = NodeStorage(inputs: [xs.pointer], inputShapes: [shape], inputGrads: [dxs.pointer],
                                                  output: ys.pointer, outputShape: shape, outputGrad: dys.pointer,
                                                  parameters: [], parameterGrads: [], buffers: [], saved: nil,
                                                  columnScratch: xs.pointer, columnScratchFloats: 0, maxBatch: maxBatch)
                        let kernel = ActivationKernel(kind, storage: storage)
                        withThreads(threads) {
                            kernel.forward(batch: batch, training: true)
                            kernel.backward(batch: batch)
                        }
                        return (ys.first(batch * count) + dxs.first(batch * count), t.intact)
                    }
                    let two = run(2), one = run(1)
                    let n = batch * count
                    let y = x.map { Self.reference(kind, Double($0)) }
                    let dx = (0..<n).map { Double(dx0[$0]) + Double(dy[$0]) * Self.referenceDerivative(kind, Double(x[$0])) }
                    let label = "\(kind) \(batch)x\(count)\(inPlace ? " in place" : "")"
                    // Error bounds from the size of the terms, as float arithmetic has them: y from
                    // |x| (x·(1 + erf) and x·σ cancel for negative x), the derivative from |dy|·(1 + |x|)
                    // (1 − y², y(1 − y) and 1 + erf cancel in the tails; PyTorch computes them alike).
                    let yAbs = (0..<n).map { Double(abs(x[$0])) + abs(y[$0]) }
                    let dxAbs = (0..<n).map { abs(Double(dx0[$0])) + abs(Double(dy[$0])) * (1 + abs(Double(x[$0]))) }
                    let problems = [
                        mismatch(Array(two.values[0..<n]), y, abs: yAbs, rel: 4e-6, floor: 1e-6, "y"),
                        mismatch(Array(two.values[n...]), dx, abs: dxAbs, rel: 4e-6, floor: 1e-6, "dx"),
                        two.intact && one.intact ? nil : "wrote outside its tensors",
                        bitIdentical(one.values, two.values) ? nil : "1 and 2 threads differ",
                    ].compactMap { $0 }
                    if !problems.isEmpty { failures.append("\(label): " + problems.joined(separator: "; ")) }
                }
            }
        }
        XCTAssertTrue(failures.isEmpty, failures.joined(separator: "\n"))
    }

    /// The kinks, exactly as autograd treats them.
    func testActivationGradientsAtTheKinks() {
        func d(_ a: EngineActivation, _ x: Float) -> Float {
            activationDerivative(a, x: x, y: activationValue(a, x))
        }
        XCTAssertEqual(d(.relu6, 0), 0)
        XCTAssertEqual(d(.relu6, 6), 0)
        XCTAssertEqual(d(.relu6, 3), 1)
        XCTAssertEqual(d(.relu6, 6.5), 0)
        XCTAssertEqual(d(.hardswish, -3), -0.5)
        XCTAssertEqual(d(.hardswish, 3), 1.5)
        XCTAssertEqual(d(.hardswish, -3.001), 0)
        XCTAssertEqual(d(.hardswish, 3.001), 1)
        XCTAssertEqual(d(.hardsigmoid, -3), 0)
        XCTAssertEqual(d(.hardsigmoid, 3), 0)
        XCTAssertEqual(d(.hardsigmoid, 0), 1.0 / 6)
        XCTAssertEqual(activationValue(.hardswish, 3), 3)
        XCTAssertEqual(activationValue(.relu6, 7), 6)
        XCTAssertEqual(Double(activationValue(.gelu, 1)), 0.8413447460685429, accuracy: 1e-6)
    }

    func testActivationGradients() throws {
        for kind in EngineActivation.allCases {
            // Spaced inputs 0.2 apart, ≥ 0.1 from 0, ±3 and 6 (values up to ±7.1).
            let report = try GradientChecker(batch: 2, step: 2e-3, spacedInput: true, inputScale: 10)
                .check(input: (4, 3, 6)) { g in
                    try g.add(.activation(kind), inputs: [0], name: "act")
                }
            assertGradientsMatch(report, "\(kind)")
            // After a convolution (in place where the activation allows it) and before another.
            let chained = try GradientChecker(batch: 3, step: 2e-3).check(input: (5, 4, 3)) { g in
                let c = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [0], name: "conv1")
                let a = try g.add(.activation(kind), inputs: [c], name: "act")
                try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 3, bias: true), inputs: [a], name: "conv2")
            }
            assertGradientsMatch(chained, "conv → \(kind) → conv")
        }
    }

    /// Activations whose backward reads only the output run in place (like ReLU), the others not.
    func testActivationsRunInPlaceWhereTheirGradientAllows() throws {
        for kind in EngineActivation.allCases {
            let graph = EngineGraph(inputShape: (4, 4, 3), maxBatch: 2, seed: 1)
            let c = try graph.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [0], name: "conv1")
            let a = try graph.add(.activation(kind), inputs: [c], name: "act")
            try graph.add(.softmax, inputs: [a], name: "softmax")
            try graph.compile(training: true)
            XCTAssertEqual(graph.outputStorage(of: c) == graph.outputStorage(of: a), kind.backwardFromOutput, "\(kind)")
        }
    }

    // MARK: mul

    func testMulGridAgainstReference() throws {
        var random = TestRandom(41)
        var failures: [String] = []
        var broadcasts = 0
        for _ in 0..<120 {
            let (h, w, c) = (random.pick([1, 2, 3, 5, 9]), random.pick([1, 2, 4, 7]), random.pick([1, 3, 16, 17, 40]))
            let batch = random.pick([1, 2, 3]), maxBatch = batch + random.int(2)
            let n = random.pick([2, 2, 3])
            let shapes = (0..<n).map { i -> EngineShape in
                i > 0 && random.int(2) == 0 ? EngineShape(height: 1, width: 1, channels: c) : EngineShape(height: h, width: w, channels: c)
            }
            let out = try EngineOp.mul.outputShape(inputs: shapes, node: "mul")
            let pixels = out.height * out.width
            let isBroadcast = shapes.map { $0.height * $0.width == 1 && pixels > 1 }
            if isBroadcast.contains(true) { broadcasts += 1 }
            let xs = shapes.map { random.normals(batch * $0.count) }
            let dy = random.normals(batch * out.count)
            let dx0 = shapes.map { random.normals(batch * $0.count) }
            // Reference.
            var y = [Double](repeating: 1, count: batch * out.count)
            var dx = dx0.map { $0.map(Double.init) }, dxAbs = dx0.map { $0.map { Double(abs($0)) } }
            func at(_ i: Int, _ e: Int) -> Int { isBroadcast[i] ? (e / (pixels * c)) * c + e % c : e }
            for e in 0..<(batch * out.count) {
                for i in 0..<n { y[e] *= Double(xs[i][at(i, e)]) }
                for i in 0..<n {
                    var others = Double(dy[e])
                    for j in 0..<n where j != i { others *= Double(xs[j][at(j, e)]) }
                    dx[i][at(i, e)] += others
                    dxAbs[i][at(i, e)] += abs(others)
                }
            }
            func run(_ threads: Int) -> (values: [Float], intact: Bool) {
                runParameterless(shapes: shapes, output: out, xs: xs, dx0: dx0, dy: dy, batch: batch,
                                 maxBatch: maxBatch, threads: threads) { MulKernel(storage: $0) }
            }
            let two = run(2), one = run(1)
            let label = "\(batch)x \(shapes.map(\.description).joined(separator: " * "))"
            var problems = [mismatch(Array(two.values[0..<y.count]), y, abs: y.map { abs($0) }, rel: 1e-6, "y")]
            var offset = y.count
            for i in 0..<n {
                let count = batch * shapes[i].count
                problems.append(mismatch(Array(two.values[offset..<(offset + count)]), dx[i], abs: dxAbs[i], rel: 1e-5, "dx\(i)"))
                offset += count
            }
            problems.append(two.intact && one.intact ? nil : "wrote outside its tensors")
            problems.append(bitIdentical(one.values, two.values) ? nil : "1 and 2 threads differ")
            let found = problems.compactMap { $0 }
            if !found.isEmpty { failures.append("\(label): " + found.joined(separator: "; ")) }
        }
        XCTAssertTrue(failures.isEmpty, failures.prefix(20).joined(separator: "\n"))
        XCTAssertGreaterThan(broadcasts, 30)
    }

    func testMulRefusesMismatchedInputs() {
        let a = EngineShape(height: 4, width: 4, channels: 8)
        XCTAssertThrowsError(try EngineOp.mul.outputShape(inputs: [a, EngineShape(height: 1, width: 1, channels: 4)], node: "m"))
        XCTAssertThrowsError(try EngineOp.mul.outputShape(inputs: [a, EngineShape(height: 2, width: 4, channels: 8)], node: "m"))
        XCTAssertThrowsError(try EngineOp.mul.outputShape(inputs: [a], node: "m"))
        XCTAssertEqual(try EngineOp.mul.outputShape(inputs: [EngineShape(height: 1, width: 1, channels: 8), a], node: "m"), a)
    }

    /// Squeeze-and-excitation (MobileNetV3 form) and a product of two full branches.
    func testMulGradients() throws {
        let se = try GradientChecker(batch: 3).check(input: (5, 4, 6)) { g in
            let c = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 6, bias: true), inputs: [0], name: "conv1")
            let gap = try g.add(.globalAvgPool, inputs: [c], name: "gap")
            let r = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 3, bias: true), inputs: [gap], name: "reduce")
            let ra = try g.add(.relu, inputs: [r], name: "reduce.relu")
            let e = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 6, bias: true), inputs: [ra], name: "expand")
            let ea = try g.add(.activation(.hardsigmoid), inputs: [e], name: "expand.hardsigmoid")
            try g.add(.mul, inputs: [c, ea], name: "scale")
        }
        assertGradientsMatch(se, "squeeze-and-excitation")
        let full = try GradientChecker(batch: 2).check(input: (3, 4, 3)) { g in
            let a = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 3, bias: true), inputs: [0], name: "conv1")
            try g.add(.mul, inputs: [0, a, 0], name: "product")
        }
        assertGradientsMatch(full, "mul of full branches, the input twice")
        let broadcastFirst = try GradientChecker(batch: 2).check(input: (3, 3, 4)) { g in
            let gap = try g.add(.globalAvgPool, inputs: [0], name: "gap")
            try g.add(.mul, inputs: [gap, 0], name: "product")
        }
        assertGradientsMatch(broadcastFirst, "mul with the broadcast branch first")
    }

    // MARK: Adaptive average pooling

    func testAdaptiveBinsArePyTorchs() {
        // torch.nn.AdaptiveAvgPool1d bins of 10 → 4: [0,3) [2,5) [5,8) [7,10).
        XCTAssertEqual((0..<4).map { adaptiveBin($0, 4, 10) }, [0..<3, 2..<5, 5..<8, 7..<10])
        // 3 → 5 (upsampling): [0,1) [0,2) [1,2) [1,3) [2,3).
        XCTAssertEqual((0..<5).map { adaptiveBin($0, 5, 3) }, [0..<1, 0..<2, 1..<2, 1..<3, 2..<3])
        XCTAssertEqual((0..<7).map { adaptiveBin($0, 7, 14) }, (0..<7).map { (2 * $0)..<(2 * $0 + 2) })
    }

    func testAdaptiveAvgPoolGridAgainstReference() throws {
        var random = TestRandom(51)
        var failures: [String] = []
        for _ in 0..<150 {
            let (h, w, c) = (random.pick([1, 2, 3, 5, 7, 10, 13]), random.pick([1, 3, 4, 6, 9]), random.pick([1, 2, 5, 16, 33]))
            let (oh, ow) = (random.pick([1, 2, 3, 4, 7]), random.pick([1, 2, 5, 6]))
            let batch = random.pick([1, 2, 3]), maxBatch = batch + random.int(2)
            let inShape = EngineShape(height: h, width: w, channels: c)
            let out = try EngineOp.adaptiveAvgPool(height: oh, width: ow).outputShape(inputs: [inShape], node: "pool")
            XCTAssertEqual(out, EngineShape(height: oh, width: ow, channels: c))
            let x = random.normals(batch * inShape.count), dy = random.normals(batch * out.count)
            let dx0 = random.normals(batch * inShape.count)
            var y = [Double](repeating: 0, count: batch * out.count), yAbs = y
            var dx = dx0.map(Double.init), dxAbs = dx0.map { Double(abs($0)) }
            for n in 0..<batch {
                for i in 0..<oh {
                    // PyTorch: start = floor(i·H/OH), end = ceil((i+1)·H/OH).
                    let r0 = Int((Double(i * h) / Double(oh)).rounded(.down)), r1 = Int((Double((i + 1) * h) / Double(oh)).rounded(.up))
                    for j in 0..<ow {
                        let c0 = Int((Double(j * w) / Double(ow)).rounded(.down)), c1 = Int((Double((j + 1) * w) / Double(ow)).rounded(.up))
                        let area = Double((r1 - r0) * (c1 - c0))
                        for ch in 0..<c {
                            let o = ((n * oh + i) * ow + j) * c + ch
                            for iy in r0..<r1 {
                                for ix in c0..<c1 {
                                    let e = ((n * h + iy) * w + ix) * c + ch
                                    y[o] += Double(x[e]) / area; yAbs[o] += abs(Double(x[e])) / area
                                    dx[e] += Double(dy[o]) / area; dxAbs[e] += abs(Double(dy[o])) / area
                                }
                            }
                        }
                    }
                }
            }
            func run(_ threads: Int) -> (values: [Float], intact: Bool) {
                runParameterless(shapes: [inShape], output: out, xs: [x], dx0: [dx0], dy: dy, batch: batch,
                                 maxBatch: maxBatch, threads: threads) { AdaptiveAvgPoolKernel(storage: $0) }
            }
            let two = run(2), one = run(1)
            let problems = [
                mismatch(Array(two.values[0..<y.count]), y, abs: yAbs, rel: 1e-6, "y"),
                mismatch(Array(two.values[y.count...]), dx, abs: dxAbs, rel: 1e-6, "dx"),
                two.intact && one.intact ? nil : "wrote outside its tensors",
                bitIdentical(one.values, two.values) ? nil : "1 and 2 threads differ",
            ].compactMap { $0 }
            if !problems.isEmpty { failures.append("\(batch)x\(inShape) → \(oh)x\(ow): " + problems.joined(separator: "; ")) }
        }
        XCTAssertTrue(failures.isEmpty, failures.prefix(20).joined(separator: "\n"))
    }

    func testAdaptiveAvgPoolGradients() throws {
        for (input, oh, ow) in [((7, 5, 3), 3, 2), ((4, 4, 2), 7, 7), ((6, 9, 2), 1, 1), ((5, 5, 3), 5, 5)] {
            let report = try GradientChecker(batch: 2).check(input: input) { g in
                let c = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 3, bias: true), inputs: [0], name: "conv1")
                try g.add(.adaptiveAvgPool(height: oh, width: ow), inputs: [c], name: "pool")
            }
            assertGradientsMatch(report, "adaptive avg pool \(input) → \(oh)x\(ow)")
        }
    }

    // MARK: A network of the new operators

    /// A small MobileNetV2/V3-style network of every new operator, built on the engine; `smooth`
    /// swaps the kinked activations for smooth ones (hardswish → silu, relu6 → gelu,
    /// hardsigmoid → sigmoid, and the saturating tanh and sigmoid near the head → gelu, silu) for
    /// finite differences: after batch norm a parameter's step moves a whole channel, and values
    /// crossing a kink spoil the central differences; behind two saturating layers the early
    /// layers' gradients shrink to the float noise of the loss. (Each is checked standalone.)
    static func mobileBlocks(_ g: EngineGraph, smooth: Bool = false) throws {
        func act(_ a: EngineActivation) -> EngineOp {
            guard smooth else { return .activation(a) }
            switch a {
            case .hardswish: return .activation(.silu)
            case .relu6: return .activation(.gelu)
            case .hardsigmoid: return .activation(.sigmoid)
            default: return .activation(a)
            }
        }
        func dw(_ c: Int, _ s: Int) -> EngineOp {
            .convolution(ConvGeometry(kernelHeight: 3, kernelWidth: 3, strideHeight: s, strideWidth: s, padTop: 1, padLeft: 1,
                                      padBottom: 1, padRight: 1, groups: c, outChannels: c, bias: false))
        }
        let stem = try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 16, bias: false), inputs: [0], name: "stem")
        let sb = try g.add(.batchNorm(), inputs: [stem], name: "stem.bn")
        let sa = try g.add(act(.hardswish), inputs: [sb], name: "stem.act")
        let d1 = try g.add(dw(16, 1), inputs: [sa], name: "dw1")
        let d1b = try g.add(.batchNorm(), inputs: [d1], name: "dw1.bn")
        let d1a = try g.add(act(.relu6), inputs: [d1b], name: "dw1.act")
        let sq = try g.add(.globalAvgPool, inputs: [d1a], name: "se.gap")
        let r = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 8, bias: true), inputs: [sq], name: "se.reduce")
        let ra = try g.add(act(.silu), inputs: [r], name: "se.act")
        let e = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 16, bias: true), inputs: [ra], name: "se.expand")
        let ea = try g.add(act(.hardsigmoid), inputs: [e], name: "se.gate")
        let m = try g.add(.mul, inputs: [d1a, ea], name: "se")
        let p = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 16, bias: false), inputs: [m], name: "project")
        let res = try g.add(.add, inputs: [p, sa], name: "residual")
        let grouped = try g.add(.convolution(ConvGeometry(kernelHeight: 1, kernelWidth: 7, strideHeight: 1, strideWidth: 2,
                                                          padTop: 0, padLeft: 3, padBottom: 0, padRight: 3, groups: 4,
                                                          outChannels: 32, bias: true)), inputs: [res], name: "grouped")
        let ga = try g.add(act(.gelu), inputs: [grouped], name: "grouped.act")
        let d2 = try g.add(dw(32, 2), inputs: [ga], name: "dw2")
        let d2a = try g.add(act(smooth ? .gelu : .tanh), inputs: [d2], name: "dw2.act")
        let dil = try g.add(.convolution(ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 2, padLeft: 2, padBottom: 2,
                                                      padRight: 2, dilationHeight: 2, dilationWidth: 2, outChannels: 24,
                                                      bias: false)), inputs: [d2a], name: "dilated")
        let da = try g.add(act(smooth ? .silu : .sigmoid), inputs: [dil], name: "dilated.act")
        let pool = try g.add(.adaptiveAvgPool(height: 3, width: 2), inputs: [da], name: "pool")
        try g.add(.linear(outFeatures: 10, bias: true), inputs: [pool], name: "fc")
        try g.add(.softmax, inputs: [g.nodeCount - 1], name: "softmax")
    }

    /// Memory planned before compiling is what compiling allocates; a training step gives the
    /// same loss and gradients with 1 and 2 threads, bit for bit; the gradients check.
    func testNetworkOfNewOperators() throws {
        for training in [true, false] {
            let g = EngineGraph(inputShape: (21, 19, 3), maxBatch: 3, seed: 9)
            try Self.mobileBlocks(g)
            let planned = g.plannedMemory(training: training)
            try g.compile(training: training)
            XCTAssertEqual(g.memoryPlan, planned, "training \(training)")
        }
        func step(_ threads: Int) throws -> [Float] {
            let g = EngineGraph(inputShape: (21, 19, 3), maxBatch: 3, seed: 9)
            try Self.mobileBlocks(g)
            try g.compile(training: true)
            var random = TestRandom(4)
            return try withThreads(threads) {
                let y = g.forward(random.normals(3 * g.inputShape.count), batch: 3, training: true)
                let (loss, _) = g.backward(labels: [1, 4, 9], batch: 3)
                XCTAssertTrue(loss.isFinite)
                let inference = g.forward(random.normals(3 * g.inputShape.count), batch: 3, training: false)
                return try XCTUnwrap(Optional(y + [loss] + Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount)) + inference))
            }
        }
        let one = try step(1), two = try step(2)
        XCTAssertTrue(bitIdentical(one, two), "1 and 2 threads differ")
        XCTAssertTrue(one.allSatisfy(\.isFinite))
        let report = try GradientChecker(batch: 2, entriesPerTensor: 8).check(input: (21, 19, 3)) { g in
            try Self.mobileBlocks(g, smooth: true)
        }
        assertGradientsMatch(report, "network of the new operators")
    }

    /// A batch norm applies the ReLU or output-only activation that runs in place after it in its
    /// own store, and in training does the backward of a ReLU, ReLU6 or hardsigmoid too; the
    /// results (training step, inference) equal the unfused graph's bit for bit.
    func testBatchNormAppliesTheActivationAfterIt() throws {
        let fusable: [EngineOp] = [.relu, .activation(.relu6), .activation(.hardsigmoid), .activation(.sigmoid), .activation(.tanh)]
        let backwardFusable: [EngineOp] = [.relu, .activation(.relu6), .activation(.hardsigmoid)]
        for op in fusable + [.activation(.hardswish), .activation(.silu), .leakyRelu(slope: 0.1)] {
            func run(reuse: Bool) throws -> (values: [Float], algorithm: String?) {
                let g = EngineGraph(inputShape: (6, 5, 3), maxBatch: 3, seed: 2)
                let c = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 8, bias: false), inputs: [0], name: "conv")
                let bn = try g.add(.batchNorm(), inputs: [c], name: "bn")
                let a = try g.add(op, inputs: [bn], name: "act")
                let d = try g.add(.convolution(ConvGeometry(kernelHeight: 3, kernelWidth: 3, padTop: 1, padLeft: 1, padBottom: 1,
                                                            padRight: 1, groups: 8, outChannels: 8, bias: true)), inputs: [a], name: "dw")
                try g.add(.globalAvgPool, inputs: [d], name: "gap")
                try g.add(.softmax, inputs: [g.nodeCount - 1], name: "softmax")
                g.computesInputGradient = true
                try g.compile(training: true, reuseBuffers: reuse)
                var random = TestRandom(8)
                let x = random.normals(3 * g.inputShape.count)
                let y = g.forward(x, batch: 3, training: true)
                let (loss, _) = g.backward(labels: [0, 3, 7], batch: 3)
                let grads = Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount))
                let input = Array(UnsafeBufferPointer(start: g.inputGradient!, count: 3 * g.inputShape.count))
                let inference = g.forward(x, batch: 3, training: false)
                return (y + [loss] + grads + input + inference, g.algorithm(of: a))
            }
            let fused = try run(reuse: true), plain = try run(reuse: false)
            XCTAssertEqual(fused.algorithm == "fused fwd", fusable.contains(op) && !backwardFusable.contains(op), "\(op): \(fused.algorithm ?? "-")")
            XCTAssertEqual(fused.algorithm == "fused", backwardFusable.contains(op), "\(op): \(fused.algorithm ?? "-")")
            XCTAssertTrue(bitIdentical(fused.values, plain.values), "\(op)")
        }
    }
}
