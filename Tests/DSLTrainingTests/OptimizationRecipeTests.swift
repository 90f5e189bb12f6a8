import DSLEngine
import DSLIR
import Foundation
import XCTest
@testable import DSLTraining

/// The optimiser, loss and schedule options of issue 18 in the trainer: airbench's recipe in
/// small (fractional epochs, per-step linear schedule, decoupled lr and decay on every
/// parameter, batch-norm shifts at 64× the rate, label smoothing, lookahead, a parameter
/// trained in the first epoch only and one never), resumed exactly, thread-independent.
final class OptimizationRecipeTests: XCTestCase {
    static let net = """
    network tiny
    input 32x32x3
    conv 3 2 8 bn
    gap
    fc 10
    softmax
    """

    func graph() throws -> Graph {
        let checked = Frontend.check(text: Self.net)
        return try XCTUnwrap(checked.graph, "\(checked.diagnostics.items)")
    }

    func sample() throws -> (train: Dataset, test: Dataset) {
        try loadDataset(directory: repositoryRoot + "/data/cifar10-sample")
    }

    /// 64 images in batches of 16: 4 steps an epoch, 2.5 epochs = 10 steps in 3 epochs.
    func options() throws -> TrainingOptions {
        var o = TrainingOptions()
        o.trainingEpochs = 2.5; o.batch = 16; o.trainLimit = 64; o.testLimit = 16
        o.schedule = "linear:0.2,0.07@0.23"; o.momentum = 0.85; o.nesterov = true
        o.decoupled = true; o.learningRate = 11.5; o.weightDecay = 0.0153
        o.weightDecayScope = .all; o.batchNormBiasLearningRate = 64; o.labelSmoothing = 0.2
        o.lookahead = try LookaheadSchedule(every: 3)
        o.dataDirectory = "/data/somewhere"; o.dataset = .cifar10
        return o
    }

    override func tearDown() { Trainer.stopRequested = false }

    /// A trainer whose conv weight trains in epoch 0 only and whose batch-norm scale never
    /// (what `freeze` and `train-epochs=` will say in the language).
    func trainer(_ o: TrainingOptions, data: (train: Dataset, test: Dataset), preprocessor: Preprocessor? = nil) throws -> Trainer {
        let t = try Trainer(graph: try graph(), train: data.train, test: data.test, options: o, preprocessor: preprocessor)
        let names = t.engine.parameters.map(\.name)
        let conv = try XCTUnwrap(t.engine.parameters.first { $0.name.hasSuffix(".weight") && $0.shape.count == 4 }, "\(names)")
        let scale = try XCTUnwrap(t.engine.parameters.first { $0.name.hasSuffix(".bn.weight") }, "\(names)")
        try t.optimizer.setTraining(.firstEpochs(1), forGroup: conv.offset..<(conv.offset + conv.count))
        try t.optimizer.setTraining(.never, forGroup: scale.offset..<(scale.offset + scale.count))
        return t
    }

    func bytes(_ checkpoint: TrainingCheckpoint) throws -> [UInt8] {
        var c = checkpoint
        c.elapsedSeconds = 0
        let path = try makeTemporaryDirectory(self) + "/c.safetensors"
        try c.write(to: path)
        return try readFileBytes(path)
    }

