import Foundation
import XCTest

/// `dsl train --init CKPT` (fine-tuning from another spec's checkpoint) and the messages of a
/// checkpoint that does not fit (issue #15).
final class TrainInitTests: XCTestCase {
    static let base = "network tinyd\ninput 32x32x3\nconv 3 2 8 bn\ndropout 0.3\ngap\nfc 10\nsoftmax\n"
    /// The base network with another dropout rate.
    static let otherDropout = base.replacingOccurrences(of: "dropout 0.3", with: "dropout 0.5")
    /// The base network with a new convolution before the head (the head's input widens).
    static let newHead = "network tiny2\ninput 32x32x3\nconv 3 2 8 bn\nconv 3 1 16 bn\ngap\nfc 10\nsoftmax\n"

    /// A run of `base` (one epoch) in `dir/base`; returns its checkpoint.
    private func baseRun(_ dir: String) throws -> String {
        let spec = try TrainFixture.write(Self.base, dir, "base.dsl")
        let r = try DSL.run(["train", spec, "--out", dir + "/base"] + TrainFixture.recipe())
        XCTAssertEqual(r.status, 0, r.summary)
        return dir + "/base/checkpoint.safetensors"
    }

    func testInitLoadsWhatMatchesAndStartsANewRun() throws {
        let dir = try TrainFixture.directory(self)
        let checkpoint = try baseRun(dir)
        let spec = try TrainFixture.write(Self.newHead, dir, "new.dsl")
        let r = try DSL.run(["train", spec, "--init", checkpoint, "--out", dir + "/new"] + TrainFixture.recipe())
        XCTAssertEqual(r.status, 0, r.summary)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(Array(lines.prefix(2)), [
            "init: loaded 6 of 12 tensors (258 of 1,634 values) from \(checkpoint) (network tinyd, 1 epoch)",
            "init: skipped (other shape): fc1.weight [8, 10] there, [16, 10] here; not in the checkpoint (left at their initial values): "
                + "conv2.weight, conv2.bn.weight, conv2.bn.bias, conv2.bn.running_mean, conv2.bn.running_var",
        ])
        XCTAssertTrue(lines[2].hasPrefix("training tiny2: 64 training and 16 test images"), r.stdout)
        // The loaded tensors start as the checkpoint's: after one epoch they have moved, but the
        // new run's checkpoint records where it started.
        let new = try RawSafetensors(path: dir + "/new/checkpoint.safetensors")
        XCTAssertEqual(new.metadata["init"], checkpoint)
        XCTAssertEqual(new.metadata["network"], "tiny2")
        // The new run is a run like any other: it resumes (without --init).
        let resumed = try DSL.run(["train", spec, "--resume", dir + "/new/checkpoint.safetensors", "--epochs", "2", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertEqual(try RawSafetensors(path: dir + "/new/checkpoint.safetensors").metadata["init"], checkpoint)
        // The same spec: every tensor loads.
        let same = try TrainFixture.write(Self.otherDropout, dir, "same.dsl")
        let all = try DSL.run(["train", same, "--init", checkpoint, "--out", dir + "/same"] + TrainFixture.recipe())
        XCTAssertEqual(all.status, 0, all.summary)
        XCTAssertTrue(all.stdout.hasPrefix("init: loaded 7 of 7 tensors (338 of 338 values) from \(checkpoint) (network tinyd, 1 epoch)\ntraining tinyd"), all.stdout)
    }

    func testInitErrors() throws {
        let dir = try TrainFixture.directory(self)
        let checkpoint = try baseRun(dir)
        let spec = try TrainFixture.write(Self.newHead, dir, "new.dsl")
        let both = try DSL.run(["train", spec, "--init", checkpoint, "--resume", checkpoint])
        XCTAssertEqual(both.status, 2, both.summary)
        XCTAssertTrue(both.stderr.contains("--init starts a new run from another checkpoint's weights and cannot be combined with --resume"), both.stderr)
        let missing = try DSL.run(["train", spec, "--init", dir + "/nothing.safetensors", "--out", dir + "/x"] + TrainFixture.recipe())
        XCTAssertEqual(missing.status, 1, missing.summary)
        XCTAssertTrue(missing.stderr.contains("--init \(dir)/nothing.safetensors: file not found"), missing.stderr)
        // --init starts a new run: an --out holding one is refused as for any new run.
        let occupied = try DSL.run(["train", spec, "--init", checkpoint, "--out", dir + "/base"] + TrainFixture.recipe())
        XCTAssertEqual(occupied.status, 1, occupied.summary)
        XCTAssertTrue(occupied.stderr.contains("--overwrite"), occupied.stderr)
        // Nothing in common.
        let unrelated = try TrainFixture.write("network other\ninput 32x32x3\nconv 5 1 4\ngap\nfc 10 nobias\nsoftmax\n", dir, "other.dsl")
        let none = try DSL.run(["train", unrelated, "--init", checkpoint, "--out", dir + "/other"] + TrainFixture.recipe())
        XCTAssertEqual(none.status, 1, none.summary)
        XCTAssertTrue(none.stderr.contains("--init \(checkpoint): no tensor of the checkpoint (network tinyd) matches a parameter of other"), none.stderr)
    }

    /// A changed dropout rate: 'dsl eval' evaluates (with a note), '--resume' refuses naming the
    /// layer and pointing to --init; another network is refused by eval naming what differs.
    func testCheckpointOfAnotherSpec() throws {
        let dir = try TrainFixture.directory(self)
        let checkpoint = try baseRun(dir)
        let dropout = try TrainFixture.write(Self.otherDropout, dir, "dropout.dsl")
        let eval = try DSL.run(["eval", dropout, "--weights", checkpoint])
        XCTAssertEqual(eval.status, 0, eval.summary)
        XCTAssertEqual(eval.stderr, "note: \(checkpoint) was trained with other dropout (changed layer dropout1: 'dropout 0.3 -> 16x16x8' in the checkpoint, "
            + "'dropout 0.5 -> 16x16x8' here); dropout does nothing at evaluation, so its weights apply\n")
        XCTAssertTrue(eval.stdout.hasPrefix("tinyd on 500 test images: loss "), eval.stdout)

        let resume = try DSL.run(["train", dropout, "--resume", checkpoint, "--epochs", "2", "--quiet"])
        XCTAssertEqual(resume.status, 1, resume.summary)
        XCTAssertTrue(resume.stderr.contains("\(checkpoint): the checkpoint is of a different network (tinyd, spec hash "), resume.stderr)
        XCTAssertTrue(resume.stderr.contains("changed layer dropout1: 'dropout 0.3 -> 16x16x8' in the checkpoint, 'dropout 0.5 -> 16x16x8' here"), resume.stderr)
        XCTAssertTrue(resume.stderr.contains("start a new run with --init \(checkpoint)"), resume.stderr)

        let other = try TrainFixture.write(Self.newHead, dir, "new.dsl")
        let refused = try DSL.run(["eval", other, "--weights", checkpoint])
        XCTAssertEqual(refused.status, 1, refused.summary)
        for fragment in ["layers only in the checkpoint: dropout1 (dropout 0.3 -> 16x16x8)",
                         "layers only in this spec: conv2 (conv 3x3/1 pad 1 16 nobias bn relu -> 16x16x16)",
                         "tensors of other shapes: fc1.weight [8, 10] in the checkpoint, [16, 10] here"] {
            XCTAssertTrue(refused.stderr.contains(fragment), refused.stderr)
        }
    }

    /// A diverged network's loss is rounded by 'dsl eval' too (not 40 digits).
    func testEvalRoundsAHugeLoss() throws {
        let dir = try TrainFixture.directory(self)
        let checkpoint = try baseRun(dir)
        var file = try RawSafetensors(path: checkpoint)
        let weight = try XCTUnwrap(file.tensors["fc1.weight"])
        file.tensors["fc1.weight"] = (weight.dtype, weight.shape, RawSafetensors.f32(RawSafetensors.floats(weight.bytes).map { $0 * 1e30 }))
        try file.write(to: dir + "/huge.safetensors")
        let spec = try TrainFixture.write(Self.base, dir, "base2.dsl")
        let r = try DSL.run(["eval", spec, "--weights", dir + "/huge.safetensors"])
        XCTAssertEqual(r.status, 0, r.summary)
        let first = String(r.stdout.split(separator: "\n").first ?? "")
        XCTAssertNotNil(first.range(of: "^tinyd on 500 test images: loss [0-9]\\.[0-9]{3}e\\+[0-9]{2}, accuracy ", options: .regularExpression), first)
    }
}
