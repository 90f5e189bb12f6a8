import Foundation
import XCTest

/// `dsl train`'s dead-network guard through the real binary: the message, compared exactly
/// (a golden: regenerate by pasting the new message when the engine's arithmetic changes it),
/// the exit status of the NaN guard (1), and the checkpoint of the last epoch that ended with
/// the network alive, which a resume continues from and dies again at the same step.
final class DeadNetworkTests: XCTestCase {
    /// All-CNN-like, without batch norm, a ReLU before the global average pooling, and a classifier
    /// without bias (no starting bias 1 keeps it alive); --lr 0.7 kills it. Shared with
    /// DSLTrainingTests' DeadNetworkGuardTests, which read it by path too.
    static let spec = "Tests/CLITests/fixtures/dead-network.dsl"

    /// Standard error of the run below, with OUT for its output directory.
    static let expected = """
    dsl train: the network died at epoch 5, step 3: for 50 consecutive steps the training loss stayed at ln 10 = 2.3026 (chance) \
    and the output layer conv4 received no gradient: every unit of conv4 outputs zero after its ReLU for every image (its ReLUs \
    died), so no layer learns. Lower the learning rate (--lr 0.14; this run has 0.7), or warm it up (--schedule \
    constant+warmup:1); OUT/checkpoint.safetensors holds the run at epoch 1, the last epoch that ended with the network alive \
    (the later ones were not checkpointed)

    """

    func testDeadNetworkMessageExitStatusAndKeptCheckpoint() throws {
        let dir = try TrainFixture.directory(self)
        let spec = Self.spec
        let out = dir + "/run"
        let r = try DSL.run(["train", spec, "--data", TrainFixture.sample, "--train-limit", "640", "--test-limit", "100", "--batch", "32",
                             "--epochs", "8", "--lr", "0.7", "--schedule", "constant", "--quiet", "--out", out])
        XCTAssertFalse(r.signaled || r.timedOut, r.summary)
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertEqual(r.stderr.replacingOccurrences(of: out, with: "OUT"), Self.expected)
        XCTAssertTrue(r.stdout.contains("epoch 4/8: train loss 2.3026"), r.stdout)
        XCTAssertFalse(r.stdout.contains("epoch 5/8") || r.stdout.contains("done:"), r.stdout)
        for file in ["checkpoint.safetensors", "metrics.jsonl", "steps.jsonl", "curves.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/" + file), file)
        }
        // The checkpoint is epoch 1's; resumed, the run replays epochs 2-4 and part of 5 and dies at the same step.
        let resumed = try DSL.run(["train", spec, "--resume", out + "/checkpoint.safetensors", "--quiet"])
        XCTAssertEqual(resumed.status, 1, resumed.summary)
        XCTAssertTrue(resumed.stdout.contains("at epoch 2 of 8, step 0 of 20"), resumed.stdout)
        XCTAssertTrue(resumed.stderr.hasSuffix(Self.expected.replacingOccurrences(of: "OUT", with: out)), resumed.stderr)
    }
}