    func testAirbenchStyleRunTakesItsStepsResumesExactlyAndIsThreadIndependent() throws {
        let data = try sample()
        let saved = engineThreadCount
        defer { engineThreadCount = saved }
        let o = try options()

        engineThreadCount = 2
        let reference = try trainer(o, data: data)
        XCTAssertEqual(reference.stepsPerEpoch, 4)
        XCTAssertEqual(reference.totalSteps, 10)
        XCTAssertEqual((0..<3).map { reference.steps(inEpoch: $0) }, [4, 4, 2])
        let conv = reference.engine.parameters.first { $0.name.hasSuffix(".weight") && $0.shape.count == 4 }!
        var convAfterEpoch: [[Float]] = []
        var steps: [(Int, Int, Int, Float)] = []
        XCTAssertEqual(try reference.run(report: { e in
            if case let .step(epoch, step, total, _, _, _, _, _, rate) = e { steps.append((epoch, step, total, rate)) }
            if case .epochEnded = e { convAfterEpoch.append(Array(UnsafeBufferPointer(start: conv.value, count: conv.count))) }
        }, checkpoint: { _ in }), .finished)
        XCTAssertEqual(steps.map { "\($0.0).\($0.1)/\($0.2)" }, ["1.1/4", "1.2/4", "1.3/4", "1.4/4", "2.1/4", "2.2/4", "2.3/4", "2.4/4", "3.1/2", "3.2/2"])
        // lr_t = 11.5·16/(1024·(1 + 1/0.15)) = 0.0234375 × airbench's factor: 0.2 at step 0;
        // W = int(10·0.23) = 2, so step 2 is the peak, and step 9 is 7/8 of the way down.
        let base = 11.5 * 16 / (1024 * (1 + 1 / 0.15))
        XCTAssertEqual(Double(o.stepLearningRate), base, accuracy: 1e-9)
        XCTAssertEqual(Double(steps[0].3), base * 0.2, accuracy: 1e-8)
        XCTAssertEqual(Double(steps[2].3), base, accuracy: 1e-8)
        XCTAssertEqual(Double(steps[9].3), base * (1 + (0.07 - 1) * 7.0 / 8), accuracy: 1e-8)
        XCTAssertNotEqual(convAfterEpoch[0], convAfterEpoch[1], "lookahead still moves a frozen weight toward its average")
        let final = try reference.checkpoint()
        // The batch-norm scale never trains: the average of a constant 1 is 1.
        let scale = reference.engine.parameters.first { $0.name.hasSuffix(".bn.weight") }!
        XCTAssertEqual(Array(UnsafeBufferPointer(start: scale.value, count: scale.count)), [Float](repeating: 1, count: scale.count))
        // The run ends with w ← ema: the weights and statistics are the average.
        let state = Array(UnsafeBufferPointer(start: reference.engine.parameterValues, count: reference.engine.parameterCount))
            + reference.engine.buffers.flatMap { Array(UnsafeBufferPointer(start: $0.value, count: $0.count)) }
        XCTAssertEqual(final.lookahead, state)

        engineThreadCount = 1
        let single = try trainer(o, data: data)
        _ = try single.run(report: { _ in }, checkpoint: { _ in })
        XCTAssertTrue(try bytes(single.checkpoint()) == bytes(final), "1 and 2 threads")

        // Interrupted inside the partial last epoch (after the conv weight froze, between two
        // lookahead updates), and at the end of epoch 1; each resumed from its checkpoint.
        engineThreadCount = 2
        for (stopEpoch, stopStep) in [(3, 1), (1, 4), (2, 2)] {
            let path = try makeTemporaryDirectory(self) + "/ckpt.safetensors"
            let first = try trainer(o, data: data)
            _ = try first.run(report: { e in
                if case let .step(epoch, step, _, _, _, _, _, _, _) = e, epoch == stopEpoch, step == stopStep { Trainer.stopRequested = true }
            }, checkpoint: { try $0.checkpoint().write(to: path) })
            Trainer.stopRequested = false
            let stored = try TrainingCheckpoint.read(from: path)
            XCTAssertNotNil(stored.lookahead)
            XCTAssertEqual(stored.recipe?.recipeMetadata(), o.recipeMetadata())
            let resumed = try trainer(stored.recipe!, data: data, preprocessor: stored.preprocessor)
            try resumed.restore(from: stored, file: path)
            XCTAssertEqual(try resumed.run(report: { _ in }, checkpoint: { _ in }), .finished)
            XCTAssertTrue(try bytes(resumed.checkpoint()) == bytes(final), "stopped at epoch \(stopEpoch) step \(stopStep)")
        }
    }

