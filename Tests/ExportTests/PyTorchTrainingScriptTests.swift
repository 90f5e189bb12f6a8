import DSLExport
import DSLTraining
import Foundation
import PythonTestSupport
import XCTest

/// The exported training script (`dsl export --to pytorch-train`) against `dsl train`: with one
/// process it takes dsl's batches, augmentation, initial weights, schedule and preprocessing,
/// so its metrics follow dsl's to rounding; under torchrun with 2 processes (gloo) its
/// checkpoint is one `dsl eval` and `dsl train --resume` read; bad input is refused. Needs
/// torch and safetensors in .build/venv (skipped without, a failure with DSL_REQUIRE_TORCH=1).
final class PyTorchTrainingScriptTests: XCTestCase {
    static let recipe = ["--data", "data/cifar10-sample", "--train-limit", "64", "--batch", "16", "--epochs", "2", "--lr", "0.1",
                         "--nesterov", "--schedule", "warmup:1+cosine"]

    /// A spec file with the tiny network, and its exported training script, in a fresh directory.
    func prepare() throws -> (python: String, dir: URL, spec: String, script: String) {
        let python = try PyTorchFixture.torchPython()
        let dir = try PyTorchFixture.directory(self, "pytorch-train")
        let spec = dir.appendingPathComponent("tiny.dsl").path
        try Data(PyTorchRoundTripTests.tinySpec.utf8).write(to: URL(fileURLWithPath: spec))
        let (g, _) = try PyTorchFixture.check("tiny.dsl", PyTorchRoundTripTests.tinySpec)
        let script = dir.appendingPathComponent("train.py").path
        try Data(PyTorchExport.trainingScript(g, source: spec).utf8).write(to: URL(fileURLWithPath: script))
        return (python, dir, spec, script)
    }

    func metrics(_ path: String) throws -> [[String: Double]] {
        try readMetrics(path: path).map { m in
            ["epoch": Double(m.epoch), "step": Double(m.step), "lr": m.learningRate, "train_loss": m.trainLoss,
             "train_acc": m.trainAccuracy, "test_loss": m.testLoss ?? .nan, "test_acc": m.testAccuracy ?? .nan]
        }
    }

    func testOneProcessFollowsDSLTrain() throws {
        let (python, dir, spec, script) = try prepare()
        let dslRun = dir.appendingPathComponent("dsl").path, torchRun = dir.appendingPathComponent("torch").path
        let (status, log) = try DSLBinary.run(["train", spec, "--out", dslRun, "--quiet", "--test-limit", "100"] + Self.recipe)
        XCTAssertEqual(status, 0, log)
        let (pythonStatus, pythonLog) = PythonEnvironment.run(python, [script, "--out", torchRun, "--test-limit", "100"] + Self.recipe)
        XCTAssertEqual(pythonStatus, 0, pythonLog)
        let expected = try metrics(dslRun + "/metrics.jsonl"), got = try metrics(torchRun + "/metrics.jsonl")
        XCTAssertEqual(got.count, 2)
        for (e, g) in zip(expected, got) {
            for key in ["epoch", "step", "lr", "train_acc", "test_acc"] { XCTAssertEqual(g[key], e[key], key) }
            for key in ["train_loss", "test_loss"] { XCTAssertEqual(g[key]!, e[key]!, accuracy: 1e-5 * e[key]!, key) }
        }
        // The checkpoints agree on everything but the weights' rounding and the time.
        let a = try TrainingCheckpoint.read(from: dslRun + "/checkpoint.safetensors")
        let b = try TrainingCheckpoint.read(from: torchRun + "/checkpoint.safetensors")
        XCTAssertEqual(b.metadata, a.metadata)
        XCTAssertEqual(b.data, a.data)
        XCTAssertEqual(b.preprocessor, a.preprocessor)
        XCTAssertTrue(try XCTUnwrap(b.recipe).recipeDifferences(from: try XCTUnwrap(a.recipe)).isEmpty)
        XCTAssertEqual(b.recipe?.dataDirectory, a.recipe?.dataDirectory)
        XCTAssertEqual(b.epoch, 2)
        XCTAssertEqual(b.step, 0)
        XCTAssertEqual(Set(b.parameters.keys), Set(a.parameters.keys))
        for (name, tensor) in a.parameters {
            let x = try XCTUnwrap(tensor.floats), y = try XCTUnwrap(b.parameters[name]?.floats)
            let scale = x.map(abs).max() ?? 0
            XCTAssertLessThanOrEqual(zip(x, y).map { abs($0 - $1) }.max() ?? 0, 1e-4 * max(scale, 1e-3), name)
        }
    }

