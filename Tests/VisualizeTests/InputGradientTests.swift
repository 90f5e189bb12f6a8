import XCTest
@testable import DSLEngine

/// The engine's input gradient of one node (`EngineGraph.forwardForInputGradient`,
/// `inputGradient(seed:batch:rule:)`): the gradient rule against finite differences, the
/// deconvnet and guided rules against a plain reference, and training unaffected.
final class InputGradientTests: XCTestCase {
    /// Deterministic pseudo-random floats in [-1, 1).
    private func values(_ n: Int, seed: UInt64) -> [Float] {
        var s = seed
        return (0..<n).map { _ in
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: s >> 11) % 2000 - 1000) / 1000
        }
    }

    /// conv(3x3, pad 1) + BN + ReLU → max-pool 2/2 → dropout → a residual add → conv 1x1 + ReLU → gap → softmax.
    private func network(batch: Int) throws -> (EngineGraph, target: Int) {
        let g = EngineGraph(inputShape: (6, 6, 2), maxBatch: batch, seed: 3)
        g.computesInputGradient = true
        var x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [0], name: "c1")
        x = try g.add(.batchNorm(), inputs: [x], name: "c1.bn")
        x = try g.add(.relu, inputs: [x], name: "c1.relu")
        let pool = try g.add(.maxPool(kernel: 2, stride: 2, pad: 0), inputs: [x], name: "pool")
        let drop = try g.add(.dropout(p: 0.5), inputs: [pool], name: "drop")
        var y = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 4, bias: true), inputs: [drop], name: "c2")
        y = try g.add(.relu, inputs: [y], name: "c2.relu")
        let sum = try g.add(.add, inputs: [y, pool], name: "sum")
        var z = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: 3, bias: true), inputs: [sum], name: "c3")
        z = try g.add(.relu, inputs: [z], name: "c3.relu")
        let target = z
        z = try g.add(.globalAvgPool, inputs: [z], name: "gap")
        try g.add(.softmax, inputs: [z], name: "softmax")
        try g.compile(training: true)
        // Non-trivial batch-norm state.
        let stats = values(16, seed: 9)
        for b in g.buffers {
            for i in 0..<b.count { b.value[i] = b.name.hasSuffix("running_var") ? 0.5 + abs(stats[i]) : stats[i + 4] }
        }
        for p in g.parameters where p.name == "c1.bn.weight" { for i in 0..<p.count { p.value[i] = 0.5 + abs(stats[8 + i]) } }
        for p in g.parameters where p.name.hasSuffix(".bias") { for i in 0..<p.count { p.value[i] = 0.1 * stats[12 + i % 4] } }
        return (g, target)
    }

    /// The inference-mode value of one output element of `node` for one image.
    private func unitValue(_ g: EngineGraph, node: Int, image: [Float], index: Int) -> Double {
        let y = image.withUnsafeBufferPointer { g.forwardForInputGradient($0.baseAddress!, batch: 1, through: node) }
        return Double(y[index])
    }

    func testBackpropRuleIsTheGradient() throws {
        let (g, target) = try network(batch: 1)
        let image = values(6 * 6 * 2, seed: 5).map { 2 * $0 }
        let outCount = g.shape(of: target).count
        // The strongest activation of channel 1, as `dsl visualize` seeds it.
        let act = image.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: g.forwardForInputGradient($0.baseAddress!, batch: 1, through: target), count: outCount)) }
        let c = g.shape(of: target).channels
        let unit = stride(from: 1, to: outCount, by: c).max { act[$0] < act[$1] }!
        XCTAssertGreaterThan(act[unit], 0, "the test needs an active unit")
        var seed = [Float](repeating: 0, count: outCount)
        seed[unit] = 1
        let gradient = Array(UnsafeBufferPointer(start: seed.withUnsafeBufferPointer { g.inputGradient(seed: $0.baseAddress!, batch: 1, rule: .backprop) }, count: image.count))
        let largest = gradient.map { abs($0) }.max()!
        XCTAssertGreaterThan(largest, 0)
        var mismatches = 0
        let h: Float = 1e-2
        for i in 0..<image.count {
            var plus = image, minus = image
            plus[i] += h; minus[i] -= h
            let numeric = (unitValue(g, node: target, image: plus, index: unit) - unitValue(g, node: target, image: minus, index: unit)) / Double(2 * h)
            if abs(numeric - Double(gradient[i])) > 2e-2 * Double(largest) { mismatches += 1 }
        }
        // A step may cross a ReLU's or max-pool's kink; nearly every entry must agree.
        XCTAssertLessThanOrEqual(mismatches, 2, "\(mismatches) of \(image.count) input-gradient entries differ from finite differences")
    }

    /// A plain reference of conv(3x3, pad 1, no bias) → ReLU → max-pool 2/2 → conv 1x1 → ReLU,
    /// back-propagated from one output element under each rule.
    func testRulesMatchAPlainReference() throws {
        // With 2x2 pooling the switches pick positive inputs, where guided and deconvnet agree;
        // without pooling (a 1x1 window) the three rules give three different maps.
        try checkRulesAgainstReference(pool: 2, channels: 3, expectDistinctMaps: false)
        try checkRulesAgainstReference(pool: 1, channels: 8, expectDistinctMaps: true)
    }

    private func checkRulesAgainstReference(pool: Int, channels cm: Int, expectDistinctMaps: Bool) throws {
        let (h, w, ci, co) = (4, 4, 2, 2)
        let g = EngineGraph(inputShape: (h, w, ci), maxBatch: 1, seed: 1)
        g.computesInputGradient = true
        var x = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: cm, bias: false), inputs: [0], name: "c1")
        x = try g.add(.relu, inputs: [x], name: "r1")
        x = try g.add(.maxPool(kernel: pool, stride: pool, pad: 0), inputs: [x], name: "pool")
        x = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: co, bias: false), inputs: [x], name: "c2")
        let target = try g.add(.relu, inputs: [x], name: "r2")
        x = try g.add(.globalAvgPool, inputs: [target], name: "gap")
        try g.add(.softmax, inputs: [x], name: "softmax")
        try g.compile(training: true)
        let w1 = values(9 * ci * cm, seed: 11), w2 = values(cm * co, seed: 12)
        g.parameters[0].value.update(from: w1, count: w1.count)
        g.parameters[1].value.update(from: w2, count: w2.count)
        let image = values(h * w * ci, seed: 13)

        // Reference forward.
        var a1 = [Float](repeating: 0, count: h * w * cm)
        for y in 0..<h { for xx in 0..<w { for o in 0..<cm {
            var s: Float = 0
            for ky in 0..<3 { for kx in 0..<3 {
                let (iy, ix) = (y + ky - 1, xx + kx - 1)
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                for i in 0..<ci { s += image[(iy * w + ix) * ci + i] * w1[((ky * 3 + kx) * ci + i) * cm + o] }
            }}
            a1[(y * w + xx) * cm + o] = s
        }}}
        let r1 = a1.map { max($0, 0) }
        let (ph, pw) = (h / pool, w / pool)
        var pooled = [Float](repeating: 0, count: ph * pw * cm), switches = [Int](repeating: 0, count: ph * pw * cm)
        for y in 0..<ph { for xx in 0..<pw { for o in 0..<cm {
            var best = -Float.infinity, at = 0
            for dy in 0..<pool { for dx in 0..<pool {
                let i = ((pool * y + dy) * w + pool * xx + dx) * cm + o
                if r1[i] > best { best = r1[i]; at = i }
            }}
            pooled[(y * pw + xx) * cm + o] = best; switches[(y * pw + xx) * cm + o] = at
        }}}
        var a2 = [Float](repeating: 0, count: ph * pw * co)
        for p in 0..<(ph * pw) { for o in 0..<co {
            var s: Float = 0
            for i in 0..<cm { s += pooled[p * cm + i] * w2[i * co + o] }
            a2[p * co + o] = s
        }}
        // The first convolution applies r1 in its store (in place); as the target it stores its own output.
        XCTAssertEqual(g.algorithm(of: 2), "fused fwd")
        let preReLU = image.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: g.forwardForInputGradient($0.baseAddress!, batch: 1, through: 1), count: a1.count)) }
        for (e, r) in zip(preReLU, a1) { XCTAssertEqual(e, r, accuracy: 1e-5) }
        XCTAssertTrue(a1.contains { $0 < 0 })
        let engineActivation = image.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: g.forwardForInputGradient($0.baseAddress!, batch: 1, through: target), count: a2.count)) }
        for (e, r) in zip(engineActivation, a2.map { max($0, 0) }) { XCTAssertEqual(e, r, accuracy: 1e-5) }
        // The reference maps of one output element under each rule.
        func referenceMaps(unit: Int) -> [[Float]] {
            ReLUBackwardRule.allCases.map { rule in
                func pass(_ forwardInput: Float, _ grad: Float) -> Float {
                    switch rule {
                    case .backprop: return forwardInput > 0 ? grad : 0
                    case .deconvnet: return grad > 0 ? grad : 0
                    case .guided: return forwardInput > 0 && grad > 0 ? grad : 0
                    }
                }
                var d2 = [Float](repeating: 0, count: a2.count)
                d2[unit] = pass(a2[unit], 1)
                var dPooled = [Float](repeating: 0, count: pooled.count)
                for p in 0..<(ph * pw) { for i in 0..<cm { for o in 0..<co { dPooled[p * cm + i] += d2[p * co + o] * w2[i * co + o] } } }
                var dR1 = [Float](repeating: 0, count: r1.count)
                for (j, s) in switches.enumerated() { dR1[s] += dPooled[j] }
                let dA1 = zip(a1, dR1).map { pass($0, $1) }
                var expected = [Float](repeating: 0, count: image.count)
                for y in 0..<h { for xx in 0..<w { for o in 0..<cm {
                    let gy = dA1[(y * w + xx) * cm + o]
                    for ky in 0..<3 { for kx in 0..<3 {
                        let (iy, ix) = (y + ky - 1, xx + kx - 1)
                        guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                        for i in 0..<ci { expected[(iy * w + ix) * ci + i] += gy * w1[((ky * 3 + kx) * ci + i) * cm + o] }
                    }}
                }}}
                return expected
            }
        }
        // The strongest unit; for the distinct case the strongest whose three maps all differ.
        let ranked = a2.indices.sorted { a2[$0] > a2[$1] }
        let distinct = { (m: [[Float]]) in m[0] != m[1] && m[1] != m[2] && m[0] != m[2] }
        guard let unit = expectDistinctMaps ? ranked.first(where: { distinct(referenceMaps(unit: $0)) }) : ranked.first else {
            return XCTFail("no output element whose three reference maps differ")
        }
        let expectedMaps = referenceMaps(unit: unit)
        for (rule, expected) in zip(ReLUBackwardRule.allCases, expectedMaps) {
            _ = image.withUnsafeBufferPointer { g.forwardForInputGradient($0.baseAddress!, batch: 1, through: target) }
            var seed = [Float](repeating: 0, count: a2.count)
            seed[unit] = 1
            let got = Array(UnsafeBufferPointer(start: seed.withUnsafeBufferPointer { g.inputGradient(seed: $0.baseAddress!, batch: 1, rule: rule) }, count: image.count))
            let scale = max(expected.map { abs($0) }.max()!, 1e-6)
            for i in 0..<image.count { XCTAssertEqual(got[i], expected[i], accuracy: 1e-5 * scale, "pool \(pool), \(rule) entry \(i)") }
        }
    }

    /// Input-gradient passes in between leave a training step's loss and gradients bit for bit
    /// what they are without them.
    func testTrainingIsUnaffected() throws {
        func trainingStep(inspectFirst: Bool) throws -> [Float] {
            let (g, target) = try network(batch: 2)
            let images = values(2 * 72, seed: 21)
            var labels: [Int32] = [0, 2]
            if inspectFirst {
                for rule in ReLUBackwardRule.allCases {
                    let n = 2 * g.shape(of: target).count
                    _ = images.withUnsafeBufferPointer { g.forwardForInputGradient($0.baseAddress!, batch: 2, through: target) }
                    let seed = values(n, seed: 4)
                    _ = seed.withUnsafeBufferPointer { g.inputGradient(seed: $0.baseAddress!, batch: 2, rule: rule) }
                }
            }
            images.withUnsafeBufferPointer { _ = g.forward($0.baseAddress!, batch: 2, training: true) }
            let loss = labels.withUnsafeMutableBufferPointer { g.backward(labels: $0.baseAddress!, batch: 2).loss }
            return [loss] + Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount))
                + Array(UnsafeBufferPointer(start: g.inputGradient!, count: 2 * 72))
        }
        let plain = try trainingStep(inspectFirst: false), after = try trainingStep(inspectFirst: true)
        XCTAssertEqual(plain.map(\.bitPattern), after.map(\.bitPattern))
        XCTAssertTrue(plain.contains { $0 != 0 })
    }
}
