import DSLEngine
import DSLIR
import Foundation
import XCTest
@testable import DSLTraining

/// The dead-network guard of `Trainer.run` (`DeadNetworkGuard`): it stops a run whose output
/// layer died, keeps the checkpoint of the last epoch that ended alive, and never fires on a
/// healthy run.
final class DeadNetworkGuardTests: XCTestCase {
    /// An All-CNN-like network without batch norm whose last convolution has a ReLU before the
    /// global average pooling, like the paper's, but no bias (so it does not get the ReLU
    /// classifier's starting bias 1, which keeps it alive longer): a learning rate of 0.7 kills
    /// that ReLU after an epoch that ends alive.
    /// Its text is Tests/CLITests/fixtures/dead-network.dsl, shared with CLITests' DeadNetworkTests.
    static let allConvNetPath = repositoryRoot + "/Tests/CLITests/fixtures/dead-network.dsl"

    /// A convolution, global average pooling and a fully connected head (no ReLU after it).
    static let fcNet = "network fcdead\ninput 32x32x3\nconv 3 2 8\ngap\nfc 10\nsoftmax\n"

    func graph(contentsOfFile path: String) throws -> Graph {
        try graph(String(contentsOfFile: path, encoding: .utf8))
    }

    func graph(_ text: String) throws -> Graph {
        let checked = Frontend.check(text: text)
        return try XCTUnwrap(checked.graph, "\(checked.diagnostics.items)")
    }

    func sample() throws -> (train: Dataset, test: Dataset) {
        try loadDataset(directory: repositoryRoot + "/data/cifar10-sample")
    }

    override func tearDown() { Trainer.stopRequested = false }

    /// 640 images in batches of 32 (20 steps an epoch), a constant rate.
    func options(lr: Float, epochs: Int = 8) -> TrainingOptions {
        var o = TrainingOptions()
        o.epochs = epochs; o.batch = 32; o.trainLimit = 640; o.testLimit = 100; o.learningRate = lr; o.schedule = "constant"
        return o
    }

    /// What a run did: its batch losses in order, the positions it checkpointed at, and how it ended.
    struct Observed {
        var losses: [Double] = []
        var checkpoints: [TrainingPosition] = []
        var outcome: Result<TrainingOutcome, Error>
    }

    func observe(_ trainer: Trainer) -> Observed {
        var losses: [Double] = [], checkpoints: [TrainingPosition] = []
        let outcome = Result {
            try trainer.run(report: { e in
                if case let .step(_, _, _, _, _, _, _, loss, _) = e { losses.append(loss) }
            }, checkpoint: { t in checkpoints.append(t.position) })
        }
        return Observed(losses: losses, checkpoints: checkpoints, outcome: outcome)
    }

    /// The ReLU of the last convolution dies at --lr 0.7: the guard stops the run after 50 dead
    /// steps naming that layer, the epochs that ended inside the dead streak were not
    /// checkpointed, and the network it stopped outputs exactly ln 10 on the test set.
    func testGuardStopsANetworkWhoseLastReLUDied() throws {
        let data = try sample()
        let trainer = try Trainer(graph: try graph(contentsOfFile: Self.allConvNetPath), train: data.train, test: data.test, options: options(lr: 0.7))
        let run = observe(trainer)
        guard case .failure(let failure) = run.outcome, let error = failure as? DeadNetworkError else {
            return XCTFail("expected a DeadNetworkError, got \(run.outcome)")
        }
        XCTAssertEqual(error.layer, "conv4")
        XCTAssertEqual(error.outputLayer, "conv4")
        XCTAssertEqual(error.deadSteps, DeadNetworkGuard.steps)
        XCTAssertEqual(error.classes, 10)
        let steps = trainer.stepsPerEpoch
        let fired = (error.epoch - 1) * steps + error.step          // 1-based global step
        XCTAssertEqual(run.losses.count, fired - 1, "the step that fired is not reported")
        // The last 49 reported steps and the one that fired sat at ln 10.
        for loss in run.losses.suffix(DeadNetworkGuard.steps - 1) { XCTAssertEqual(loss, log(10), accuracy: 0.02 * log(10)) }
        // No checkpoint inside the dead streak; the last one written is the one the error names.
        let streakStart = fired - DeadNetworkGuard.steps          // global steps done before the streak
        XCTAssertFalse(run.checkpoints.isEmpty, "the network trained for epochs before dying")
        for p in run.checkpoints { XCTAssertLessThanOrEqual(p.epoch * steps + p.step, streakStart, "checkpoint \(p) inside the dead streak") }
        XCTAssertGreaterThan(error.epoch - 1, run.checkpoints.last?.epoch ?? .max, "an epoch ended inside the streak")
        XCTAssertEqual(error.lastCheckpoint, run.checkpoints.last)
        XCTAssertEqual(trainer.lastCheckpoint, run.checkpoints.last)
        // Dead for the test images too: every logit is zero.
        var test = data.test.prefix(100)
        try trainer.preprocessor.apply(to: &test)
        let evaluation = try trainer.evaluate(test)
        XCTAssertEqual(evaluation.loss, log(10), accuracy: 1e-5)
        // The message names the layer and suggests only flags that exist.
        let message = "\(error)"
        for fragment in ["epoch \(error.epoch), step \(error.step)", "50 consecutive steps", "ln 10 = 2.3026", "every unit of conv4",
                         "--lr 0.1", "--schedule constant+warmup:1"] {
            XCTAssertTrue(message.contains(fragment), "'\(fragment)' not in: \(message)")
        }
        XCTAssertNoThrow(try LearningRateSchedule.parse(try XCTUnwrap(error.suggestedSchedule), baseRate: 0.1, totalEpochs: 8))
    }

