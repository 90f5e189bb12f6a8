import XCTest
import Dispatch
@testable import DSLEngine

/// MobileNetV2 (torchvision's, as bench/ref_models.py builds it) on the engine: 224×224
/// inference at batch 16 and a CIFAR training step (32×32, stem and second stage at stride 1,
/// 10 classes) at batch 64, with each kind of node's time. Runs only with DSL_BENCH=1:
/// `DSL_BENCH=1 swift test --filter MobileNetV2BenchTests`.
final class MobileNetV2BenchTests: XCTestCase {
    static func mobilenetV2(_ g: EngineGraph, cifar: Bool) throws {
        var x = 0
        var n = 0
        func add(_ op: EngineOp, _ ins: [Int]) throws -> Int { n += 1; return try g.add(op, inputs: ins, name: "n\(n)") }
        func cbr(_ inp: Int, _ o: Int, _ k: Int, _ s: Int, dw: Bool = false, act: Bool = true) throws -> Int {
            var y: Int
            if dw {
                y = try add(.convolution(ConvGeometry(kernelHeight: 3, kernelWidth: 3, strideHeight: s, strideWidth: s, padTop: 1, padLeft: 1, padBottom: 1, padRight: 1, groups: o, outChannels: o, bias: false)), [inp])
            } else {
                y = try add(.conv(kernel: k, stride: s, pad: k / 2, outChannels: o, bias: false), [inp])
            }
            y = try add(.batchNorm(), [y])
            if act { y = try add(.activation(.relu6), [y]) }
            return y
        }
        x = try cbr(0, 32, 3, cifar ? 1 : 2)
        var c = 32
        let rows = [(1, 16, 1, 1), (6, 24, 2, cifar ? 1 : 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
        for (t, o, reps, s) in rows {
            for k in 0..<reps {
                let stride = k == 0 ? s : 1
                var y = x
                if t != 1 { y = try cbr(y, c * t, 1, 1) }
                y = try cbr(y, c * t, 3, stride, dw: true)
                y = try cbr(y, o, 1, 1, act: false)
                if stride == 1 && c == o { y = try add(.add, [y, x]) }
                x = y; c = o
            }
        }
        x = try cbr(x, 1280, 1, 1)
        x = try add(.globalAvgPool, [x])
        x = try add(.linear(outFeatures: cifar ? 10 : 1000, bias: true), [x])
        _ = try add(.softmax, [x])
    }

    func testMobileNetV2() throws {
        guard ProcessInfo.processInfo.environment["DSL_BENCH"] == "1" else { throw XCTSkip("set DSL_BENCH=1 to run") }
        for cifar in [false, true] {
            let batch = cifar ? 64 : 16
            let g = EngineGraph(inputShape: cifar ? (32, 32, 3) : (224, 224, 3), maxBatch: batch, seed: 1)
            try Self.mobilenetV2(g, cifar: cifar)
            try g.compile(training: cifar)
            XCTAssertEqual(g.parameterCount, cifar ? 2_236_682 : 3_504_872)
            var r = TestRandom(1)
            let x = r.normals(batch * g.inputShape.count)
            let labels = (0..<batch).map { Int32($0 % 10) }
            for _ in 0..<2 { g.forward(x, batch: batch, training: cifar); if cifar { g.backward(labels: labels, batch: batch) } }
            g.profiling = true
            let steps = 3
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<steps { g.forward(x, batch: batch, training: cifar); if cifar { g.backward(labels: labels, batch: batch) } }
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 / Double(steps)
            print(cifar ? "cifar train" : "224 infer", String(format: "%.1f img/s (%.1f ms/step)", Double(batch) / dt, dt * 1e3))
            var byKind: [String: (Double, Double)] = [:]
            for k in 1..<g.nodeCount {
                let op = g.op(of: k)!
                var kind: String
                switch op {
                case .conv(let kk, _, _, _, _): kind = "conv\(kk)x\(kk) " + (g.algorithm(of: k) ?? "")
                case .convolution: kind = "depthwise"
                case .activation(let a): kind = a.rawValue
                default: kind = "\(op)".components(separatedBy: "(")[0].components(separatedBy: "→")[0]
                }
                let v = byKind[kind] ?? (0, 0)
                byKind[kind] = (v.0 + g.forwardSeconds[k] / Double(steps), v.1 + g.backwardSeconds[k] / Double(steps))
            }
            for (k, v) in byKind.sorted(by: { $0.value.0 + $0.value.1 > $1.value.0 + $1.value.1 }) {
                print(String(format: "  %-28@ fwd %7.2f ms bwd %7.2f ms", k as NSString, v.0 * 1e3, v.1 * 1e3))
            }
        }
    }
}
