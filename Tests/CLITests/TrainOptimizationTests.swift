import Foundation
import XCTest

/// `dsl train`'s optimiser, loss and schedule options (issue 18) through the real binary.
final class TrainOptimizationTests: XCTestCase {
    static let airbench = ["--train-limit", "64", "--test-limit", "16", "--batch", "16", "--momentum", "0.85", "--nesterov",
                           "--decoupled", "--lr", "11.5", "--weight-decay", "0.0153", "--weight-decay-on", "all", "--bn-bias-lr", "64",
                           "--label-smoothing", "0.2", "--schedule", "linear:0.2,0.07@0.23", "--lookahead", "2", "--quiet"]

    /// A run of 1.5 epochs with airbench's options: 6 steps in 2 epochs (the second of 2 steps),
    /// every option in the header and the recipe, the lookahead average in the checkpoint; it
    /// is extended with --epochs 2.5 and refuses a disagreeing option on resume.
    func testAirbenchOptionsTrainStoreAndResume() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let r = try DSL.run(["train", spec, "--data", TrainFixture.sample, "--out", dir + "/run", "--epochs", "1.5"] + Self.airbench)
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertTrue(r.stdout.contains("batch 16, 1.5 epochs\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("SGD lr 11.5 decoupled (0.0234375 per step), momentum 0.85 (Nesterov)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("label smoothing 0.2 (the training loss shown is the smoothed one)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("batch-norm shifts lr ×64.0"), r.stdout)
        XCTAssertTrue(r.stdout.contains("6 steps, the last epoch 2 of 4"), r.stdout)
        XCTAssertTrue(r.stdout.contains("epoch 2/2:"), r.stdout)
        let checkpoint = dir + "/run/checkpoint.safetensors"
        let stored = try RawSafetensors(path: checkpoint)
        XCTAssertEqual(stored.metadata["recipe.epochs"], "1.5")
        XCTAssertEqual(stored.metadata["recipe.decoupled"], "true")
        XCTAssertEqual(stored.metadata["recipe.weight_decay_on"], "all")
        XCTAssertEqual(stored.metadata["recipe.bn_bias_lr"], "64.0")
        XCTAssertEqual(stored.metadata["recipe.label_smoothing"], "0.2")
        XCTAssertEqual(stored.metadata["recipe.lookahead"], "2")
        XCTAssertEqual(stored.metadata["recipe.schedule"], "linear:0.2,0.07@0.23")
        XCTAssertNotNil(stored.tensors["optimizer.lookahead"])
        let metrics = try String(contentsOfFile: dir + "/run/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(metrics.count, 2)
        XCTAssertTrue(metrics[1].contains("\"step\":6"), String(metrics[1]))

        for (flags, message) in [(["--label-smoothing", "0.1"], "--label-smoothing 0.1 disagrees"), (["--lookahead", "3"], "which has --lookahead 2"),
                                 (["--bn-bias-lr", "2"], "--bn-bias-lr 2.0 disagrees"), (["--weight-decay-on", "weights"], "which has --weight-decay-on all")] {
            let refused = try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "2.5"] + flags)
            XCTAssertEqual(refused.status, 2, refused.summary)
            XCTAssertTrue(refused.stderr.contains(message), refused.stderr)
        }
        let extended = try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "2.5", "--decoupled", "--quiet"])
        XCTAssertEqual(extended.status, 0, extended.summary)
        XCTAssertTrue(extended.stdout.contains("epoch 3/3:"), extended.stdout)
        XCTAssertEqual(try RawSafetensors(path: checkpoint).metadata["recipe.epochs"], "2.5")
    }

    /// Bad values are usage errors (exit 2) naming the option.
    func testBadOptionsAreUsageErrors() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let base = ["train", spec, "--data", TrainFixture.sample, "--out", dir + "/run", "--train-limit", "64", "--batch", "16"]
        let cases: [([String], String)] = [
            (["--decoupled", "--lr", "11.5"], "--decoupled needs --lr and --weight-decay"),
            (["--weight-decay-on", "biases"], "--weight-decay-on must be weights or all, got 'biases'"),
            (["--lookahead", "0"], "--lookahead: the interval must be at least 1 step"),
            (["--lookahead", "x"], "--lookahead 'x' is not K or K,BASE,POWER"),
            (["--epochs", "0"], "--epochs must be a number above 0"),
            (["--epochs", "nan"], "--epochs must be a number above 0"),
            (["--label-smoothing", "1"], "--label-smoothing must be a number from 0.0 to 0.999"),
            (["--bn-bias-lr", "0"], "--bn-bias-lr must be a number"),
            (["--schedule", "linear:0.2"], "linear needs START,END@WARMUP"),
            (["--schedule", "warmup:1+linear:0.2,0.07@0.2"], "own warm-up"),
        ]
        for (flags, message) in cases {
            let r = try DSL.run(base + flags)
            XCTAssertEqual(r.status, 2, "\(flags): \(r.summary)")
            XCTAssertTrue(r.stderr.contains(message), "\(flags): expected '\(message)' in \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/run/checkpoint.safetensors"))
        }
    }
}
