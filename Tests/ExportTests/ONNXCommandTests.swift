import DSLEngine
import DSLExport
import DSLIR
import DSLTraining
import Foundation
import PythonTestSupport
import XCTest

/// `dsl export --to onnx` with the real binary, its files read by the format's reference tools
/// (python/check_onnx.py: onnx.checker.check_model(full_check=True), strict shape inference,
/// onnxruntime): with `--weights` the model holds the checkpoint's weights and onnxruntime's
/// outputs equal the engine's with those weights; without, the initial weights of
/// `dsl train --seed 1`. The producer is dsl with its version. Needs onnx, onnxruntime and
/// numpy in .build/venv (installed when absent; under CI a failure to get them fails).
final class ONNXCommandTests: XCTestCase {
    static let tolerance = 1e-4

    func testExportedFilesPassTheCheckerAndMatchTheEngine() throws {
        let python = try PythonEnvironment.require(modules: ["onnx", "onnxruntime", "numpy"], packages: ["onnx", "onnxruntime", "numpy"])
        let dir = try PyTorchFixture.directory(self, "onnx-command")
        let spec = "specs/cifar-fast.dsl"
        let run = dir.appendingPathComponent("run").path
        let (trained, log) = try DSLBinary.run(["train", spec, "--data", "data/cifar10-sample", "--train-limit", "32", "--test-limit", "16",
                                                "--batch", "16", "--epochs", "1", "--out", run, "--quiet"])
        XCTAssertEqual(trained, 0, log)
        let checkpointPath = run + "/checkpoint.safetensors"
        let trainedModel = dir.appendingPathComponent("trained.onnx").path, initialModel = dir.appendingPathComponent("initial.onnx").path
        let (s1, o1) = try DSLBinary.run(["export", spec, "--to", "onnx", "--weights", checkpointPath, "-o", trainedModel])
        XCTAssertEqual(s1, 0, o1)
        let (s2, o2) = try DSLBinary.run(["export", spec, "--to", "onnx", "-o", initialModel])
        XCTAssertEqual(s2, 0, o2)
        XCTAssertTrue(o2.contains("warning: no --weights"), o2)

        let text = try String(contentsOf: PythonEnvironment.packageRoot.appendingPathComponent(spec), encoding: .utf8)
        let g = try ONNXCheck.graph(text, path: spec)
        let checkpoint = try TrainingCheckpoint.read(from: checkpointPath)
        let weights = try ONNXExport.weights(of: checkpoint, for: g, file: checkpointPath)
        let initial = try ONNXExport.initialWeights(of: g, seed: 1)
        XCTAssertNotEqual(weights.parameters["conv1.weight"], initial.parameters["conv1.weight"], "the checkpoint holds trained weights")
        var cases: [[String: Any]] = []
        for (name, model, w) in [("trained", trainedModel, weights), ("initial", initialModel, initial)] {
            cases.append(try Self.writeCase(name: name, model: model, graph: g, weights: w, directory: dir))
        }
        let results = try ONNXCheck.run(cases, python: python, directory: dir)
        for (name, r) in results.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(r["ok"] as? Bool, true, "\(name): \(r["errors"] ?? "no result")")
            let relative = r["relative"] as? Double ?? .infinity
            XCTAssertLessThanOrEqual(relative, Self.tolerance, "\(name): \(r)")
            print(String(format: "dsl export --to onnx (%@): full check ok, relative difference to the engine %.3g", name, relative))
        }

        // The producer: dsl and the version `dsl --version` prints.
        let (_, versionText) = try DSLBinary.run(["--version"])
        let version = versionText.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "dsl ", with: "")
        let script = PythonEnvironment.packageRoot.appendingPathComponent("Tests/ExportTests/python/check_onnx.py").path
        let (status, decoded) = PythonEnvironment.run(python, [script, "decode", "ModelProto", trainedModel])
        XCTAssertEqual(status, 0, String(decoded.prefix(2000)))
        let model = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(decoded.utf8)) as? [String: Any])
        XCTAssertEqual(model["producer_name"] as? String, "dsl")
        XCTAssertEqual(model["producer_version"] as? String, version)
    }

    /// A check_onnx.py case for a model file written by `dsl export`: the engine of `graph` with
    /// `weights`, its outputs on random inputs (batches 1 and 3).
    static func writeCase(name: String, model: String, graph g: Graph, weights: (parameters: [String: [Float]], buffers: [String: [Float]]),
                          directory: URL) throws -> [String: Any] {
        let engine = try lower(g, maxBatch: 3, seed: 1).engine
        try engine.compile(training: false)
        for p in engine.parameters { p.value.update(from: try XCTUnwrap(weights.parameters[p.name], p.name), count: p.count) }
        for b in engine.buffers { b.value.update(from: try XCTUnwrap(weights.buffers[b.name], b.name), count: b.count) }
        var random = TestRandom(seed: 17)
        var runs: [[String: String]] = []
        for batch in [1, 3] {
            let x = ONNXCheck.randomInput(engine.inputShape, batch: batch, random: &random)
            let expected = ONNXCheck.engineOutput(engine, x, batch: batch)
            let s = engine.inputShape
            let input = directory.appendingPathComponent("\(name).b\(batch).input.npy")
            let output = directory.appendingPathComponent("\(name).b\(batch).expected.npy")
            try NumPyFile.write(ONNXCheck.nchw(x, batch: batch, s), shape: [batch, s.channels, s.height, s.width], to: input)
            try NumPyFile.write(expected.values, shape: expected.shape, to: output)
            runs.append(["input": input.path, "expected": output.path])
        }
        return ["name": name, "model": model, "initializers": ONNXExport.tensors(of: g).map(\.name), "runs": runs]
    }
}
