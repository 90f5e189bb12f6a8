import Foundation
import XCTest

/// `dsl train` without `--lr` picks the learning rate from the network: 0.05 with batch norm,
/// 0.02 without (the All-CNN networks); `--lr` overrides it, and the checkpoint stores the rate
/// used, which a resumed run keeps.
final class DefaultLearningRateTests: XCTestCase {
    static let withoutBatchNorm = "network plain\ninput 32x32x3\nconv 3 2 8\nconv 1 1 10\ngap\nsoftmax\n"

    func testTheDefaultFollowsBatchNorm() throws {
        let dir = try TrainFixture.directory(self)
        let plain = try TrainFixture.write(Self.withoutBatchNorm, dir, "plain.dsl")
        let normed = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        for (spec, out, extra, rate) in [(plain, "a", [String](), "0.02"), (normed, "b", [], "0.05"), (plain, "c", ["--lr", "0.05"], "0.05")] {
            let r = try DSL.run(["train", spec] + TrainFixture.recipe() + extra + ["--out", dir + "/" + out])
            XCTAssertEqual(r.status, 0, r.summary)
            XCTAssertTrue(r.stdout.contains("SGD lr \(rate), "), "\(spec) \(extra): \(r.stdout)")
        }
        // Resumed with more epochs, the run keeps the rate it started with.
        let resumed = try DSL.run(["train", plain, "--resume", dir + "/a/checkpoint.safetensors", "--epochs", "2", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stdout.contains("SGD lr 0.02, "), resumed.stdout)
    }

    func testHelpSaysSo() throws {
        let r = try DSL.run(["train", "--help"])
        let words = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        XCTAssertTrue(words.contains("--lr X base learning rate (default 0.05 for a network with batch norm, 0.02 without"), r.stdout)
    }
}
