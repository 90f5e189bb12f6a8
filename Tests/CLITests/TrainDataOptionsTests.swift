import Foundation
import XCTest

/// `dsl train` / `dsl eval` options of airbench's data side (issue 18): --flip, --pad-mode,
/// --whitening-images, --eval-every, --tta; recorded in the checkpoint, kept on resume.
final class TrainDataOptionsTests: XCTestCase {
    private func assertUsageError(_ r: DSLRun, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(r.signaled, "crashed: \(r.summary)", file: file, line: line)
        XCTAssertEqual(r.status, 2, r.summary, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(fragment), "expected '\(fragment)' in:\n\(r.stderr)", file: file, line: line)
    }

    /// A run with the airbench data flags: its header says so, only the last epoch is
    /// evaluated, with TTA in the summary and metrics.jsonl; the checkpoint records the flags;
    /// a resume keeps them (refusing a disagreeing --pad-mode, taking a new --tta).
    func testAirbenchDataFlagsAreRecordedAndKeptOnResume() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let flags = ["--flip", "alternate", "--pad-mode", "reflect", "--eval-every", "final", "--tta", "2", "--whitening-images", "32"]
        let r = try DSL.run(["train", spec, "--out", dir + "/run"] + TrainFixture.recipe(epochs: 2) + flags)
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertTrue(r.stdout.contains("augmentation: alternating flips, translations up to 2 px (reflect pad)"), r.stdout)
        let epoch1 = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("epoch 1/2:") }, r.stdout)
        XCTAssertFalse(epoch1.contains("test"), "epoch 1 is not evaluated: \(epoch1)")
        XCTAssertTrue(r.stdout.contains(", with --tta 2 "), r.stdout)
        XCTAssertTrue(r.stdout.contains("peak memory "), r.stdout)
        let lines = TrainFixture.read(dir + "/run/metrics.jsonl").split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].contains("\"test_acc\":null") && !lines[0].contains("tta_acc"), String(lines[0]))
        XCTAssertTrue(lines[1].contains("\"tta_acc\":") && !lines[1].contains("\"tta_acc\":null"), String(lines[1]))
        let stored = try RawSafetensors(path: dir + "/run/checkpoint.safetensors")
        XCTAssertEqual(stored.metadata["recipe.flip"], "alternate")
        XCTAssertEqual(stored.metadata["recipe.pad_mode"], "reflect")
        XCTAssertEqual(stored.metadata["recipe.eval_every"], "final")
        XCTAssertEqual(stored.metadata["recipe.tta"], "2")
        XCTAssertEqual(stored.metadata["recipe.patch_whitening_images"], "32")

        let checkpoint = dir + "/run/checkpoint.safetensors"
        assertUsageError(try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "3", "--pad-mode", "zero"]),
                         "--pad-mode zero disagrees with the run in \(checkpoint), which has --pad-mode reflect")
        assertUsageError(try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "3", "--no-flip"]), "--flip off disagrees")
        let resumed = try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "3", "--tta", "1", "--quiet"])
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stdout.contains("alternating flips, translations up to 2 px (reflect pad)"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains(", with --tta 1 "), resumed.stdout)

        // dsl eval --tta: the TTA evaluation and the plain one.
        let table = try DSL.run(["eval", spec, "--weights", checkpoint, "--tta", "2"])
        XCTAssertEqual(table.status, 0, table.summary)
        XCTAssertTrue(table.stdout.contains("test images with --tta 2: loss ") && table.stdout.contains("without test-time augmentation: loss "), table.stdout)
        let json = try DSL.run(["eval", spec, "--weights", checkpoint, "--tta", "1", "--format", "json"])
        XCTAssertEqual(json.status, 0, json.summary)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["tta"] as? Int, 1)
        XCTAssertNotNil(object["no_tta_accuracy"] as? Double)
        let plain = try DSL.run(["eval", spec, "--weights", checkpoint, "--format", "json"])
        let plainObject = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(plain.stdout.utf8)) as? [String: Any])
        XCTAssertNil(plainObject["tta"])
        XCTAssertEqual(plainObject["accuracy"] as? Double, object["no_tta_accuracy"] as? Double)
    }

    /// Bad values are usage errors naming the option and its values.
    func testBadDataFlagsAreUsageErrors() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let recipe = TrainFixture.recipe() + ["--out", dir + "/run"]
        assertUsageError(try DSL.run(["train", spec, "--flip", "sideways"] + recipe), "--flip must be random, alternate or off, got 'sideways'")
        assertUsageError(try DSL.run(["train", spec, "--flip", "random", "--no-flip"] + recipe), "--no-flip contradicts --flip random")
        assertUsageError(try DSL.run(["train", spec, "--pad-mode", "mirror"] + recipe), "--pad-mode must be zero or reflect, got 'mirror'")
        assertUsageError(try DSL.run(["train", spec, "--tta", "3"] + recipe), "--tta must be a whole number, from 0 to 2, got '3'")
        assertUsageError(try DSL.run(["train", spec, "--eval-every", "0"] + recipe), "--eval-every must be a whole number, from 1 to 100000, got '0'")
        assertUsageError(try DSL.run(["train", spec, "--whitening-images", "0"] + recipe), "--whitening-images must be a whole number, 1 or more")
        assertUsageError(try DSL.run(["eval", spec, "--weights", dir + "/none", "--tta", "-1"]), "--tta must be a whole number")
    }
}