    func testTorchrunCheckpointIsReadByDSL() throws {
        let (python, dir, spec, script) = try prepare()
        let out = dir.appendingPathComponent("run").path
        // --standalone: a free port for the rendezvous (the default, 29500, may be another run's).
        let (status, log) = PythonEnvironment.run(python, ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", script, "--out", out] + Self.recipe)
        XCTAssertEqual(status, 0, log)
        XCTAssertTrue(log.contains("(2 processes of 8)"), log)
        let lines = try metrics(out + "/metrics.jsonl")
        XCTAssertEqual(lines.map { $0["epoch"]! }, [1, 2])
        // dsl eval reads the checkpoint (its data directory from the recipe) and gets the loss
        // the script measured on the same 500 test images.
        let loss = try DSLBinary.evalLoss(spec, weights: out + "/checkpoint.safetensors")
        XCTAssertEqual(loss, lines[1]["test_loss"]!, accuracy: 1e-5 * loss)
        // dsl train continues the run: the images match the stored fingerprint, the recipe is the run's.
        let (resumed, resumeLog) = try DSLBinary.run(["train", spec, "--resume", out + "/checkpoint.safetensors", "--epochs", "3", "--quiet"])
        XCTAssertEqual(resumed, 0, resumeLog)
        XCTAssertEqual(try metrics(out + "/metrics.jsonl").map { $0["epoch"]! }, [1, 2, 3])
    }

    func testBadInputIsRefused() throws {
        let (python, dir, spec, script) = try prepare()
        // Another network's checkpoint as the starting weights.
        let other = dir.appendingPathComponent("other").path
        let (trained, log) = try DSLBinary.run(["train", "specs/cifar-fast.dsl", "--data", "data/cifar10-sample", "--train-limit", "16",
                                                "--test-limit", "16", "--batch", "16", "--epochs", "1", "--out", other, "--quiet"])
        XCTAssertEqual(trained, 0, log)
        let (status, output) = PythonEnvironment.run(python, [script, "--init", other + "/checkpoint.safetensors", "--out",
                                                              dir.appendingPathComponent("a").path] + Self.recipe)
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("the checkpoint is of a different network (cifar-fast"), output)
        let cases: [([String], Int32, String)] = [
            (["--lr", "11"], 2, "--lr must be from 0 to 10"),
            (["--schedule", "sometimes"], 2, "unknown part 'sometimes'"),
            (["--whiten", "pca"], 2, "invalid choice: 'pca'"),
            (["--zca-epsilon", "0.5"], 2, "--zca-epsilon applies only with --whiten zca"),
            (["--batch", "2000"], 1, "fewer than one batch (--batch 2000)"),
        ]
        for (index, (flags, expected, message)) in cases.enumerated() {
            let out = dir.appendingPathComponent("bad\(index)").path
            let (status, output) = PythonEnvironment.run(python, [script, "--out", out] + Self.recipe + flags)
            XCTAssertEqual(status, expected, "\(flags): \(output)")
            XCTAssertTrue(message.isEmpty || output.contains(message), "\(flags): \(output)")
        }
        // A dsl run with an optimiser option the script does not implement is not resumed by it.
        for (flags, message) in [(["--label-smoothing", "0.2"], "uses --label-smoothing 0.2 (recipe.label_smoothing), which this script does not implement"),
                                 (["--epochs", "1.5"], "fractional --epochs 1.5")] {
            let run = dir.appendingPathComponent("dsl-\(flags[0])").path
            let (trained, log) = try DSLBinary.run(["train", spec, "--out", run, "--quiet", "--test-limit", "16"] + (flags[0] == "--epochs" ? Array(Self.recipe.prefix(6) + Self.recipe.dropFirst(8)) : Self.recipe) + flags)
            XCTAssertEqual(trained, 0, log)
            let (status, output) = PythonEnvironment.run(python, [script, "--resume", run + "/checkpoint.safetensors", "--epochs", "3"])
            XCTAssertEqual(status, 1, output)
            XCTAssertTrue(output.contains(message), output)
        }
        let (missing, missingOutput) = PythonEnvironment.run(python, [script, "--data", dir.appendingPathComponent("nowhere").path, "--out",
                                                               dir.appendingPathComponent("b").path])
        XCTAssertEqual(missing, 1, missingOutput)
        XCTAssertTrue(missingOutput.contains("nowhere: dataset directory not found"), missingOutput)
        // Two processes need an even batch.
        let (odd, oddOutput) = PythonEnvironment.run(python, ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", script, "--out",
                                                              dir.appendingPathComponent("c").path] + Self.recipe + ["--batch", "15"])
        XCTAssertNotEqual(odd, 0, oddOutput)
        XCTAssertTrue(oddOutput.contains("--batch 15 is not a multiple of the 2 processes"), oddOutput)
    }
}
