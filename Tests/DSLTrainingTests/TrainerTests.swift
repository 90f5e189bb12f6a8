import DSLEngine
import DSLIR
import XCTest
@testable import DSLTraining

/// The trainer end to end on the CIFAR-10 sample shipped in data/cifar10-sample.
final class TrainerTests: XCTestCase {
    static let smallNet = """
    network tiny
    input 32x32x3
    conv 3 1 16 bn
    conv 3 2 32 bn
    conv 3 2 32 bn
    dropout 0.2
    gap
    fc 10
    softmax
    """

    func graph(_ text: String = smallNet) throws -> Graph {
        let checked = Frontend.check(text: text)
        return try XCTUnwrap(checked.graph, "\(checked.diagnostics.items)")
    }

    func sample() throws -> (train: Dataset, test: Dataset) {
        try loadDataset(directory: repositoryRoot + "/data/cifar10-sample")
    }

    override func tearDown() { Trainer.stopRequested = false }

    func testShortRunOnShippedSampleLearnsAndBeatsChance() throws {
        let data = try sample()
        var o = TrainingOptions()
        o.epochs = 4; o.batch = 32; o.learningRate = 0.05; o.schedule = "cosine"
        let trainer = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        let before = try trainer.evaluate(try preprocessed(data.test, trainer))
        var firstLoss: Double?, lastEpochLoss = Double.nan
        let outcome = try trainer.run(report: { e in
            if case let .step(_, step, _, loss, _, _, _, _, _) = e, step == 1, firstLoss == nil { firstLoss = loss }
            if case let .epochEnded(_, loss, _, _, _, _, _) = e { lastEpochLoss = loss }
        }, checkpoint: { _ in })
        XCTAssertEqual(outcome, .finished)
        let after = try trainer.evaluate(try preprocessed(data.test, trainer))
        XCTAssertLessThan(lastEpochLoss, try XCTUnwrap(firstLoss) - 0.15, "training loss should fall")
        XCTAssertLessThan(after.loss, before.loss, "test loss should fall")
        XCTAssertGreaterThan(after.accuracy, 0.22, "accuracy \(after.accuracy) should beat chance (0.10) by a clear margin")
        XCTAssertEqual(after.confusion.joined().reduce(0, +), data.test.count)
    }

