import DSLEngine
import DSLExport
import DSLIR
import DSLTraining
import Foundation
import PythonTestSupport
import XCTest

/// The exported PyTorch module against dsl's engine, for every spec of `specs/` and the
/// construct specs (PyTorchFixture): parameter count, initialisation, inference outputs, and
/// two SGD steps (weights, statistics, velocity, loss). The engine's side is computed here and
/// written to files; `python/pytorch_parity.py` runs the module on them (see its header).
/// Needs torch and safetensors in .build/venv (`bench/export-parity.sh` installs them; the
/// suite never installs torch): skipped without them (a failure with DSL_REQUIRE_TORCH=1).
final class PyTorchParityTests: XCTestCase {
    static let batch = Int(ProcessInfo.processInfo.environment["DSL_PARITY_BATCH"] ?? "4")!
    static let seed: UInt64 = 7
    static let lr: Float = 0.1, momentum: Float = 0.9, weightDecay: Float = 5e-4

    func testEverySpecMatchesTheEngine() throws {
        let python = try PyTorchFixture.torchPython()
        // DSL_PARITY_DIR keeps the case files there (to run pytorch_parity.py on them by hand).
        let kept = ProcessInfo.processInfo.environment["DSL_PARITY_DIR"].map { URL(fileURLWithPath: $0) }
        let work = try kept ?? PyTorchFixture.directory(self, "pytorch-parity")
        var cases: [String] = []
        for (name, text) in try PyTorchFixture.shippedSpecs() + PyTorchFixture.constructSpecs {
            let dir = work.appendingPathComponent(String(name.dropLast(4)))
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            try Self.writeCase(name, text, into: dir)
            cases.append(dir.path)
        }
        let script = PythonEnvironment.packageRoot.appendingPathComponent("Tests/ExportTests/python/pytorch_parity.py").path
        let (status, output) = PythonEnvironment.run(python, [script] + cases)
        var seen = Set<String>()
        for line in output.split(separator: "\n") {
            guard line.hasPrefix("{"), let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let name = object["case"] as? String else { continue }
            seen.insert(name)
            let ok = object["ok"] as? Bool ?? false
            print("pytorch parity \(name): \(ok ? "ok" : "FAILED"): \(object["summary"] as? String ?? "")")
            XCTAssertTrue(ok, "\(name): \((object["failures"] as? [String] ?? []).joined(separator: "; "))")
        }
        XCTAssertEqual(seen.count, cases.count, "the check did not report every case (status \(status)):\n\(output.suffix(4000))")
        XCTAssertEqual(status, 0, String(output.suffix(4000)))
    }

