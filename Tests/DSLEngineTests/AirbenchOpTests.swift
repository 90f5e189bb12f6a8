import DSLIR
import XCTest
@testable import DSLEngine

/// The engine side of issue 18's language additions: batch norm without a scale and with its
/// own momentum and ε, the constant `scale` layer, and the parameter settings (`init=`,
/// `freeze`, `train-epochs=`) the lowering gives the engine.
final class AirbenchOpTests: XCTestCase {
    func testBatchNormWithoutScaleGradients() throws {
        let report = try GradientChecker(batch: 4).check(input: (3, 3, 5)) { g in
            try g.add(.batchNorm(eps: 1e-3, momentum: 0.4, scale: false), inputs: [0], name: "bn1")
        }
        assertGradientsMatch(report, "batchNorm without scale")
        let afterConv = try GradientChecker(batch: 3).check(input: (4, 4, 2)) { g in
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 3, bias: false), inputs: [0], name: "conv1")
            try g.add(.batchNorm(eps: 1e-5, momentum: 0.1, scale: false), inputs: [1], name: "bn1")
            try g.add(.activation(.gelu), inputs: [2], name: "gelu")
        }
        assertGradientsMatch(afterConv, "conv → batchNorm without scale → gelu")
    }

    /// Without a scale the only parameter is the shift; the running statistics follow PyTorch's
    /// momentum, and evaluation normalises with them and the layer's ε (γ ≡ 1).
    func testBatchNormWithoutScaleMomentumAndEps() throws {
        let (eps, momentum): (Float, Float) = (0.5, 0.4)
        let g = EngineGraph(inputShape: (h: 1, w: 3, c: 2), maxBatch: 2, seed: 1)
        try g.add(.batchNorm(eps: eps, momentum: momentum, scale: false), inputs: [0], name: "bn")
        try g.compile(training: true)
        XCTAssertEqual(g.parameters.map(\.name), ["bn.bias"])
        XCTAssertEqual(g.buffers.map(\.name), ["bn.running_mean", "bn.running_var"])
        let x: [Float] = [1, -2, 3, 0, 5, 4, -1, 2, 0, 6, 2, -4]   // (2, 1, 3, 2)
        g.parameters[0].value[0] = 0.25; g.parameters[0].value[1] = -0.5
        _ = x.withUnsafeBufferPointer { g.forward($0.baseAddress!, batch: 2, training: true) }
        for ch in 0..<2 {
            let values = stride(from: ch, to: x.count, by: 2).map { Double(x[$0]) }
            let mean = values.reduce(0, +) / Double(values.count)
            let unbiased = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)
            XCTAssertEqual(Double(g.buffers[0].value[ch]), Double(momentum) * mean, accuracy: 1e-5)
            XCTAssertEqual(Double(g.buffers[1].value[ch]), (1 - Double(momentum)) + Double(momentum) * unbiased, accuracy: 1e-5)
        }
        let y = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: g.forward($0.baseAddress!, batch: 2, training: false), count: x.count)) }
        for i in 0..<x.count {
            let ch = i % 2
            let expected = (x[i] - g.buffers[0].value[ch]) / (g.buffers[1].value[ch] + eps).squareRoot() + g.parameters[0].value[ch]
            XCTAssertEqual(y[i], expected, accuracy: 1e-5)
        }
    }

    func testScaleForwardAndGradients() throws {
        let g = EngineGraph(inputShape: (h: 2, w: 2, c: 3), maxBatch: 2, seed: 1)
        try g.add(.scale(1.0 / 9), inputs: [0], name: "scale")
        try g.compile(training: false)
        XCTAssertTrue(g.parameters.isEmpty)
        let x = (0..<24).map { Float($0) - 11.5 }
        let y = x.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: g.forward($0.baseAddress!, batch: 2, training: false), count: 24)) }
        XCTAssertEqual(y, x.map { Float(1.0 / 9) * $0 })
        for factor: Float in [1.0 / 9, -2.5] {
            let report = try GradientChecker(batch: 3).check(input: (3, 3, 2)) { g in
                try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [0], name: "conv1")
                try g.add(.scale(factor), inputs: [1], name: "scale")
            }
            assertGradientsMatch(report, "conv → scale \(factor)")
        }
    }

    /// The lowering of a spec's `init=`, `freeze`, `train-epochs=` and batch-norm options.
    func testLoweredParameterSettings() throws {
        let checked = Frontend.check(text: """
        input 8x8x3
        w: conv 2 1 24 valid init=whiten whiten-eps=1e-3 freeze=weight train-epochs=3 act=gelu
        d: conv 3 1 32 nobias act=none init=dirac
        b: bn scale=off momentum=0.4 eps=1e-12 freeze=bias
        e: conv 3 1 16 init=torch bn bias=on bn-scale=off bn-eps=1e-3 train-epochs=2
        f: fc 10 nobias init=torch freeze
        scale 1/9
        softmax
        """)
        let graph = try XCTUnwrap(checked.graph, "\(checked.diagnostics.items)")
        let lowered = try lower(graph, maxBatch: 1, seed: 3)
        let g = lowered.engine
        try g.compile(training: true)
        let p = Dictionary(uniqueKeysWithValues: g.parameters.map { ($0.name, $0) })
        XCTAssertEqual(g.parameters.map(\.name), ["w.weight", "w.bias", "d.weight", "b.bias", "e.weight", "e.bias", "e.bn.bias", "f.weight"])
        XCTAssertEqual(p["w.weight"]?.training, .never)
        XCTAssertEqual(p["w.weight"]?.dataInitialization, .patchWhitening(epsilon: 1e-3))
        XCTAssertEqual(p["w.bias"]?.training, .firstEpochs(3))
        XCTAssertNil(p["w.bias"]?.dataInitialization)
        XCTAssertEqual(p["d.weight"]?.training, .always)
        XCTAssertEqual(p["b.bias"]?.training, .never)
        XCTAssertEqual(p["e.weight"]?.training, .firstEpochs(2))
        XCTAssertEqual(p["e.bias"]?.training, .firstEpochs(2))
        XCTAssertEqual(p["e.bn.bias"]?.training, .firstEpochs(2))
        XCTAssertEqual(p["f.weight"]?.training, .never)
        for node in 1..<g.nodeCount {
            if g.name(of: node) == "b" { XCTAssertEqual(g.op(of: node), .batchNorm(eps: 1e-12, momentum: 0.4, scale: false)) }
            if g.name(of: node) == "e.bn" { XCTAssertEqual(g.op(of: node), .batchNorm(eps: 1e-3, momentum: 0.1, scale: false)) }
            if g.name(of: node) == "scale1" { XCTAssertEqual(g.op(of: node), .scale(Float(1.0 / 9))) }
        }
        // The whitening layer's bias starts at 0.
        let wb = try XCTUnwrap(p["w.bias"])
        XCTAssertTrue(UnsafeBufferPointer(start: wb.value, count: wb.count).allSatisfy { $0 == 0 })
        // Dirac: filter o < 24 is 1 at the centre (1, 1) of input channel o, 0 elsewhere; the
        // others U(±1/√(3·3·24)).
        let d = try XCTUnwrap(p["d.weight"])
        XCTAssertEqual(d.shape, [3, 3, 24, 32])
        let bound = 1 / Float(3 * 3 * 24).squareRoot()
        var largest: Float = 0
        for y in 0..<3 { for x in 0..<3 { for i in 0..<24 { for o in 0..<32 {
            let v = d.value[((y * 3 + x) * 24 + i) * 32 + o]
            if o < 24 {
                XCTAssertEqual(v, y == 1 && x == 1 && i == o ? 1 : 0, "d.weight[\(y),\(x),\(i),\(o)]")
            } else {
                XCTAssertLessThanOrEqual(abs(v), bound)
                largest = max(largest, abs(v))
            }
        } } } }
        XCTAssertGreaterThan(largest, 0.9 * bound)
        // torch: weight and bias U(±1/√fan_in), fan_in = 3·3·32 for e, its input's 7·7·16 elements for f.
        for (name, fanIn) in [("e.weight", 3 * 3 * 32), ("e.bias", 3 * 3 * 32), ("f.weight", 7 * 7 * 16)] {
            let t = try XCTUnwrap(p[name])
            let values = UnsafeBufferPointer(start: t.value, count: t.count)
            let b = 1 / Float(fanIn).squareRoot()
            XCTAssertLessThanOrEqual(values.map(abs).max()!, b, name)
            XCTAssertGreaterThan(values.map(abs).max()!, 0.8 * b, name)
            let mean = values.reduce(0, +) / Float(values.count)
            XCTAssertLessThan(abs(mean), 0.5 * b, name)
        }
        // The same seed gives the same values; another seed others.
        let again = try lower(graph, maxBatch: 1, seed: 3).engine
        try again.compile(training: false)
        let other = try lower(graph, maxBatch: 1, seed: 4).engine
        try other.compile(training: false)
        for (a, b, c) in zip(zip(g.parameters, again.parameters), other.parameters).map({ ($0.0, $0.1, $1) }) {
            XCTAssertEqual(Array(UnsafeBufferPointer(start: a.value, count: a.count)), Array(UnsafeBufferPointer(start: b.value, count: b.count)), a.name)
            if a.name == "e.weight" || a.name == "f.weight" {
                XCTAssertNotEqual(Array(UnsafeBufferPointer(start: a.value, count: a.count)), Array(UnsafeBufferPointer(start: c.value, count: c.count)), a.name)
            }
        }
    }
}
