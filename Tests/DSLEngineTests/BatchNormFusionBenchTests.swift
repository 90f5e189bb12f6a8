import XCTest
import Dispatch
@testable import DSLEngine
/// Inference through eight batch norms each followed by a ReLU or ReLU6 (32×32, batch 64, one
/// thread), with the activation applied by the batch norm's store and as its own pass,
/// alternating, best of three each; and the backward of a training step through them with the
/// activation's backward done by the batch norm's and on its own. Runs only with DSL_BENCH=1.
final class BatchNormFusionBenchTests: XCTestCase {
    func testFusedAgainstSeparateActivation() throws {
        guard ProcessInfo.processInfo.environment["DSL_BENCH"] == "1" else { throw XCTSkip("set DSL_BENCH=1 to run") }
        for c in [16, 64] {
        for act in [EngineOp.relu, .activation(.relu6)] {
            var times: [Bool: Double] = [true: .infinity, false: .infinity]
            for round in 0..<6 {
                let fuse = round % 2 == 0
                EngineGraph.fusesBatchNormActivations = fuse
                let g = EngineGraph(inputShape: (32, 32, c), maxBatch: 64, seed: 1)
                var x = 0
                for i in 0..<8 {
                    x = try g.add(.batchNorm(), inputs: [x], name: "bn\(i)")
                    x = try g.add(act, inputs: [x], name: "a\(i)")
                }
                try g.add(.globalAvgPool, inputs: [x], name: "gap")
                try g.add(.softmax, inputs: [g.nodeCount - 1], name: "sm")
                try g.compile(training: false)
                let input = [Float](repeating: 0.3, count: 64 * 32 * 32 * c)
                let t = withThreads(1) { bestTime { _ = g.forward(input, batch: 64, training: false) } }
                times[fuse] = min(times[fuse]!, t)
            }
            print("c=\(c) \(act): fused \(times[true]! * 1e3) ms, unfused \(times[false]! * 1e3) ms")
        }
        }
        EngineGraph.fusesBatchNormActivations = true
    }

    func testActivationBackwardInTheBatchNorm() throws {
        guard ProcessInfo.processInfo.environment["DSL_BENCH"] == "1" else { throw XCTSkip("set DSL_BENCH=1 to run") }
        let channels = ProcessInfo.processInfo.environment["DSL_CHANNELS"].map { $0.split(separator: ",").compactMap { Int($0) } } ?? [16, 64, 144]
        for c in channels {
        for act in [EngineOp.relu, .activation(.relu6)] {
            var times: [Bool: Double] = [true: .infinity, false: .infinity]
            for round in 0..<6 {
                let fuse = round % 2 == 0
                EngineGraph.fusesActivationBackward = fuse
                defer { EngineGraph.fusesActivationBackward = true }
                let g = EngineGraph(inputShape: (32, 32, c), maxBatch: 64, seed: 1)
                var x = try g.add(.conv(kernel: 1, stride: 1, pad: 0, outChannels: c, bias: false), inputs: [0], name: "c")
                for i in 0..<8 {
                    x = try g.add(.batchNorm(), inputs: [x], name: "bn\(i)")
                    x = try g.add(act, inputs: [x], name: "a\(i)")
                }
                try g.add(.globalAvgPool, inputs: [x], name: "gap")
                try g.add(.softmax, inputs: [g.nodeCount - 1], name: "sm")
                try g.compile(training: true)
                var random = TestRandom(3)
                let input = random.normals(64 * 32 * 32 * c)
                let labels = (0..<64).map { Int32($0 % c) }
                let t = withThreads(1) {
                    bestTime {
                        _ = g.forward(input, batch: 64, training: true)
                        labels.withUnsafeBufferPointer { _ = g.backward(labels: $0.baseAddress!, batch: 64) }
                    }
                }
                times[fuse] = min(times[fuse]!, t)
            }
            print("c=\(c) \(act): training step, activation backward in the batch norm \(times[true]! * 1e3) ms, on its own \(times[false]! * 1e3) ms")
        }
        }
    }
}