    /// Each option changes the run (so the tests above can fail): a run without it ends elsewhere.
    func testEveryOptionChangesTheRun() throws {
        let data = try sample()
        let base = try options()
        let reference = try trainer(base, data: data)
        _ = try reference.run(report: { _ in }, checkpoint: { _ in })
        let final = try reference.checkpoint().parameters
        var variants: [(String, TrainingOptions)] = []
        var o = base; o.labelSmoothing = 0; variants.append(("label smoothing", o))
        o = base; o.lookahead = nil; variants.append(("lookahead", o))
        o = base; o.batchNormBiasLearningRate = 1; variants.append(("bn-bias-lr", o))
        o = base; o.weightDecayScope = .weights; variants.append(("weight-decay-on", o))
        o = base; o.trainingEpochs = 2.25; variants.append(("epochs", o))
        o = base; o.decoupled = false; o.learningRate = 0.02; o.weightDecay = 0.0153 / 11.5; variants.append(("decoupled", o))
        for (name, variant) in variants {
            let t = try trainer(variant, data: data)
            _ = try t.run(report: { _ in }, checkpoint: { _ in })
            XCTAssertNotEqual(try t.checkpoint().parameters, final, name)
        }
    }

    /// airbench94's decoupled numbers: lr 11.5 and weight decay 0.0153 at batch 1024 and
    /// momentum 0.85 are a step rate of 1.5 on the mean loss and an L2 coefficient of
    /// 0.0153/11.5, so that the decay per step, 1.5 × 0.00133043 = 0.0019957, is airbench's
    /// wd = 0.0153 × 1024 / (1024 × (1 + 1/0.15)).
    func testDecoupledHyperparametersAreAirbenchs() throws {
        var o = TrainingOptions()
        o.batch = 1024; o.momentum = 0.85; o.learningRate = 11.5; o.weightDecay = 0.0153
        XCTAssertEqual(o.stepLearningRate, 11.5)
        XCTAssertEqual(o.l2Coefficient, 0.0153)
        o.decoupled = true
        XCTAssertEqual(Double(o.stepLearningRate), 1.5, accuracy: 1e-6)
        XCTAssertEqual(Double(o.l2Coefficient), 0.0153 / 11.5, accuracy: 1e-9)
        let kilostep = 1024 * (1 + 1 / (1 - 0.85))
        XCTAssertEqual(Double(o.stepLearningRate) / 1024, 11.5 / kilostep, accuracy: 1e-9, "PyTorch's lr on the summed loss")
        XCTAssertEqual(Double(o.stepLearningRate * o.l2Coefficient), 0.0153 * 1024 / kilostep, accuracy: 1e-9)
        o.batch = 512
        XCTAssertEqual(Double(o.stepLearningRate), 0.75, accuracy: 1e-6)
    }

    /// The lookahead update on an engine's parameters and batch-norm statistics, from its
    /// definition (PyTorch's lerp_: ema + t·(w − ema) for t < 0.5, else w − (w − ema)·(1 − t)).
    func testLookaheadAverageFollowsTheDefinition() throws {
        let g = EngineGraph(inputShape: (2, 2, 3), maxBatch: 1, seed: 1)
        try g.add(.batchNorm(), inputs: [0], name: "bn")
        try g.add(.linear(outFeatures: 4, bias: true), inputs: [1], name: "fc")
        try g.add(.softmax, inputs: [2], name: "softmax")
        try g.compile(training: true)
        let average = LookaheadAverage(engine: g)
        XCTAssertEqual(average.count, g.parameterCount + 6)
        func state() -> [Float] {
            Array(UnsafeBufferPointer(start: g.parameterValues, count: g.parameterCount)) + g.buffers.flatMap { Array(UnsafeBufferPointer(start: $0.value, count: $0.count)) }
        }
        func set(_ values: [Float]) {
            g.parameterValues.update(from: values, count: g.parameterCount)
            var offset = g.parameterCount
            for b in g.buffers { b.value.update(from: Array(values[offset..<(offset + b.count)]), count: b.count); offset += b.count }
        }
        let n = average.count
        let start = (0..<n).map { Float(sin(Double($0))) }
        set(start)
        average.start()
        XCTAssertEqual(average.values, start)
        var ema = start
        for (k, alpha) in [0.3, 0.7, 0.95].enumerated() {
            let w = (0..<n).map { Float(cos(Double($0 * (k + 2)))) }
            set(w)
            average.update(decay: alpha)
            let t = Float(1 - alpha)
            for i in 0..<n { ema[i] = t < 0.5 ? ema[i] + t * (w[i] - ema[i]) : w[i] - (w[i] - ema[i]) * (1 - t) }
            XCTAssertEqual(average.values, ema, "α \(alpha)")
            XCTAssertEqual(state(), ema, "w ← ema")
        }
        set([Float](repeating: 5, count: n))
        average.copyToWeights()
        XCTAssertEqual(state(), ema)
        // α = 0.95^K·(t/T)^P.
        let schedule = try LookaheadSchedule(every: 5)
        XCTAssertEqual(schedule.decay(afterStep: 238, of: 476), pow(0.95, 5) * 0.125, accuracy: 1e-12)
        XCTAssertEqual(try LookaheadSchedule.parse("5"), schedule)
        XCTAssertEqual(try LookaheadSchedule.parse("4,0.9,2"), try LookaheadSchedule(every: 4, base: 0.9, power: 2))
        XCTAssertNil(try LookaheadSchedule.parse("none"))
        assertThrowsMessage(try LookaheadSchedule.parse("0"), contains: "at least 1")
        assertThrowsMessage(try LookaheadSchedule.parse("5,x"), contains: "K,BASE,POWER")
        assertThrowsMessage(try average.setValues([1]), contains: "1 values")
    }

