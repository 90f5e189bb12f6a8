import Foundation
import XCTest

/// `dsl train` without `--lr` and `--schedule` picks them from the network: 0.05 and cosine with
/// batch norm, 0.02 and a one-epoch warm-up before the cosine without (the All-CNN networks);
/// the flags override them, and the checkpoint stores what was used, which a resumed run keeps.
final class DefaultLearningRateTests: XCTestCase {
    static let withoutBatchNorm = "network plain\ninput 32x32x3\nconv 3 2 8\nconv 1 1 10\ngap\nsoftmax\n"

    func testTheDefaultFollowsBatchNorm() throws {
        let dir = try TrainFixture.directory(self)
        let plain = try TrainFixture.write(Self.withoutBatchNorm, dir, "plain.dsl")
        let normed = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let warm = "linear warm-up over 1 epochs; cosine", cosine = "for 1 epochs; cosine"
        for (spec, out, extra, rate, schedule) in [(plain, "a", [String](), "0.02", warm), (normed, "b", [], "0.05", cosine),
                                                   (plain, "c", ["--lr", "0.05"], "0.05", warm),
                                                   (plain, "d", ["--schedule", "cosine"], "0.02", cosine)] {
            let r = try DSL.run(["train", spec] + TrainFixture.recipe() + extra + ["--out", dir + "/" + out])
            XCTAssertEqual(r.status, 0, r.summary)
            XCTAssertTrue(r.stdout.contains("SGD lr \(rate), "), "\(spec) \(extra): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains(schedule), "\(spec) \(extra): \(r.stdout)")
        }
        // Resumed with more epochs, the run keeps the rate it started with.
        let resumed = try DSL.run(["train", plain, "--resume", dir + "/a/checkpoint.safetensors", "--epochs", "2", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stdout.contains("SGD lr 0.02, ") && resumed.stdout.contains("linear warm-up over 1 epochs"), resumed.stdout)
    }

    func testHelpSaysSo() throws {
        let r = try DSL.run(["train", "--help"])
        let words = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(words.contains("--lr X base learning rate (default 0.05 for a network with batch norm, 0.02 without"), r.stdout)
    }
}
