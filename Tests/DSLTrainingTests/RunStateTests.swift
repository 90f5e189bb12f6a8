import DSLEngine
import DSLIR
import Foundation
import XCTest
@testable import DSLTraining

/// What a run stores and restores: checkpoint fields and their validation, the recipe, the
/// data fingerprint, the run directory's lock, the metrics log, the label checks.
final class RunStateTests: XCTestCase {
    static let net = """
    network tiny
    input 32x32x3
    conv 3 2 8 bn
    gap
    fc 10
    softmax
    """

    func graph(_ text: String = net) throws -> Graph {
        let checked = Frontend.check(text: text)
        return try XCTUnwrap(checked.graph, "\(checked.diagnostics.items)")
    }

    func sample() throws -> (train: Dataset, test: Dataset) {
        try loadDataset(directory: repositoryRoot + "/data/cifar10-sample")
    }

    func options(epochs: Int = 2) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs; o.batch = 16; o.trainLimit = 64; o.testLimit = 16; o.schedule = "step:0.5@1"
        o.dataDirectory = "/data/somewhere"; o.dataset = .cifar10
        return o
    }

    override func tearDown() { Trainer.stopRequested = false }

    func testF64TensorsRoundTrip() throws {
        let directory = try makeTemporaryDirectory(self)
        let tensors: [String: StoredTensor] = ["t": .scalar(Double(1234.5678901234)), "v": try StoredTensor(shape: [2], doubles: [-0.0, .pi])]
        try writeSafetensors(tensors, to: directory + "/x.safetensors")
        XCTAssertEqual(try readSafetensors(path: directory + "/x.safetensors").tensors, tensors)
    }

    /// A run interrupted mid-epoch and resumed ends with the same checkpoint as an
    /// uninterrupted run: every tensor and metadata value except train.elapsed_s.
    func testResumedRunEndsWithTheSameCheckpointExceptElapsedTime() throws {
        let data = try sample()
        engineThreadCount = 2
        let o = options()
        let reference = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        var referenceEpochs: [Double] = []
        _ = try reference.run(report: { if case let .epochEnded(_, loss, _, _, _, _, _) = $0 { referenceEpochs.append(loss) } }, checkpoint: { _ in })

        let path = try makeTemporaryDirectory(self) + "/ckpt.safetensors"
        let first = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        let outcome = try first.run(report: { e in
            if case let .step(epoch, step, _, _, _, _, _, _, _) = e, epoch == 2, step == 3 { Trainer.stopRequested = true }
        }, checkpoint: { try $0.checkpoint().write(to: path) })
        XCTAssertEqual(outcome, .interrupted(epoch: 1, step: 3))
        Trainer.stopRequested = false
        let stored = try TrainingCheckpoint.read(from: path)
        XCTAssertEqual(stored.recipe?.recipeMetadata(), o.recipeMetadata())
        XCTAssertEqual(stored.data, first.dataFingerprint)
        XCTAssertGreaterThan(stored.epochLossSum, 0)
        XCTAssertGreaterThan(stored.elapsedSeconds, 0)

        let resumed = try Trainer(graph: try graph(), train: data.train, test: data.test, options: stored.recipe!, preprocessor: stored.preprocessor)
        try resumed.restore(from: stored, file: path)
        XCTAssertEqual(resumed.elapsedBefore, stored.elapsedSeconds)
        var resumedEpochs: [Double] = []
        _ = try resumed.run(report: { if case let .epochEnded(_, loss, _, _, _, _, _) = $0 { resumedEpochs.append(loss) } }, checkpoint: { _ in })
        XCTAssertEqual(resumedEpochs, [referenceEpochs[1]], "the interrupted epoch's training loss is the uninterrupted one")
        XCTAssertGreaterThanOrEqual(resumed.elapsedSeconds, stored.elapsedSeconds)

        var a = try reference.checkpoint(), b = try resumed.checkpoint()
        a.elapsedSeconds = 0; b.elapsedSeconds = 0
        let directory = try makeTemporaryDirectory(self)
        try a.write(to: directory + "/a"); try b.write(to: directory + "/b")
        XCTAssertEqual(try readFileBytes(directory + "/a"), try readFileBytes(directory + "/b"))
    }

    /// Each damaged field of a written checkpoint is an error naming the file and the field.
    func testDecodeValidatesEveryField() throws {
        let data = try sample()
        let trainer = try Trainer(graph: try graph(), train: data.train, test: data.test, options: options())
        let directory = try makeTemporaryDirectory(self)
        let path = directory + "/c.safetensors"
        try trainer.checkpoint().write(to: path)
        let good = try readSafetensors(path: path)
        XCTAssertNoThrow(try TrainingCheckpoint.decode(good, file: "c"))
        let weight = trainer.engine.parameters[0].name
        let cases: [(String, (inout SafetensorsContents) throws -> Void)] = [
            ("train.epoch", { $0.tensors["train.epoch"] = .scalar(Int64(-1)) }),
            ("train.epoch", { $0.tensors["train.epoch"] = .scalar(Int64(3)) }),
            ("train.epoch", { $0.tensors["train.epoch"] = .scalar(Float(0)) }),
            ("train.epoch", { $0.tensors["train.epoch"] = nil }),
            ("train.step", { $0.tensors["train.step"] = .scalar(Int64(5)) }),
            ("train.step", { $0.tensors["train.step"] = try StoredTensor(shape: [1], int64s: [0]) }),
            ("train.elapsed_s", { $0.tensors["train.elapsed_s"] = .scalar(Double.infinity) }),
            ("train.elapsed_s", { $0.tensors["train.elapsed_s"] = nil }),
            ("train.epoch_loss_sum", { $0.tensors["train.epoch_loss_sum"] = .scalar(Double(1)) }),
            ("train.epoch_correct", { $0.tensors["train.step"] = .scalar(Int64(1)); $0.tensors["train.epoch_correct"] = .scalar(Int64(17)) }),
            ("train.bogus", { $0.tensors["train.bogus"] = .scalar(Int64(1)) }),
            ("optimizer.velocity", { $0.tensors["optimizer.velocity"] = try StoredTensor(shape: [2, 161], floats: [Float](repeating: 0, count: 322)) }),
            ("optimizer.velocity", { $0.tensors["optimizer.velocity"] = nil }),
            ("optimizer.momentum", { $0.tensors["optimizer.momentum"] = .scalar(Float(0)) }),
            (weight, { c in c.tensors[weight] = try StoredTensor(shape: c.tensors[weight]!.shape, floats: [Float](repeating: .nan, count: c.tensors[weight]!.count)) }),
            (weight, { c in c.tensors[weight] = try StoredTensor(shape: c.tensors[weight]!.shape, int64s: [Int64](repeating: 0, count: c.tensors[weight]!.count)) }),
            ("preprocess.zca", { $0.tensors["preprocess.zca"] = .scalar(Float(1)) }),
            ("preprocess.mean", { $0.tensors["preprocess.mean"] = try StoredTensor(shape: [3], floats: [1, .infinity, 3]) }),
            ("preprocess.gcn_scale", { $0.metadata["preprocess.gcn_scale"] = "55" }),
            ("preprocess.method", { $0.metadata["preprocess.method"] = nil }),
            ("recipe.epochs", { $0.metadata["recipe.epochs"] = "0" }),
            ("recipe.momentum", { $0.metadata["recipe.momentum"] = "1.5" }),
            ("recipe.nesterov", { $0.metadata["recipe.nesterov"] = "yes" }),
            ("recipe.train_limit", { $0.metadata["recipe.train_limit"] = "-1" }),
            ("recipe.dataset", { $0.metadata["recipe.dataset"] = "imagenet" }),
            ("recipe.whiten", { $0.metadata["recipe.whiten"] = "zca" }),
            ("recipe.color", { $0.metadata["recipe.color"] = "red" }),
            ("data.train_hash", { $0.metadata["data.train_hash"] = "xyz" }),
            ("data.train_images", { $0.metadata["data.train_images"] = "8" }),
            ("data.test_images", { $0.metadata["data.test_images"] = "100" }),
            ("format", { $0.metadata["format"] = "other" }),
        ]
        for (field, edit) in cases {
            var contents = good
            try edit(&contents)
            assertThrowsMessage(try TrainingCheckpoint.decode(contents, file: "c.safetensors").validateForTest(trainer), contains: "c.safetensors", field)
        }
    }

    func testRecipeRoundTripsAndNamesDifferences() throws {
        var o = options()
        o.learningRate = 0.00006; o.momentum = 0.123; o.nesterov = true; o.flip = false; o.translate = 0; o.whiten = .gcnZCA; o.zcaEpsilon = 0.05
        o.seed = UInt64(Int.max); o.labels = .coarse; o.dataset = .cifar100; o.testLimit = nil
        let back = try TrainingOptions(recipe: o.recipeMetadata(), file: "f")
        XCTAssertEqual(back.recipeMetadata(), o.recipeMetadata())
        XCTAssertEqual(back.learningRate.bitPattern, o.learningRate.bitPattern)
        XCTAssertEqual(back.zcaEpsilon.bitPattern, o.zcaEpsilon.bitPattern)
        XCTAssertEqual(back.seed, o.seed)
        XCTAssertNil(back.testLimit)
        XCTAssertEqual(TrainingOptions.recipeFields.count, o.recipeMetadata().count)
        var other = o
        other.epochs = 99; other.dataDirectory = "/elsewhere"
        XCTAssertTrue(o.recipeDifferences(from: other, ignoring: ["recipe.epochs"]).isEmpty)
        other.batch = 8
        let d = o.recipeDifferences(from: other, ignoring: ["recipe.epochs"])
        XCTAssertEqual(d.map(\.field.flag), ["--batch"])
        XCTAssertEqual(d.first?.mine, "16"); XCTAssertEqual(d.first?.theirs, "8")
    }

    /// restore() refuses another recipe, other images or other preprocessing.
    func testRestoreRefusesAnotherRecipeDataOrPreprocessing() throws {
        let data = try sample()
        let trainer = try Trainer(graph: try graph(), train: data.train, test: data.test, options: options())
        let checkpoint = try trainer.checkpoint()
        var seed = options(); seed.seed = 9
        assertThrowsMessage(try Trainer(graph: try graph(), train: data.train, test: data.test, options: seed).restore(from: checkpoint, file: "k"),
                            contains: "k: the run has recipe.seed 1, this trainer 9")
        var limit = options(); limit.trainLimit = 48
        assertThrowsMessage(try Trainer(graph: try graph(), train: data.train, test: data.test, options: limit).restore(from: checkpoint, file: "k"),
                            contains: "recipe.train_limit 64")
        var changed = data.train
        changed.images[0] += 1
        assertThrowsMessage(try Trainer(graph: try graph(), train: changed, test: data.test, options: options()).restore(from: checkpoint, file: "k"),
                            contains: "k: the run trained on other images")
        var pre = try XCTUnwrap(checkpoint.preprocessor)
        pre.mean[0] += 1
        let other = try Trainer(graph: try graph(), train: data.train, test: data.test, options: options(), preprocessor: pre)
        XCTAssertEqual(other.preprocessor, pre, "the given preprocessing is used, not refitted")
        assertThrowsMessage(try other.restore(from: checkpoint, file: "k"), contains: "k: the checkpoint's preprocessing")
        var old = checkpoint
        old.recipe = nil
        assertThrowsMessage(try trainer.restore(from: old, file: "k"), contains: "k: written by an older dsl")
    }

    func testBatchLargerThanTheTrainingSetIsRefused() throws {
        let data = try sample()
        var o = options(); o.trainLimit = 10
        assertThrowsMessage(try Trainer(graph: try graph(), train: data.train, test: data.test, options: o),
                            contains: "10 images (--train-limit 10 of 1000), fewer than one batch (--batch 16)", "use --batch 10 or less")
        o.batch = 10
        let t = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        XCTAssertEqual(t.stepsPerEpoch, 1)
    }

    /// Labels index the confusion matrix and the loss: out-of-range labels and a class count
    /// other than the network's outputs are errors, not reads out of bounds.
    func testEvaluateChecksLabelsAndClasses() throws {
        let data = try sample()
        let trainer = try Trainer(graph: try graph(), train: data.train, test: data.test, options: options())
        var test = data.test.prefix(20)
        test.labels[7] = 10
        assertThrowsMessage(try trainer.evaluate(test), contains: "image 7 has label 10, outside the network's classes 0...9")
        test.labels[7] = -1
        assertThrowsMessage(try trainer.evaluate(test), contains: "image 7 has label -1")
        let twenty = try Dataset(images: [Float](repeating: 0, count: 2 * 3072), labels: [0, 19], count: 2, height: 32, width: 32, channels: 3, classes: 20)
        assertThrowsMessage(try trainer.evaluate(twenty), contains: "the network outputs 10 classes but the dataset has 20")
        assertThrowsMessage(try Trainer.checkClassifier(try graph(), fits: twenty, role: "test set"), contains: "outputs 10 classes but the test set has 20")
        // A softmax over a map classifies every pixel: its classes are the channels.
        XCTAssertEqual(try Trainer.classes(of: try graph("network x\ninput 8x8x3\nconv 1 1 10\nsoftmax")), 10)
        assertThrowsMessage(try Trainer.classes(of: try graph("network x\ninput 8x8x3\nconv 1 1 10\ngap")), contains: "must end in 'softmax'")
        // The evaluation loss is the engine's cross-entropy from the logits.
        let clean = try preprocessed(data.test.prefix(32), trainer)
        let e = try trainer.evaluate(clean)
        var direct = 0.0
        clean.images.withUnsafeBufferPointer { images in
            clean.labels.withUnsafeBufferPointer { labels in
                _ = trainer.engine.forward(images.baseAddress!, batch: 16, training: false)
                direct += Double(trainer.engine.loss(labels: labels.baseAddress!, batch: 16).loss) * 16
                _ = trainer.engine.forward(images.baseAddress! + 16 * 3072, batch: 16, training: false)
                direct += Double(trainer.engine.loss(labels: labels.baseAddress! + 16, batch: 16).loss) * 16
            }
        }
        XCTAssertEqual(e.loss, direct / 32)
    }

    func testRunDirectoryLockNamesTheHolderAndCleansStaleTemporaries() throws {
        let directory = try makeTemporaryDirectory(self) + "/a/b"
        try holdLock(directory)
        // Released with its holder.
        XCTAssertNoThrow(try RunDirectory(path: directory, label: "--out"))
    }

    private func holdLock(_ directory: String) throws {
        let run = try RunDirectory(path: directory, label: "--out")
        XCTAssertEqual(try String(contentsOfFile: directory + "/.lock", encoding: .utf8), "\(getpid())\n")
        assertThrowsMessage(try RunDirectory(path: directory, label: "--out"), contains: "--out \(directory): in use by another 'dsl train' (pid \(getpid())")
        FileManager.default.createFile(atPath: directory + "/.checkpoint.safetensors.tmp-1-2", contents: Data())
        FileManager.default.createFile(atPath: directory + "/.curves.svg.tmp-3", contents: Data())
        FileManager.default.createFile(atPath: directory + "/.other.tmp-3", contents: Data())
        XCTAssertEqual(run.removeStaleTemporaryFiles().map { URL(fileURLWithPath: $0).lastPathComponent }, [".checkpoint.safetensors.tmp-1-2", ".curves.svg.tmp-3"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory + "/.other.tmp-3"))
    }

    func testSafeNames() {
        XCTAssertEqual(RunDirectory.safeName(".."), "_")
        XCTAssertEqual(RunDirectory.safeName("."), "_")
        XCTAssertEqual(RunDirectory.safeName(".x.y"), "_x.y")
        XCTAssertEqual(RunDirectory.safeName("a/b c"), "a_b_c")
        XCTAssertEqual(RunDirectory.safeName("pyramid-net_v1.2"), "pyramid-net_v1.2")
        XCTAssertEqual(RunDirectory.safeName(""), "network")
        XCTAssertEqual(RunDirectory.safeName("réseau"), "r_seau")
    }

    func testMetricsLogKeepsGoodLinesAndListsBadOnes() throws {
        let path = try makeTemporaryDirectory(self) + "/m.jsonl"
        let one = EpochMetrics(epoch: 1, step: 4, learningRate: 0.1, trainLoss: 2, trainAccuracy: 0.1, imagesPerSecond: 10, elapsedSeconds: 1)
        let two = EpochMetrics(epoch: 2, step: 8, learningRate: 0.1, trainLoss: 1.5, trainAccuracy: 0.2, imagesPerSecond: 10, elapsedSeconds: 2)
        try writeBytes(Array((one.jsonLine + "\n{\"epoch\": \n\n\(two.jsonLine)\n{\"epoch\":-1,\"step\":0}\n\u{FF}\n").utf8), path)
        let log = try readMetricsLog(path: path)
        XCTAssertEqual(log.records.map(\.record), [one, two])
        XCTAssertEqual(log.records.map(\.line), [1, 4])
        XCTAssertEqual(log.problems.map(\.line), [2, 5, 6])
        assertThrowsMessage(try readMetrics(path: path), contains: "m.jsonl:2")
    }

    private func preprocessed(_ d: Dataset, _ t: Trainer) throws -> Dataset {
        var copy = d
        try t.preprocessor.apply(to: &copy)
        return copy
    }
}

extension TrainingCheckpoint {
    /// Decoding validates what the file alone can tell; restoring checks the rest against the
    /// network. Tests of damaged fields accept an error from either.
    func validateForTest(_ trainer: Trainer) throws {
        var probe = trainer.options
        probe.epochs = max(probe.epochs, epoch + 1)
        let t = try Trainer(graph: trainer.graph, train: try loadDataset(directory: repositoryRoot + "/data/cifar10-sample").train,
                            test: try loadDataset(directory: repositoryRoot + "/data/cifar10-sample").test, options: probe, preprocessor: preprocessor)
        try t.restore(from: self, file: "c.safetensors")
    }
}