    /// The same network at --lr 0.05 learns: the guard never fires, every epoch is checkpointed.
    func testGuardDoesNotFireOnAHealthyRun() throws {
        let data = try sample()
        let trainer = try Trainer(graph: try graph(contentsOfFile: Self.allConvNetPath), train: data.train, test: data.test, options: options(lr: 0.05, epochs: 4))
        let run = observe(trainer)
        guard case .success(let outcome) = run.outcome else { return XCTFail("\(run.outcome)") }
        XCTAssertEqual(outcome, .finished)
        XCTAssertEqual(run.checkpoints, (1...4).map { TrainingPosition(epoch: $0, step: 0) })
        XCTAssertLessThan(run.losses.suffix(20).reduce(0, +) / 20, log(10) - 0.05, "the healthy run learns")
    }

    /// The loss alone does not fire the guard: a fully connected head with weights scaled down
    /// to a tenth, at a learning rate too small to move them, keeps the loss at ln 10 for more
    /// than 50 steps, but gradients reach the output layer and its logits differ between images.
    func testLossAtChanceWithGradientsDoesNotFire() throws {
        let data = try sample()
        let trainer = try Trainer(graph: try graph(Self.fcNet), train: data.train, test: data.test, options: options(lr: 1e-7, epochs: 3))
        let head = try XCTUnwrap(trainer.engine.parameters.first { $0.name == "fc1.weight" })
        for i in 0..<head.count { head.value[i] *= 0.1 }
        let run = observe(trainer)
        guard case .success = run.outcome else { return XCTFail("\(run.outcome)") }
        XCTAssertGreaterThan(run.losses.count, DeadNetworkGuard.steps)
        XCTAssertEqual(run.losses.reduce(0, +) / Double(run.losses.count), log(10), accuracy: DeadNetworkGuard.tolerance * log(10),
                       "precondition: the mean loss within the guard's tolerance of ln 10")
    }

    /// A fully connected head whose input died (the convolution before it outputs zero for
    /// every image: zero weights, a negative bias) still learns its bias, so its loss is near
    /// but not exactly ln 10; its weights get no gradient, and the guard names the layer
    /// feeding it.
    func testGuardNamesTheLayerFeedingAnFCHead() throws {
        let data = try sample()
        let g = try graph(Self.fcNet)
        let trainer = try Trainer(graph: g, train: data.train, test: data.test, options: options(lr: 0.05, epochs: 4))
        for p in trainer.engine.parameters where p.name.hasPrefix("conv1.") {
            p.value.update(repeating: p.name == "conv1.bias" ? -1 : 0, count: p.count)
        }
        let run = observe(trainer)
        guard case .failure(let failure) = run.outcome, let error = failure as? DeadNetworkError else {
            return XCTFail("expected a DeadNetworkError, got \(run.outcome)")
        }
        XCTAssertEqual(error.outputLayer, "fc1")
        XCTAssertEqual(error.layer, "conv1")
        XCTAssertEqual(error.epoch * trainer.stepsPerEpoch - trainer.stepsPerEpoch + error.step, DeadNetworkGuard.steps, "dead from the first step")
        XCTAssertNil(error.lastCheckpoint, "no epoch ended alive")
        XCTAssertTrue(run.checkpoints.isEmpty)
        XCTAssertTrue(run.losses.contains { abs($0 - log(10)) > 0.02 * log(10) }, "the fc bias learns: single batches stray from ln 10")
        XCTAssertTrue("\(error)".contains("its input is zero for every image (every unit of conv1 died)"), "\(error)")
    }

    /// Resuming from the checkpoint the guard kept replays the same steps and stops at the same
    /// step with the same message: the guard is deterministic.
    func testResumedRunDiesAtTheSameStep() throws {
        let data = try sample()
        let path = try makeTemporaryDirectory(self) + "/checkpoint.safetensors"
        let first = try Trainer(graph: try graph(contentsOfFile: Self.allConvNetPath), train: data.train, test: data.test, options: options(lr: 0.7))
        var written: TrainingCheckpoint?
        let original: DeadNetworkError
        do {
            _ = try first.run(report: { _ in }, checkpoint: { t in written = try t.checkpoint(); try written!.write(to: path) })
            return XCTFail("the guard did not fire")
        } catch let e as DeadNetworkError { original = e }
        let stored = try TrainingCheckpoint.read(from: path)
        XCTAssertEqual(TrainingPosition(epoch: stored.epoch, step: stored.step), original.lastCheckpoint)
        let second = try Trainer(graph: try graph(contentsOfFile: Self.allConvNetPath), train: data.train, test: data.test, options: options(lr: 0.7), preprocessor: stored.preprocessor)
        try second.restore(from: stored, file: path)
        do {
            _ = try second.run(report: { _ in }, checkpoint: { _ in XCTFail("no epoch ends alive after the checkpoint") })
            XCTFail("the guard did not fire after resuming")
        } catch let e as DeadNetworkError {
            XCTAssertEqual("\(e)", "\(original)")
            XCTAssertEqual(e.lastCheckpoint, original.lastCheckpoint)
        }
    }
}