    /// The new recipe fields round-trip; a checkpoint written before they existed reads with
    /// the behaviour of its time; a lookahead tensor without --lookahead, or missing with it, is refused.
    func testRecipeFieldsAndOlderCheckpoints() throws {
        let o = try options()
        let metadata = o.recipeMetadata()
        XCTAssertEqual(metadata["recipe.epochs"], "2.5")
        XCTAssertEqual(metadata["recipe.schedule"], "linear:0.2,0.07@0.23")
        XCTAssertEqual(metadata["recipe.lookahead"], "3")
        XCTAssertEqual(metadata["recipe.weight_decay_on"], "all")
        XCTAssertEqual(metadata["recipe.decoupled"], "true")
        let back = try TrainingOptions(recipe: metadata, file: "k")
        XCTAssertEqual(back.recipeMetadata(), metadata)
        XCTAssertEqual(back.trainingEpochs, 2.5)
        XCTAssertEqual(back.epochs, 3)

        var old = TrainingOptions().recipeMetadata()
        for key in ["recipe.decoupled", "recipe.weight_decay_on", "recipe.bn_bias_lr", "recipe.label_smoothing", "recipe.lookahead"] { old[key] = nil }
        let older = try TrainingOptions(recipe: old, file: "k")
        XCTAssertEqual(older.recipeMetadata(), TrainingOptions().recipeMetadata())
        XCTAssertEqual(TrainingOptions().recipeMetadata()["recipe.epochs"], "10")

        var bad = metadata
        bad["recipe.lookahead"] = "0"
        assertThrowsMessage(try TrainingOptions(recipe: bad, file: "k"), contains: "recipe.lookahead", "--lookahead")
        bad = metadata; bad["recipe.weight_decay_on"] = "biases"
        assertThrowsMessage(try TrainingOptions(recipe: bad, file: "k"), contains: "recipe.weight_decay_on", "weights or all")
        bad = metadata; bad["recipe.epochs"] = "0"
        assertThrowsMessage(try TrainingOptions(recipe: bad, file: "k"), contains: "recipe.epochs")

        let data = try sample()
        let t = try trainer(o, data: data)
        let path = try makeTemporaryDirectory(self) + "/ckpt.safetensors"
        _ = try t.run(report: { e in if case .step = e { Trainer.stopRequested = true } }, checkpoint: { try $0.checkpoint().write(to: path) })
        Trainer.stopRequested = false
        var stored = try TrainingCheckpoint.read(from: path)
        stored.lookahead = nil
        assertThrowsMessage(try trainer(o, data: data, preprocessor: stored.preprocessor).restore(from: stored, file: "k"), contains: "optimizer.lookahead")
        var plain = o
        plain.lookahead = nil
        stored = try TrainingCheckpoint.read(from: path)
        stored.recipe = plain
        stored.metadata = [:]
        let other = try Trainer(graph: try graph(), train: data.train, test: data.test, options: plain, preprocessor: stored.preprocessor)
        assertThrowsMessage(try other.restoreLookahead(stored, file: "k"), contains: "no --lookahead")
    }
}