    /// Training interrupted mid-epoch and resumed from its checkpoint ends with exactly the same
    /// weights and momentum as an uninterrupted run.
    func testInterruptedAndResumedRunEqualsUninterruptedRun() throws {
        let data = try sample()
        var o = TrainingOptions()
        o.epochs = 2; o.batch = 16; o.trainLimit = 96; o.testLimit = 32; o.schedule = "step:0.5@1"
        engineThreadCount = 2
        let reference = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        _ = try reference.run(report: { _ in }, checkpoint: { _ in })

        let path = NSTemporaryDirectory() + "/dsl-resume-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let first = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        let outcome = try first.run(report: { e in
            if case let .step(epoch, step, _, _, _, _, _, _, _) = e, epoch == 2, step == 2 { Trainer.stopRequested = true }
        }, checkpoint: { t in
            try t.checkpoint().write(to: path)
        })
        XCTAssertEqual(outcome, .interrupted(epoch: 1, step: 2))
        Trainer.stopRequested = false

        let resumed = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        try resumed.restore(from: try TrainingCheckpoint.read(from: path), file: path)
        XCTAssertEqual(resumed.position, TrainingPosition(epoch: 1, step: 2))
        XCTAssertEqual(try resumed.run(report: { _ in }, checkpoint: { _ in }), .finished)

        let n = reference.engine.parameterCount
        let a = Array(UnsafeBufferPointer(start: reference.engine.parameterValues, count: n))
        let b = Array(UnsafeBufferPointer(start: resumed.engine.parameterValues, count: n))
        XCTAssertEqual(a, b, "resumed weights differ from the uninterrupted run")
        XCTAssertEqual(reference.optimizer.velocityValues, resumed.optimizer.velocityValues)
        for (x, y) in zip(reference.engine.buffers, resumed.engine.buffers) {
            XCTAssertEqual(Array(UnsafeBufferPointer(start: x.value, count: x.count)), Array(UnsafeBufferPointer(start: y.value, count: y.count)), x.name)
        }
        // And the run did train: weights moved away from a fresh initialisation.
        let fresh = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        XCTAssertNotEqual(a, Array(UnsafeBufferPointer(start: fresh.engine.parameterValues, count: n)))
    }

    func testCheckpointRoundTripRestoresEverything() throws {
        let data = try sample()
        var o = TrainingOptions()
        o.epochs = 1; o.batch = 16; o.trainLimit = 64; o.testLimit = 16; o.whiten = .standardize
        let trainer = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        _ = try trainer.run(report: { _ in }, checkpoint: { _ in })
        let path = try makeTemporaryDirectory(self) + "/ckpt.safetensors"
        try trainer.checkpoint().write(to: path)
        let contents = try readSafetensors(path: path)
        XCTAssertEqual(contents.metadata["spec_hash"], trainer.specHash)
        for p in trainer.engine.parameters {
            XCTAssertEqual(try contents.floats(p.name, shape: p.shape), Array(UnsafeBufferPointer(start: p.value, count: p.count)), p.name)
        }
        for b in trainer.engine.buffers {
            XCTAssertEqual(try contents.floats(b.name, shape: b.shape), Array(UnsafeBufferPointer(start: b.value, count: b.count)), b.name)
        }
        let checkpoint = try TrainingCheckpoint.read(from: path)
        XCTAssertEqual(checkpoint.epoch, 1)
        // The checkpoint completed its 1 epoch: only a longer run can resume it.
        var longer = o
        longer.epochs = 2
        let other = try Trainer(graph: try graph(), train: data.train, test: data.test, options: longer)
        try other.restore(from: checkpoint, file: path)
        XCTAssertEqual(other.position, trainer.position)
        XCTAssertEqual(other.optimizer.velocityValues, trainer.optimizer.velocityValues)
        XCTAssertEqual(checkpoint.preprocessor, trainer.preprocessor)
    }

    func testCheckpointOfAnotherNetworkIsRefused() throws {
        let data = try sample()
        var o = TrainingOptions()
        o.epochs = 1; o.batch = 16; o.trainLimit = 16; o.testLimit = 16
        let trainer = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o)
        let checkpoint = try trainer.checkpoint()
        let wider = try Trainer(graph: try graph(Self.smallNet.replacingOccurrences(of: "conv 3 1 16 bn", with: "conv 3 1 24 bn")),
                                train: data.train, test: data.test, options: o)
        XCTAssertThrowsError(try wider.restore(from: checkpoint, file: "a.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("different network"), "\(error)")
        }
    }

    func testNaNLossStopsWithAClearMessage() throws {
        let data = try sample()
        var o = TrainingOptions()
        o.epochs = 1; o.batch = 16; o.trainLimit = 64; o.testLimit = 16; o.learningRate = 1e6; o.schedule = "constant"
        let trainer = try Trainer(graph: try graph(Self.smallNet.replacingOccurrences(of: " bn", with: "")), train: data.train, test: data.test, options: o)
        XCTAssertThrowsError(try trainer.run(report: { _ in }, checkpoint: { _ in })) { error in
            XCTAssertTrue("\(error)".contains("lower learning rate"), "\(error)")
        }
    }

    func testMismatchedDatasetIsRefused() throws {
        let data = try sample()
        XCTAssertThrowsError(try Trainer(graph: try graph(Self.smallNet.replacingOccurrences(of: "32x32x3", with: "28x28x1")), train: data.train, test: data.test, options: TrainingOptions())) {
            XCTAssertTrue("\($0)".contains("training set's images are 32x32x3"), "\($0)")
        }
    }

    private func preprocessed(_ d: Dataset, _ t: Trainer) throws -> Dataset {
        var copy = d
        try t.preprocessor.apply(to: &copy)
        return copy
    }
    /// ZCA fitted on fewer images than features is flagged (test images come out unlike the
    /// training images); with enough images, or other preprocessing, nothing is said. The
    /// chosen ε reaches the fitted preprocessor.
    func testZCAOnTooFewImagesIsFlagged() throws {
        let data = try sample()
        let train = try croppedImages(data.train), test = try croppedImages(data.test)   // 192 features
        let net = try graph("network small\ninput 8x8x3\nconv 3 1 8\ngap\nfc 10\nsoftmax\n")
        var o = TrainingOptions()
        o.whiten = .gcnZCA
        o.zcaEpsilon = 0.25
        o.trainLimit = 150
        let few = try Trainer(graph: net, train: train, test: test, options: o)
        XCTAssertEqual(few.preprocessor.zcaEpsilon, 0.25)
        let warning = try XCTUnwrap(few.zcaWarning)
        XCTAssertTrue(warning.contains("150 images of 192 features"), warning)
        XCTAssertTrue(warning.contains("1/√ε = 2"), warning)
        XCTAssertTrue(few.description.contains("warning: ZCA fitted on 150 images"))
        o.trainLimit = nil   // 1,000 images
        XCTAssertNil(try Trainer(graph: net, train: train, test: test, options: o).zcaWarning)
        o.trainLimit = 150; o.whiten = .standardize
        XCTAssertNil(try Trainer(graph: net, train: train, test: test, options: o).zcaWarning)
    }
}
