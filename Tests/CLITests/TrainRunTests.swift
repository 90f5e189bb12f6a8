import Foundation
import XCTest

/// `dsl train` run directories, checkpoints and resuming, through the real binary.
final class TrainRunTests: XCTestCase {
    private func assertFails(_ r: DSLRun, status: Int32 = 1, _ fragments: String..., file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(r.signaled, "crashed: \(r.summary)", file: file, line: line)
        XCTAssertFalse(r.timedOut, "hung", file: file, line: line)
        XCTAssertEqual(r.status, status, r.summary + "\nstdout:\n" + r.stdout.suffix(1500), file: file, line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "expected '\(f)' in:\n\(r.stderr)", file: file, line: line) }
        XCTAssertFalse(r.stdout.contains("done:"), "a failed run must not say done:\n\(r.stdout)", file: file, line: line)
    }

    /// A finished run of `epochs` epochs of the tiny spec in `dir/run`; returns (spec, checkpoint).
    private func trainedRun(_ dir: String, epochs: Int = 1) throws -> (spec: String, checkpoint: String) {
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let r = try DSL.run(["train", spec, "--out", dir + "/run"] + TrainFixture.recipe(epochs: epochs))
        XCTAssertEqual(r.status, 0, r.summary)
        return (spec, dir + "/run/checkpoint.safetensors")
    }

    // MARK: - Acceptance: Ctrl-C mid-epoch, then --resume with no flags

    /// The run interrupted by a real SIGINT in the middle of an epoch (after its first
    /// checkpoint) and resumed with `--resume CKPT` alone ends with a checkpoint identical byte
    /// for byte to the uninterrupted run's, except the 8 bytes of `train.elapsed_s` (wall-clock
    /// time); its metrics equal the uninterrupted run's except `images_per_s` and `elapsed_s`.
    func testInterruptedRunResumedWithNoFlagsEndsBitIdenticalToUninterruptedRun() throws {
        let dir = try TrainFixture.directory(self)
        let recipe = ["--data", TrainFixture.sample, "--train-limit", "400", "--test-limit", "100", "--batch", "8", "--epochs", "2", "--seed", "7"]
        let reference = try DSL.run(["train", "specs/quickstart.dsl", "--out", dir + "/a", "--quiet"] + recipe)
        XCTAssertEqual(reference.status, 0, reference.summary)

        let log = dir + "/b.log"
        let p = try TrainFixture.start(["train", "specs/quickstart.dsl", "--out", dir + "/b"] + recipe, log: log)
        // The first epoch's checkpoint is written before epoch 2 starts; signal a few steps into epoch 2.
        XCTAssertTrue(TrainFixture.wait(for: "epoch 2/2 batch", in: log, while: p), TrainFixture.read(log))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/b/checkpoint.safetensors"))
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let text = TrainFixture.read(log)
        XCTAssertEqual(p.terminationReason, .exit, text)
        XCTAssertEqual(p.terminationStatus, 130, text)
        XCTAssertTrue(text.contains("interrupted: checkpoint written"), text)
        XCTAssertFalse(text.contains("done:"), text)
        let interrupted = try RawSafetensors(path: dir + "/b/checkpoint.safetensors")
        XCTAssertEqual(interrupted.tensors["train.epoch"]?.bytes, RawSafetensors.i64(1), "interrupted in epoch 2")
        XCTAssertNotEqual(interrupted.tensors["train.step"]?.bytes, RawSafetensors.i64(0), "interrupted mid-epoch")

        let resumed = try DSL.run(["train", "specs/quickstart.dsl", "--resume", dir + "/b/checkpoint.safetensors"])
        XCTAssertEqual(resumed.status, 0, resumed.summary)
        XCTAssertTrue(resumed.stdout.contains("resuming"), resumed.stdout)
        XCTAssertTrue(resumed.stdout.contains("done:"), resumed.stdout)

        let a = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/a/checkpoint.safetensors")))
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/b/checkpoint.safetensors")))
        XCTAssertEqual(a.count, b.count)
        let elapsed = try XCTUnwrap(try RawSafetensors.ranges(path: dir + "/a/checkpoint.safetensors")["train.elapsed_s"])
        XCTAssertEqual(try RawSafetensors.ranges(path: dir + "/b/checkpoint.safetensors")["train.elapsed_s"], elapsed)
        let differing = (0..<min(a.count, b.count)).filter { a[$0] != b[$0] && !elapsed.contains($0) }
        XCTAssertEqual(differing, [], "bytes differ outside train.elapsed_s")
        let seconds = Double(bitPattern: elapsed.reduce(UInt64(0)) { $0 | UInt64(b[$1]) << (8 * UInt64($1 - elapsed.lowerBound)) })
        XCTAssertGreaterThan(seconds, 0)

        func metrics(_ path: String) throws -> [[String: Double]] {
            try TrainFixture.read(path).split(separator: "\n").map { line in
                var o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double])
                o["images_per_s"] = nil; o["elapsed_s"] = nil
                return o
            }
        }
        let ma = try metrics(dir + "/a/metrics.jsonl"), mb = try metrics(dir + "/b/metrics.jsonl")
        XCTAssertEqual(ma.count, 2)
        XCTAssertEqual(ma, mb)
        // elapsed_s continues across the resume.
        let eb = TrainFixture.read(dir + "/b/metrics.jsonl").split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["elapsed_s"] as? Double }
        XCTAssertEqual(eb.count, 2)
        if eb.count == 2 { XCTAssertLessThanOrEqual(eb[0], eb[1]) }
    }

    /// SIGTERM stops like Ctrl-C: the step finishes, the checkpoint is written, exit 143.
    func testSIGTERMWritesTheCheckpointAndExits143() throws {
        let dir = try TrainFixture.directory(self)
        let log = dir + "/log"
        let p = try TrainFixture.start(["train", "specs/quickstart.dsl", "--out", dir + "/run", "--data", TrainFixture.sample, "--batch", "8", "--epochs", "50"], log: log)
        XCTAssertTrue(TrainFixture.wait(for: " batch ", in: log, while: p), TrainFixture.read(log))
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationReason, .exit, TrainFixture.read(log))
        XCTAssertEqual(p.terminationStatus, 143, TrainFixture.read(log))
        XCTAssertTrue(TrainFixture.read(log).contains("interrupted: checkpoint written"))
        let r = try DSL.run(["eval", "specs/quickstart.dsl", "--weights", dir + "/run/checkpoint.safetensors", "--format", "json"])
        XCTAssertEqual(r.status, 0, r.summary)
    }

    // MARK: - Corrupted checkpoints

    /// Every stored field of a checkpoint is validated on --resume: a damaged one is an error
    /// naming the file and the field (exit 1), never a trap, extra epochs, or a silent "done".
    func testCorruptedCheckpointFieldsAreRefusedNamingFileAndField() throws {
        let dir = try TrainFixture.directory(self)
        let (spec, good) = try trainedRun(dir)
        let original = try RawSafetensors(path: good)
        let weight = "conv1.weight"
        XCTAssertEqual(original.tensors[weight]?.shape, [3, 3, 3, 8])
        typealias Edit = (inout RawSafetensors) -> Void
        let cases: [(String, String, Edit)] = [
            ("negative epoch", "train.epoch", { $0.tensors["train.epoch"]!.bytes = RawSafetensors.i64(-1) }),
            ("huge epoch", "train.epoch", { $0.tensors["train.epoch"]!.bytes = RawSafetensors.i64(1 << 40) }),
            ("epoch past the run", "train.epoch", { $0.tensors["train.epoch"]!.bytes = RawSafetensors.i64(2) }),
            ("negative step", "train.step", { $0.tensors["train.step"]!.bytes = RawSafetensors.i64(-5) }),
            ("huge step", "train.step", { $0.tensors["train.step"]!.bytes = RawSafetensors.i64(Int64.max) }),
            ("step past the epoch", "train.step", { $0.tensors["train.step"]!.bytes = RawSafetensors.i64(5) }),
            ("epoch as F32", "train.epoch", { $0.tensors["train.epoch"] = ("F32", [], RawSafetensors.f32([1])) }),
            ("epoch of two values", "train.epoch", { $0.tensors["train.epoch"] = ("I64", [2], RawSafetensors.i64(0) + RawSafetensors.i64(0)) }),
            ("short velocity", "optimizer.velocity", { v in
                let t = v.tensors["optimizer.velocity"]!
                v.tensors["optimizer.velocity"] = ("F32", [t.shape[0] - 1], Array(t.bytes.dropLast(4)))
            }),
            ("NaN in a weight", weight, { $0.tensors[weight]!.bytes.replaceSubrange(0..<4, with: RawSafetensors.f32([.nan])) }),
            ("infinite velocity", "optimizer.velocity", { $0.tensors["optimizer.velocity"]!.bytes.replaceSubrange(0..<4, with: RawSafetensors.f32([.infinity])) }),
            ("weight of another shape", weight, { v in
                let t = v.tensors[weight]!
                v.tensors[weight] = ("F32", [t.bytes.count / 4], t.bytes)
            }),
            ("preprocessing of another shape", "preprocess.mean", { $0.tensors["preprocess.mean"] = ("F32", [4], RawSafetensors.f32([1, 2, 3, 4])) }),
            ("zero inverse std", "preprocess.inv_std", { $0.tensors["preprocess.inv_std"] = ("F32", [3], RawSafetensors.f32([1, 0, 1])) }),
            ("unknown tensor", "bogus.weight", { $0.tensors["bogus.weight"] = ("F32", [1], RawSafetensors.f32([1])) }),
            ("NaN elapsed time", "train.elapsed_s", { $0.tensors["train.elapsed_s"] = ("F64", [], RawSafetensors.f64(.nan)) }),
            ("negative elapsed time", "train.elapsed_s", { $0.tensors["train.elapsed_s"] = ("F64", [], RawSafetensors.f64(-3)) }),
            ("batch not a number", "recipe.batch", { $0.metadata["recipe.batch"] = "sixteen" }),
            ("NaN learning rate", "recipe.lr", { $0.metadata["recipe.lr"] = "nan" }),
            ("missing recipe field", "recipe.seed", { $0.metadata["recipe.seed"] = nil }),
            ("bad schedule", "recipe.schedule", { $0.metadata["recipe.schedule"] = "sometimes" }),
            ("bad data count", "data.train_images", { $0.metadata["data.train_images"] = "-4" }),
            ("unknown format", "format", { $0.metadata["format"] = "dsl-checkpoint-9" }),
            ("bad preprocessing shape", "preprocess.shape", { $0.metadata["preprocess.shape"] = "32,32" }),
        ]
        for (index, (what, field, edit)) in cases.enumerated() {
            var damaged = original
            edit(&damaged)
            let path = dir + "/damaged.safetensors"
            try damaged.write(to: path)
            let before = try Data(contentsOf: URL(fileURLWithPath: path))
            // The run's own flags, given again, plus --epochs 2 (the checkpoint completed 1 of 1).
            let r = try DSL.run(["train", spec, "--out", dir + "/resumed\(index)", "--resume", path] + TrainFixture.recipe(epochs: 2))
            assertFails(r, path, field)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), before, "\(what): the checkpoint was changed")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, "\(what): one line expected:\n\(r.stderr)")
            if !r.stderr.contains(field) { XCTFail("\(what): \(r.stderr)") }
        }
        // dsl eval validates the same way.
        var damaged = original
        damaged.tensors[weight]!.bytes.replaceSubrange(0..<4, with: RawSafetensors.f32([.infinity]))
        try damaged.write(to: dir + "/inf.safetensors")
        assertFails(try DSL.run(["eval", spec, "--weights", dir + "/inf.safetensors", "--data", TrainFixture.sample]), dir + "/inf.safetensors", weight)
    }

    /// A complete run resumed without a larger --epochs is refused with advice, not "done".
    func testResumingACompleteRunSaysHowToExtendIt() throws {
        let dir = try TrainFixture.directory(self)
        let (spec, checkpoint) = try trainedRun(dir)
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        assertFails(try DSL.run(["train", spec, "--resume", checkpoint]), checkpoint, "complete (1 of 1 epochs)", "--epochs")
        assertFails(try DSL.run(["train", spec, "--resume", checkpoint] + TrainFixture.recipe(epochs: 1)), status: 2, "--epochs 1", "nothing to train")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), before)
    }

    // MARK: - Resuming restores the recipe

    /// `--resume CKPT` alone restores every flag, the data directory, the output directory and
    /// the fitted preprocessing; flags given again must agree; --epochs may extend the run.
    func testResumeRestoresTheRecipeAndRefusesDisagreeingFlags() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let recipe = ["--data", TrainFixture.sample, "--train-limit", "64", "--test-limit", "16", "--batch", "16", "--epochs", "2", "--lr", "0.00006",
                      "--schedule", "step:0.5@1", "--momentum", "0.5", "--nesterov", "--weight-decay", "0.0001", "--no-flip", "--translate", "1",
                      "--whiten", "none", "--seed", "3", "--quiet"]
        let first = try DSL.run(["train", spec, "--out", dir + "/run"] + recipe.map { $0 == "2" ? "1" : $0 })
        XCTAssertEqual(first.status, 0, first.summary)
        let checkpoint = dir + "/run/checkpoint.safetensors"
        // Resumed from another working directory: the data directory is stored absolute.
        let elsewhere = try TrainFixture.directory(self)
        let r = try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "2", "--quiet"], cwd: URL(fileURLWithPath: elsewhere))
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertTrue(r.stdout.contains("64 training and 16 test images, batch 16, 2 epochs\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("SGD lr 6e-05, momentum 0.5 (Nesterov), weight decay 0.0001, seed 3\n"), r.stdout)
        XCTAssertTrue(r.stdout.contains("no flips, translations up to 1 px; preprocessing: none"), r.stdout)
        XCTAssertTrue(r.stdout.contains("epoch 2/2:"), r.stdout)
        XCTAssertTrue(r.stdout.contains("lr 0.00003"), "step:0.5@1 halves 0.00006 in epoch 2:\n\(r.stdout)")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: elsewhere), [], "nothing written in the working directory")
        let stored = try RawSafetensors(path: checkpoint)
        XCTAssertEqual(stored.metadata["recipe.epochs"], "2")
        XCTAssertEqual(stored.metadata["recipe.whiten"], "none")
        XCTAssertEqual(stored.tensors["train.epoch"]?.bytes, RawSafetensors.i64(2))

        let disagreements: [([String], String)] = [
            (["--lr", "0.033"], "--lr 0.033 disagrees with the run in \(checkpoint), which has --lr 6e-05"),
            (["--batch", "8"], "--batch 8 disagrees"),
            (["--train-limit", "32"], "--train-limit 32 disagrees"),
            (["--whiten", "standardize"], "which has --whiten none"),
            (["--zca-epsilon", "0.5"], "--zca-epsilon 0.5 disagrees"),
            (["--translate", "2"], "--translate 2 disagrees"),
            (["--weight-decay", "0.001"], "--weight-decay 0.001 disagrees"),
            (["--test-limit", "8"], "--test-limit 8 disagrees with the run in \(checkpoint), which has --test-limit 16"),
            (["--seed", "1"], "which has --seed 3"),
            (["--schedule", "cosine"], "which has --schedule step:0.5@1"),
            (["--momentum", "0.9"], "--momentum 0.9 disagrees"),
            (["--dataset", "mnist"], "--dataset mnist disagrees"),
        ]
        for (flags, message) in disagreements {
            assertFails(try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "3"] + flags), status: 2, message)
        }
        // Agreeing flags are accepted (the schedule compared by meaning, the learning rate by value).
        let agree = try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "3", "--lr", "6e-5", "--nesterov", "--no-flip", "--quiet",
                                 "--data", DSL.packageRoot.path + "/" + TrainFixture.sample + "/", "--out", dir + "/run/"])
        XCTAssertEqual(agree.status, 0, agree.summary)
        XCTAssertTrue(agree.stdout.contains("epoch 3/3:"), agree.stdout)
    }

    /// The preprocessing is the checkpoint's, not refitted on the data given to the resumed run.
    func testResumeUsesTheStoredPreprocessing() throws {
        let dir = try TrainFixture.directory(self)
        let (spec, checkpoint) = try trainedRun(dir)
        var edited = try RawSafetensors(path: checkpoint)
        edited.tensors["preprocess.mean"]!.bytes = RawSafetensors.f32([1, 2, 3])
        edited.tensors["preprocess.inv_std"]!.bytes = RawSafetensors.f32([0.25, 0.5, 0.75])
        try edited.write(to: checkpoint)
        let r = try DSL.run(["train", spec, "--resume", checkpoint, "--out", dir + "/run"] + TrainFixture.recipe(epochs: 2))
        XCTAssertEqual(r.status, 0, r.summary)
        let after = try RawSafetensors(path: checkpoint)
        XCTAssertEqual(RawSafetensors.floats(try XCTUnwrap(after.tensors["preprocess.mean"]).bytes), [1, 2, 3])
        XCTAssertEqual(RawSafetensors.floats(try XCTUnwrap(after.tensors["preprocess.inv_std"]).bytes), [0.25, 0.5, 0.75])
        XCTAssertEqual(after.tensors["train.epoch"]?.bytes, RawSafetensors.i64(2))
    }

    /// A changed dataset is refused on resume (its fingerprint is stored).
    func testResumeRefusesChangedData() throws {
        let dir = try TrainFixture.directory(self)
        let (spec, checkpoint) = try trainedRun(dir)
        let copy = dir + "/data"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        var bytes = [UInt8](try Data(contentsOf: DSL.packageRoot.appendingPathComponent(TrainFixture.sample + "/data_batch_1.bin")))
        try Data(bytes).write(to: URL(fileURLWithPath: copy + "/data_batch_1.bin"))
        try FileManager.default.copyItem(atPath: DSL.packageRoot.path + "/" + TrainFixture.sample + "/test_batch.bin", toPath: copy + "/test_batch.bin")
        // A moved but identical copy is accepted.
        let moved = try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "2", "--data", copy, "--quiet"])
        XCTAssertEqual(moved.status, 0, moved.summary)
        bytes[100] ^= 0xFF
        try Data(bytes).write(to: URL(fileURLWithPath: copy + "/data_batch_1.bin"))
        assertFails(try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "3", "--data", copy]), "--data \(copy)", "differ")
    }

    // MARK: - Run directories

    /// Two runs on one --out: the second fails at once naming the holder's pid.
    func testSecondRunOnTheSameOutFailsNamingTheHoldersPid() throws {
        let dir = try TrainFixture.directory(self)
        let log = dir + "/first.log"
        let first = try TrainFixture.start(["train", "specs/quickstart.dsl", "--out", dir + "/run", "--data", TrainFixture.sample, "--batch", "8", "--epochs", "50"], log: log)
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL); first.waitUntilExit() } }
        XCTAssertTrue(TrainFixture.wait(for: " batch ", in: log, while: first), TrainFixture.read(log))
        let second = try DSL.run(["train", "specs/quickstart.dsl", "--out", dir + "/run"] + TrainFixture.recipe())
        assertFails(second, "--out \(dir)/run", "in use by another 'dsl train' (pid \(first.processIdentifier)")
        kill(first.processIdentifier, SIGINT)
        first.waitUntilExit()
        XCTAssertEqual(first.terminationStatus, 130, TrainFixture.read(log))
        // The lock died with its holder: the run can be resumed now.
        let third = try DSL.run(["train", "specs/quickstart.dsl", "--resume", dir + "/run/checkpoint.safetensors", "--epochs", "1", "--quiet"])
        XCTAssertEqual(third.status, 0, third.summary)
    }

    /// A fresh run never replaces a run: it says how to continue or overwrite; --overwrite does.
    func testFreshRunRefusesToReplaceARunUnlessOverwrite() throws {
        let dir = try TrainFixture.directory(self)
        let (spec, checkpoint) = try trainedRun(dir)
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        let metricsBefore = TrainFixture.read(dir + "/run/metrics.jsonl")
        let again = try DSL.run(["train", spec, "--out", dir + "/run"] + TrainFixture.recipe(epochs: 1))
        assertFails(again, "already holds a run", "--resume \(checkpoint)", "--overwrite")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), before)
        XCTAssertEqual(TrainFixture.read(dir + "/run/metrics.jsonl"), metricsBefore)
        // Metrics alone also count as a run.
        try FileManager.default.removeItem(atPath: checkpoint)
        assertFails(try DSL.run(["train", spec, "--out", dir + "/run"] + TrainFixture.recipe(epochs: 1)), "metrics.jsonl")
        let overwrite = try DSL.run(["train", spec, "--out", dir + "/run", "--overwrite", "--seed", "5"] + TrainFixture.recipe(epochs: 1))
        XCTAssertEqual(overwrite.status, 0, overwrite.summary)
        XCTAssertEqual(TrainFixture.read(dir + "/run/metrics.jsonl").split(separator: "\n").count, 1)
        XCTAssertEqual(try RawSafetensors(path: checkpoint).metadata["recipe.seed"], "5")
        assertFails(try DSL.run(["train", spec, "--resume", checkpoint, "--overwrite"]), status: 2, "--overwrite")
    }

    /// One bad metrics line does not lose the others: resume keeps every good line of the
    /// checkpoint's epochs, warns naming the file and line, keeps the original; later epochs
    /// continue the log, and elapsed_s continues across the resume.
    func testBadMetricsLineKeepsTheGoodLinesAndElapsedTimeContinues() throws {
        let dir = try TrainFixture.directory(self)
        let (spec, checkpoint) = try trainedRun(dir, epochs: 2)
        let metrics = dir + "/run/metrics.jsonl"
        let original = TrainFixture.read(metrics)
        XCTAssertEqual(original.split(separator: "\n").count, 2)
        let damaged = original.replacingOccurrences(of: "\n{\"epoch\":2", with: "\n{garbage\n{\"epoch\":2") + "{\"epoch\":9,\"step\":1}\n"
        try Data(damaged.utf8).write(to: URL(fileURLWithPath: metrics))
        let r = try DSL.run(["train", spec, "--resume", checkpoint, "--out", dir + "/run"] + TrainFixture.recipe(epochs: 3))
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertTrue(r.stderr.contains("\(metrics):2: not a JSON object; line skipped"), r.stderr)
        XCTAssertTrue(r.stderr.contains("line 4 after the checkpoint's epoch 2 dropped"), r.stderr)
        XCTAssertEqual(TrainFixture.read(metrics + ".bak"), damaged, "the original is kept")
        let lines = TrainFixture.read(metrics).split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3)
        XCTAssertEqual(Array(lines.prefix(2)), original.split(separator: "\n").map(String.init))
        let records = try lines.map { try XCTUnwrap(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        XCTAssertEqual(records.map { $0["epoch"] as? Int }, [1, 2, 3])
        let elapsed = records.compactMap { $0["elapsed_s"] as? Double }
        XCTAssertEqual(elapsed.count, 3)
        if elapsed.count == 3 { XCTAssertLessThanOrEqual(elapsed[1], elapsed[2], "elapsed_s restarted on resume: \(elapsed)") }
        // A clean log is only appended to, never rewritten.
        let r2 = try DSL.run(["train", spec, "--resume", checkpoint, "--epochs", "4"])
        XCTAssertEqual(r2.status, 0, r2.summary)
        XCTAssertFalse(r2.stderr.contains("warning"), r2.stderr)
        XCTAssertTrue(TrainFixture.read(metrics).hasPrefix(lines.joined(separator: "\n") + "\n"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: metrics + ".bak1"))
    }

    /// Temporary files of a killed write are removed when the next run takes the lock.
    func testStaleTemporaryFilesAreRemoved() throws {
        let dir = try TrainFixture.directory(self)
        let (spec, checkpoint) = try trainedRun(dir)
        let stale = [dir + "/run/.checkpoint.safetensors.tmp-999999-1234", dir + "/run/.metrics.jsonl.tmp-999999-5678"]
        for path in stale { FileManager.default.createFile(atPath: path, contents: Data(repeating: 7, count: 100)) }
        let keep = dir + "/run/notes.txt"
        FileManager.default.createFile(atPath: keep, contents: Data("mine".utf8))
        let r = try DSL.run(["train", spec, "--resume", checkpoint, "--out", dir + "/run"] + TrainFixture.recipe(epochs: 2))
        XCTAssertEqual(r.status, 0, r.summary)
        for path in stale { XCTAssertFalse(FileManager.default.fileExists(atPath: path), path) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: keep))
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/run")),
                       [".lock", "checkpoint.safetensors", "metrics.jsonl", "steps.jsonl", "curves.svg", "notes.txt"])
    }

    /// `network ..`, `network .` or a name starting with '.' keep the default --out inside runs/.
    func testDotNetworkNamesKeepTheDefaultOutInsideRuns() throws {
        let dir = try TrainFixture.directory(self)
        let data = DSL.packageRoot.path + "/" + TrainFixture.sample
        for (index, (name, expected)) in [("..", "_"), (".", "_"), (".hidden", "_hidden")].enumerated() {
            let cwd = dir + "/cwd\(index)"
            try FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
            let spec = try TrainFixture.write(TrainFixture.tinySpec.replacingOccurrences(of: "network tiny", with: "network \(name)"), dir, "dot.dsl")
            let r = try DSL.run(["train", spec, "--data", data, "--train-limit", "16", "--test-limit", "16", "--batch", "16", "--epochs", "1", "--quiet"],
                                cwd: URL(fileURLWithPath: cwd))
            XCTAssertEqual(r.status, 0, r.summary)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cwd), ["runs"], name)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cwd + "/runs"), [expected], name)
            XCTAssertTrue(FileManager.default.fileExists(atPath: cwd + "/runs/\(expected)/checkpoint.safetensors"), name)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/checkpoint.safetensors"), name)
        }
    }

    /// --out problems are one clear line, not an NSError dump.
    func testOutErrorsAreClearOneLineMessages() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let file = try TrainFixture.write("x", dir, "afile")
        let r1 = try DSL.run(["train", spec, "--out", file] + TrainFixture.recipe())
        assertFails(r1, "--out \(file): is a file, not a directory")
        let r2 = try DSL.run(["train", spec, "--out", file + "/sub"] + TrainFixture.recipe())
        assertFails(r2, "--out \(file)/sub: \(file) is a file, not a directory")
        try FileManager.default.createDirectory(atPath: dir + "/run/checkpoint.safetensors", withIntermediateDirectories: true)
        let r3 = try DSL.run(["train", spec, "--out", dir + "/run"] + TrainFixture.recipe())
        assertFails(r3, "\(dir)/run/checkpoint.safetensors exists and is not a regular file")
        for r in [r1, r2, r3] {
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertFalse(r.stderr.contains("NSError") || r.stderr.contains("Domain="), r.stderr)
        }
        if geteuid() != 0 {   // root writes anywhere
            try FileManager.default.createDirectory(atPath: dir + "/locked", withIntermediateDirectories: true)
            chmod(dir + "/locked", 0o555)
            defer { chmod(dir + "/locked", 0o755) }
            assertFails(try DSL.run(["train", spec, "--out", dir + "/locked/run"] + TrainFixture.recipe()), "--out \(dir)/locked/run: cannot create directory")
        }
        let missing = try DSL.run(["train", spec, "--resume", dir + "/nothing/checkpoint.safetensors"])
        assertFails(missing, "--resume \(dir)/nothing/checkpoint.safetensors: file not found")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/nothing"), "no directory created for a missing checkpoint")
    }
}