    /// Writes one case directory (the files pytorch_parity.py reads).
    static func writeCase(_ name: String, _ text: String, into dir: URL) throws {
        let (g, cost) = try PyTorchFixture.check(name, text)
        let b = Self.batch, seed = Self.seed
        try Data(PyTorchExport.module(g, source: name).utf8).write(to: dir.appendingPathComponent("model.py"))

        // The weights every check starts from: the engine's initialisation for the seed, then
        // random biases and batch-norm parameters and statistics (so that they matter).
        let initial = try lower(g, maxBatch: b, seed: seed)
        try initial.engine.compile(training: false)
        let initTensors = try PyTorchFixture.tensors(initial.engine)
        try writeSafetensors(initTensors, to: dir.appendingPathComponent("init.safetensors").path)
        var random = EngineRandom(seed: 99)
        var weights = initTensors
        for (tensorName, tensor) in initTensors.sorted(by: { $0.key < $1.key }) where tensor.shape.count == 1 {
            let u = { (lo: Float, hi: Float) in lo + (hi - lo) * Float(random.uniform()) }
            let values: [Float] = (0..<tensor.count).map { _ in
                if tensorName.hasSuffix(".running_var") { return u(0.5, 2) }
                if tensorName.hasSuffix(".running_mean") { return u(-0.3, 0.3) }
                if tensorName.hasSuffix(".weight") { return u(0.5, 1.5) }
                return u(-0.2, 0.2)
            }
            weights[tensorName] = try StoredTensor(shape: tensor.shape, floats: values)
        }
        let checkpoint = TrainingCheckpoint(parameters: weights, epoch: 0, step: 0,
                                            metadata: ["network": g.name, "spec_hash": Trainer.hash(g)])
        try checkpoint.write(to: dir.appendingPathComponent("weights.safetensors").path)

        // Inference: the logits (the final softmax's input).
        var io: [String: StoredTensor] = [:]
        let s = g.inputShape
        let input = PyTorchFixture.normals(b * s.elements, seed: 5)
        io["input"] = try StoredTensor(shape: [b, s.height, s.width, s.channels], floats: input)
        let logitsGraph = PyTorchFixture.logitsGraph(g)
        let inference = try lower(logitsGraph, maxBatch: b, seed: seed)
        try inference.engine.compile(training: false)
        try Trainer.loadWeights(weights, into: inference.engine, file: "weights")
        let o = inference.engine.outputShape
        let logits = input.withUnsafeBufferPointer { Array(UnsafeBufferPointer(start: inference.engine.forward($0.baseAddress!, batch: b, training: false), count: b * o.count)) }
        io["logits"] = try StoredTensor(shape: [b, o.height, o.width, o.channels], floats: logits)

        // The optimizer alone: two steps of dsl's SGD (Nesterov, weight decay on weights only, as
        // the trainer sets it up) with a given gradient, on the parameter block in dsl's order.
        let (trainingGraph, _) = PyTorchFixture.trainingGraph(g)
        let training = try lower(trainingGraph, maxBatch: b, seed: seed)
        try training.engine.compile(training: true)
        try Trainer.loadWeights(weights, into: training.engine, file: "weights")
        let engine = training.engine
        let noDecay = engine.parameters.filter { !($0.name.hasSuffix(".weight") && $0.shape.count > 1) }.map { $0.offset..<($0.offset + $0.count) }
        var block = Array(UnsafeBufferPointer(start: engine.parameterValues, count: engine.parameterCount))
        let gradient = PyTorchFixture.normals(engine.parameterCount, seed: 31)
        let sgd = try SGDOptimizer(parameterCount: engine.parameterCount, momentum: Self.momentum, weightDecay: Self.weightDecay,
                                   nesterov: true, noDecay: noDecay)
        for _ in 1...2 { try sgd.step(&block, gradients: gradient, learningRate: Self.lr) }
        io["sgd.gradient"] = try StoredTensor(shape: [engine.parameterCount], floats: gradient)
        io["sgd.after"] = try StoredTensor(shape: [engine.parameterCount], floats: block)
        io["sgd.velocity"] = try StoredTensor(shape: [engine.parameterCount], floats: sgd.velocityValues)

        // A training step on the same batch without dropout. The learning rate moves no
        // parameter tensor by more than 0.1% of its largest value: in float32 the gradients of
        // the first layers of a deep network with batch norm are only good to about 1% (PyTorch's
        // own against float64 on PyramidNet-164), so only small steps keep the weights within 1e-4.
        let x = PyTorchFixture.normals(b * s.elements, seed: 11)
        var labelRandom = EngineRandom(seed: 21)
        let labels = (0..<b).map { _ in Int32(labelRandom.next() % UInt64(engine.classCount)) }
        _ = x.withUnsafeBufferPointer { engine.forward($0.baseAddress!, batch: b, training: true) }
        let (loss, _) = labels.withUnsafeBufferPointer { engine.backward(labels: $0.baseAddress!, batch: b) }
        // A frozen parameter (`freeze`: requires_grad False in PyTorch) gets no gradient and no
        // decay: the step leaves it and its velocity at 0, as torch.optim.SGD skips it.
        let frozen = engine.parameters.filter { $0.training == .never }
        for p in frozen { p.grad.update(repeating: 0, count: p.count) }
        let stepNoDecay = noDecay + frozen.map { $0.offset..<($0.offset + $0.count) }
        var lr = Self.lr
        for p in engine.parameters {
            var largestWeight: Float = 0, largestGradient: Float = 0
            for i in 0..<p.count {
                largestWeight = max(largestWeight, abs(p.value[i]))
                largestGradient = max(largestGradient, abs(p.grad[i]))
            }
            if largestGradient > 0 && largestWeight > 0 { lr = min(lr, 1e-3 * largestWeight / largestGradient) }
        }
        let optimizer = try SGDOptimizer(parameterCount: engine.parameterCount, momentum: Self.momentum, weightDecay: Self.weightDecay,
                                         nesterov: true, noDecay: stepNoDecay)
        optimizer.step(parameters: engine.parameterValues, gradients: engine.parameterGrads, learningRate: lr)
        io["step.input"] = try StoredTensor(shape: [b, s.height, s.width, s.channels], floats: x)
        io["step.labels"] = try StoredTensor(shape: [b], int64s: labels.map(Int64.init))
        io["step.loss"] = .scalar(Double(loss))
        var after = try PyTorchFixture.tensors(engine)
        after["optimizer.velocity"] = try StoredTensor(shape: [engine.parameterCount], floats: optimizer.velocityValues)
        try writeSafetensors(after, to: dir.appendingPathComponent("after.safetensors").path)
        try writeSafetensors(io, to: dir.appendingPathComponent("io.safetensors").path)

        let expect: [String: Any] = ["network": g.name, "params": cost.params, "seed": Int(seed), "batch": b,
                                     "lr": Double(lr), "sgd_lr": Double(Self.lr), "momentum": Double(Self.momentum),
                                     "weight_decay": Double(Self.weightDecay), "nesterov": true]
        try JSONSerialization.data(withJSONObject: expect).write(to: dir.appendingPathComponent("expect.json"))
    }
}