/// `dsl train` and `dsl eval` against data that does not fit, through the real binary.
final class TrainDataTests: XCTestCase {
    private func assertFails(_ r: DSLRun, status: Int32 = 1, _ fragments: String..., file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(r.signaled, "crashed: \(r.summary)", file: file, line: line)
        XCTAssertEqual(r.status, status, r.summary + "\nstdout:\n" + r.stdout.suffix(1500), file: file, line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "expected '\(f)' in:\n\(r.stderr)", file: file, line: line) }
    }

    /// A training set smaller than one batch is an error naming both numbers and the fix.
    func testTrainingSetSmallerThanTheBatchIsRefused() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let r = try DSL.run(["train", spec, "--data", TrainFixture.sample, "--train-limit", "10", "--batch", "64", "--out", dir + "/run"])
        assertFails(r, "10 images (--train-limit 10 of 1000), fewer than one batch (--batch 64)", "use --batch 10 or less")
        XCTAssertFalse(r.stderr.contains("out of range"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/run/checkpoint.safetensors"))
        let exact = try DSL.run(["train", spec, "--data", TrainFixture.sample, "--train-limit", "10", "--batch", "10", "--epochs", "1", "--out", dir + "/exact", "--quiet"])
        XCTAssertEqual(exact.status, 0, exact.summary)
    }

    /// `dsl eval` refuses a test set whose classes are not the network's outputs (more or fewer).
    func testEvalRefusesATestSetWithOtherClassesThanTheNetworkOutputs() throws {
        let dir = try TrainFixture.directory(self)
        let cifar100 = dir + "/cifar100"
        try FileManager.default.createDirectory(atPath: cifar100, withIntermediateDirectories: true)
        try CIFAR100Fixture.write(cifar100, train: 32, test: 16)
        // A 10-output network evaluated on 100 (fine) and 20 (coarse) classes.
        let tiny = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        XCTAssertEqual(try DSL.run(["train", tiny, "--out", dir + "/ten"] + TrainFixture.recipe()).status, 0)
        let fine = try DSL.run(["eval", tiny, "--weights", dir + "/ten/checkpoint.safetensors", "--data", cifar100])
        assertFails(fine, "\(cifar100): the cifar100 (fine labels) test set has 100 classes but the network outputs 10")
        XCTAssertEqual(fine.stdout, "")
        assertFails(try DSL.run(["eval", tiny, "--weights", dir + "/ten/checkpoint.safetensors", "--data", cifar100, "--labels", "coarse"]), "has 20 classes but the network outputs 10")
        // A 20-output network trained on the coarse labels, evaluated on CIFAR-10's 10 classes.
        let twenty = try TrainFixture.write(TrainFixture.tinySpec.replacingOccurrences(of: "fc 10", with: "fc 20"), dir, "twenty.dsl")
        let t = try DSL.run(["train", twenty, "--out", dir + "/twenty", "--data", cifar100, "--labels", "coarse", "--batch", "16", "--epochs", "1", "--quiet"])
        XCTAssertEqual(t.status, 0, t.summary)
        assertFails(try DSL.run(["eval", twenty, "--weights", dir + "/twenty/checkpoint.safetensors", "--data", TrainFixture.sample]),
                    "the cifar10 test set has 10 classes but the network outputs 20")
        // Its own data with the stored labels evaluates (the default --labels is the checkpoint's).
        let ok = try DSL.run(["eval", twenty, "--weights", dir + "/twenty/checkpoint.safetensors", "--format", "json"])
        XCTAssertEqual(ok.status, 0, ok.summary)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(ok.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["images"] as? Int, 16)
        XCTAssertEqual((json["classes"] as? [Any])?.count, 20)
    }

    /// `dsl eval` reports cross-entropy from the logits (log-softmax): a confidently wrong
    /// network has a loss far above -log(1e-30) = 69.1, the cap of a loss computed from
    /// probabilities clamped at 1e-30.
    func testEvalLossIsCrossEntropyFromTheLogits() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        XCTAssertEqual(try DSL.run(["train", spec, "--out", dir + "/run"] + TrainFixture.recipe()).status, 0)
        var checkpoint = try RawSafetensors(path: dir + "/run/checkpoint.safetensors")
        for name in ["fc1.weight", "fc1.bias"] {
            let t = try XCTUnwrap(checkpoint.tensors[name], "\(checkpoint.tensors.keys.sorted())")
            checkpoint.tensors[name]!.bytes = RawSafetensors.f32(RawSafetensors.floats(t.bytes).map { $0 * 1e5 })
        }
        try checkpoint.write(to: dir + "/scaled.safetensors")
        let r = try DSL.run(["eval", spec, "--weights", dir + "/scaled.safetensors", "--format", "json"])
        XCTAssertEqual(r.status, 0, r.summary)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let loss = try XCTUnwrap(json["loss"] as? Double)
        let accuracy = try XCTUnwrap(json["accuracy"] as? Double)
        XCTAssertTrue(loss.isFinite)
        XCTAssertLessThan(accuracy, 0.9)
        XCTAssertGreaterThan(loss, 69.08 * 1.5, "loss \(loss) looks clamped")
    }

    /// Data errors name the real options (--dataset, not --format); bad values are usage errors.
    func testDataErrorsNameTheRealOptions() throws {
        let dir = try TrainFixture.directory(self)
        let both = dir + "/both"
        try FileManager.default.createDirectory(atPath: both, withIntermediateDirectories: true)
        for name in ["data_batch_1.bin", "test_batch.bin"] {
            try FileManager.default.copyItem(atPath: DSL.packageRoot.path + "/" + TrainFixture.sample + "/" + name, toPath: both + "/" + name)
        }
        try CIFAR100Fixture.write(both, train: 2, test: 2)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let r = try DSL.run(["train", spec, "--data", both, "--out", dir + "/run"])
        assertFails(r, "several dataset formats", "choose one with --dataset")
        XCTAssertFalse(r.stderr.contains("--format"), r.stderr)
        let chosen = try DSL.run(["train", spec, "--data", both, "--dataset", "cifar10", "--out", dir + "/run2"] + Array(TrainFixture.recipe().dropFirst(2)))
        XCTAssertEqual(chosen.status, 0, chosen.summary)
        assertFails(try DSL.run(["train", spec, "--data", both, "--dataset", "imagenet"]), status: 2, "--dataset must be cifar10, cifar100, mnist, got 'imagenet'")
        assertFails(try DSL.run(["train", spec, "--data", both, "--labels", "medium"]), status: 2, "--labels must be fine or coarse")
        assertFails(try DSL.run(["eval", spec, "--weights", dir + "/run2/checkpoint.safetensors", "--data", both]), "choose one with --dataset")
        assertFails(try DSL.run(["eval", spec, "--weights", dir + "/run2/checkpoint.safetensors", "--dataset", "x"]), status: 2, "--dataset must be")
    }
}
