import DSLEngine
import DSLIR
import Foundation

/// Everything that shapes a training run (`dsl train --help` documents each).
public struct TrainingOptions: Sendable {
    /// Passes over the training set, possibly fractional: 9.9 runs ⌈48 × 9.9⌉ = 476 steps of
    /// 48-step epochs, 10 epochs of which the last is partial (`LearningRateSchedule.totalSteps`).
    public var trainingEpochs: Double = 10
    /// Epochs run, ⌈trainingEpochs⌉; setting it sets a whole number of epochs.
    public var epochs: Int {
        get { LearningRateSchedule.epochsRun(trainingEpochs) }
        set { trainingEpochs = Double(newValue) }
    }
    /// Images per step.
    public var batch = 64
    /// Base learning rate.
    public var learningRate: Float = 0.05
    /// SGD momentum.
    public var momentum: Float = 0.9
    /// Nesterov momentum instead of classical.
    public var nesterov = false
    /// L2 weight decay (on weights only, not biases or batch norm).
    public var weightDecay: Float = 1e-3
    /// Learning-rate schedule text, e.g. `step:0.1@200,250,300`, `cosine`, `constant`; `+warmup:N`.
    public var schedule = "cosine"
    /// Horizontal flips: random per image and step, airbench's alternating scheme, or none.
    public var flipMode: FlipMode = .random
    /// Whether images are flipped at all (`flipMode != .off`); setting it picks random or off.
    public var flip: Bool {
        get { flipMode != .off }
        set { flipMode = newValue ? .random : .off }
    }
    /// Random translations: padding in pixels before a random crop (0: off).
    public var translate = 2
    /// What the translation's padding shows: zeros or the mirrored border.
    public var padMode: PadMode = .zero
    /// Input preprocessing.
    public var whiten: Preprocessor.Method = .standardize
    /// ZCA regularisation ε (with `whiten == .gcnZCA`).
    public var zcaEpsilon: Float = Preprocessor.defaultZCAEpsilon
    /// Seed for weights, shuffling, augmentation and dropout.
    public var seed: UInt64 = 1
    /// Use only the first N training images (nil: all).
    public var trainLimit: Int?
    /// Use only the first N test images (nil: all).
    public var testLimit: Int?
    /// The dataset directory. The trainer gets loaded images; this is recorded in checkpoints
    /// so that a run can be resumed without naming its data again.
    public var dataDirectory: String?
    /// The dataset format (recorded in checkpoints).
    public var dataset: DatasetFormat?
    /// Which CIFAR-100 labels (recorded in checkpoints).
    public var labels: CIFAR100Labels = .fine
    // Optimiser, loss and averaging (README, Training; the update rule is in OptimizationOptions.swift).
    /// Learning-rate multiplier M of batch-norm shifts (their L2 coefficient is divided by M).
    public var batchNormBiasLearningRate: Float = 1
    /// Which parameters weight decay applies to.
    public var weightDecayScope: WeightDecayScope = .weights
    /// `learningRate` and `weightDecay` in airbench's decoupled form (`stepLearningRate`, `l2Coefficient`).
    public var decoupled = false
    /// Label smoothing ε of the training loss (0: plain cross-entropy).
    public var labelSmoothing: Float = 0
    /// The lookahead average (nil: none).
    public var lookahead: LookaheadSchedule?
    // Data-side options of issue 18 (airbench): whitening init, evaluation frequency, TTA.
    /// Training images (the first N, preprocessed) whose patches initialise the parameters
    /// marked `.patchWhitening` (airbench: 5,000).
    public var patchWhiteningImages = 5000
    /// Evaluate the test set after every N-th epoch (and always after the last); 0: after the
    /// last epoch only.
    public var evalEvery = 1
    /// Test-time augmentation level of the final evaluation (0 none, 1 mirror, 2 mirror and
    /// ±1 px translations; see `TestTimeAugmentation`).
    public var tta = 0
    /// Creates default options.
    public init() {}
}

/// One evaluation of a network on a dataset.
public struct Evaluation: Sendable {
    /// Mean cross-entropy loss.
    public var loss: Double
    /// Fraction of correct top-1 predictions.
    public var accuracy: Double
    /// confusion[true][predicted] counts.
    public var confusion: [[Int]]
    /// The same test set evaluated with test-time augmentation (`TrainingOptions.tta`), when done.
    public var tta: TTAEvaluation?

    /// Creates an evaluation.
    public init(loss: Double, accuracy: Double, confusion: [[Int]], tta: TTAEvaluation? = nil) {
        self.loss = loss; self.accuracy = accuracy; self.confusion = confusion; self.tta = tta
    }
    /// Per-class accuracy (NaN for a class with no images).
    public var perClassAccuracy: [Double] {
        confusion.enumerated().map { i, row in
            let n = row.reduce(0, +)
            return n == 0 ? .nan : Double(row[i]) / Double(n)
        }
    }
}

/// What the trainer reports as it goes.
public enum TrainingEvent {
    /// Start of training: a human-readable description of the run.
    case started(String)
    /// After a step: epoch (1-based), step in epoch, steps per epoch, loss and accuracy of
    /// the running epoch, images per second, seconds elapsed in the whole run, the step's own
    /// batch loss and the learning rate it used.
    case step(epoch: Int, step: Int, steps: Int, loss: Double, accuracy: Double, imagesPerSecond: Double, elapsed: Double,
              batchLoss: Double, learningRate: Float)
    /// The epoch's steps are done; its test set of `images` images is being evaluated.
    case evaluating(epoch: Int, images: Int)
    /// End of an epoch with its test evaluation (nil: not evaluated, `--eval-every`) and learning rate.
    case epochEnded(epoch: Int, trainLoss: Double, trainAccuracy: Double, test: Evaluation?, learningRate: Float, imagesPerSecond: Double, elapsed: Double)
    /// A checkpoint was written.
    case checkpoint(String)
}

/// Why training stopped.
public enum TrainingOutcome: Equatable {
    /// Every epoch ran.
    case finished
    /// Interrupted (SIGINT); a checkpoint was written at (epoch, step).
    case interrupted(epoch: Int, step: Int)
}

/// The state a checkpoint restores: where training stands.
public struct TrainingPosition: Equatable, Sendable {
    /// Completed epochs (0-based index of the epoch in progress).
    public var epoch = 0
    /// Steps completed within that epoch.
    public var step = 0
    /// Creates a position.
    public init(epoch: Int = 0, step: Int = 0) { self.epoch = epoch; self.step = step }
}

/// Trains a lowered network with SGD on an in-memory dataset, checkpointing as it goes.
/// Every random choice of step s in epoch e derives from (seed, e, s), so a run resumed from
/// any checkpoint ends with the same weights as an uninterrupted one.
public final class Trainer {
    /// The network being trained.
    public let graph: Graph
    /// The executable graph.
    public let engine: EngineGraph
    /// Options of the run.
    public let options: TrainingOptions
    /// The preprocessing applied to every image (fitted on the training set, or a checkpoint's).
    public let preprocessor: Preprocessor
    /// Where training stands.
    public private(set) var position = TrainingPosition()
    /// Σ (batch loss × batch) over the steps done in the epoch in progress.
    public private(set) var epochLossSum = 0.0
    /// Correct training predictions in the steps done in the epoch in progress.
    public private(set) var epochCorrect = 0
    /// Training seconds of earlier sessions of this run (restored from a checkpoint).
    public private(set) var elapsedBefore = 0.0
    /// A hash of the network's structure; checkpoints of other networks are refused.
    public let specHash: String
    /// The checkpoint this run started from (`initialize(from:file:)`), recorded in its checkpoints.
    public private(set) var initializedFrom: String?
    /// The images this run trains and tests on (after the limits, before preprocessing).
    public let dataFingerprint: DataFingerprint
    /// SGD with momentum over the engine's contiguous parameter block.
    public let optimizer: SGDOptimizer
    /// The lookahead average of parameters and buffers (with `options.lookahead`).
    public let lookahead: LookaheadAverage?
    /// The preprocessed training set (internal: the data initialisation reads it).
    let train: Dataset
    private let test: Dataset
    private let schedule: LearningRateSchedule
    /// The parameters `applyDataInitializations` computes from the training data before the
    /// first step of a new run, by name: those the spec marks (`EngineParameter.dataInitialization`);
    /// entries may be added or removed before `run`.
    public var dataInitializations: [String: DataInitialization] = [:]
    /// Whether the data initialisation is still to be done (a new run before its first step).
    private var dataInitializationPending = true
    /// `FlipMode.alternate`: each training image's flip in even epochs (empty otherwise).
    private let flipBases: [UInt8]
    private var sessionStart: Date?
    /// The dead-network guard (nil when the network has no output layer it can watch).
    private var deadGuard: DeadNetworkGuard?
    /// Where the last checkpoint this run wrote, or was restored from, stands (nil: none yet).
    public private(set) var lastCheckpoint: TrainingPosition?
    /// Set from a signal handler to stop after the current step.
    public nonisolated(unsafe) static var stopRequested = false

    /// Lowers and compiles the network, fits preprocessing (or uses `preprocessor`, e.g. a
    /// checkpoint's), and prepares the optimiser. Throws when the training set (after
    /// `trainLimit`) has fewer images than a batch, or the network does not fit the data.
    public init(graph: Graph, train: Dataset, test: Dataset, options: TrainingOptions, preprocessor given: Preprocessor? = nil) throws {
        try Trainer.checkClassifier(graph, fits: train, role: "training set")
        try Trainer.checkClassifier(graph, fits: test, role: "test set")
        self.graph = graph
        self.options = options
        self.schedule = try LearningRateSchedule.parse(options.schedule, baseRate: Double(options.stepLearningRate), epochs: options.trainingEpochs)
        var trainSet = options.trainLimit.map { train.prefix($0) } ?? train
        var testSet = options.testLimit.map { test.prefix($0) } ?? test
        guard options.batch >= 1 else { throw TrainingError("the batch size must be at least 1, got \(options.batch)") }
        guard trainSet.count >= options.batch else {
            let source = options.trainLimit.map { "(--train-limit \($0) of \(train.count))" } ?? "in the dataset"
            throw TrainingError("the training set has \(trainSet.count) image\(trainSet.count == 1 ? "" : "s") \(source), fewer than one batch (--batch \(options.batch)): "
                + (trainSet.count > 0 ? "use --batch \(trainSet.count) or less, or more training images" : "use a dataset with training images"))
        }
        dataFingerprint = DataFingerprint(train: trainSet, test: testSet)
        if options.padMode == .reflect && options.translate > 0 && (options.translate >= trainSet.height || options.translate >= trainSet.width) {
            throw TrainingError("reflect padding of \(options.translate) px needs images larger than that; these are \(trainSet.height)x\(trainSet.width): use a smaller --translate or --pad-mode zero")
        }
        flipBases = options.flipMode == .alternate ? alternateFlipBases(count: trainSet.count, seed: mix(options.seed, 0, 0xF11F)) : []
        let s = graph.inputShape
        if let given {
            try given.validate()
            guard given.height == s.height, given.width == s.width, given.channels == s.channels else {
                throw TrainingError("the preprocessing was fitted for \(given.height)x\(given.width)x\(given.channels) images, the network's input is \(s)")
            }
            guard given.method == options.whiten else {
                throw TrainingError("the preprocessing is \(given.method.rawValue) but the options ask for \(options.whiten.rawValue)")
            }
            preprocessor = given
        } else {
            switch options.whiten {
            case .none: preprocessor = .identity(height: s.height, width: s.width, channels: s.channels)
            case .standardize: preprocessor = .fitStandardization(on: trainSet)
            case .gcnZCA: preprocessor = try .fitGCNZCA(on: trainSet, epsilon: options.zcaEpsilon)
            }
        }
        try preprocessor.apply(to: &trainSet)
        try preprocessor.apply(to: &testSet)
        self.train = trainSet
        self.test = testSet
        let lowered = try lower(graph, maxBatch: options.batch, seed: options.seed)
        engine = lowered.engine
        try engine.compile(training: true)
        // One group per parameter: its training epochs, learning-rate multiplier and decay.
        optimizer = try SGDOptimizer(parameterCount: engine.parameterCount, momentum: options.momentum, nesterov: options.nesterov,
                                     groups: ParameterGroup.groups(for: engine, weightDecay: options.l2Coefficient, decayAll: options.weightDecayScope == .all,
                                                                   batchNormBiasMultiplier: options.batchNormBiasLearningRate))
        lookahead = options.lookahead == nil ? nil : LookaheadAverage(engine: engine)
        specHash = Trainer.hash(graph)
        for p in engine.parameters { if let kind = p.dataInitialization { dataInitializations[p.name] = kind } }
        deadGuard = DeadNetworkGuard(graph: graph, engine: engine, classes: try Trainer.classes(of: graph))
    }

    /// The number of classes of a classifier network: the channels of its last layer, which
    /// must be a softmax (the loss is softmax cross-entropy). A softmax over an HxW map larger
    /// than 1x1 classifies every pixel: the loss is the mean over the pixels and the prediction
    /// the class of the pixel-mean probabilities (`EngineGraph.loss`). Throws otherwise.
    public static func classes(of graph: Graph) throws -> Int {
        guard case .softmax = graph.nodes[graph.output].op else {
            throw TrainingError("the network must end in 'softmax' to be trained or evaluated (the loss is softmax cross-entropy)")
        }
        return graph.nodes[graph.output].shape.channels
    }

    /// Throws unless `data` fits the classifier `graph`: same image shape, as many classes as
    /// the network has outputs, every label within them. `role` names the data in errors.
    public static func checkClassifier(_ graph: Graph, fits data: Dataset, role: String) throws {
        let classes = try Trainer.classes(of: graph)
        let s = graph.inputShape
        guard s.height == data.height, s.width == data.width, s.channels == data.channels else {
            throw TrainingError("the network's input is \(s) but the \(role)'s images are \(data.height)x\(data.width)x\(data.channels)")
        }
        guard classes == data.classes else {
            throw TrainingError("the network outputs \(classes) classes but the \(role) has \(data.classes)")
        }
        try checkLabels(data, classes: classes, role: role)
    }

    /// Throws when the dataset's sizes disagree or a label is outside 0..<classes.
    static func checkLabels(_ data: Dataset, classes: Int, role: String) throws {
        guard data.count >= 0, data.labels.count >= data.count, data.images.count >= data.count * data.imageSize else {
            throw TrainingError("the \(role) has \(data.images.count) pixel values and \(data.labels.count) labels for \(data.count) images of \(data.imageSize)")
        }
        if let bad = data.labels.prefix(data.count).firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
            throw TrainingError("the \(role)'s image \(bad) has label \(data.labels[bad]), outside the network's classes 0...\(classes - 1)")
        }
    }

    /// Optimiser steps per epoch (the last partial batch is dropped).
    public var stepsPerEpoch: Int { max(1, train.count / options.batch) }

    /// Optimiser steps of the whole run: ⌈stepsPerEpoch × trainingEpochs⌉.
    public var totalSteps: Int { LearningRateSchedule.totalSteps(stepsPerEpoch: stepsPerEpoch, epochs: options.trainingEpochs) }

    /// Steps of epoch `epoch` (0-based): all of them, except in the partial last epoch of a
    /// fractional `--epochs`.
    public func steps(inEpoch epoch: Int) -> Int { max(0, min(stepsPerEpoch, totalSteps - epoch * stepsPerEpoch)) }

    /// The learning rate of step `step` (0-based) of epoch `epoch` (0-based).
    public func learningRate(epoch: Int, step: Int, steps: Int) -> Float {
        schedule.lr(atStep: epoch * steps + step, stepsPerEpoch: steps)
    }

    /// Training seconds of the whole run so far (earlier sessions included).
    public var elapsedSeconds: Double { elapsedBefore + (sessionStart.map { Date().timeIntervalSince($0) } ?? 0) }

    /// Set when ZCA was fitted on no more images than it has features: the fitted whitening
    /// then scales directions no training image varies in by 1/√ε (see `Preprocessor`).
    public var zcaWarning: String? {
        guard preprocessor.method == .gcnZCA, train.count <= train.imageSize else { return nil }
        let gain = 1 / Double(preprocessor.zcaEpsilon).squareRoot()
        return "ZCA fitted on \(train.count) images of \(train.imageSize) features: the training images span at most "
            + "\(train.count - 1) of the \(train.imageSize) directions, and the test images' components outside them are "
            + "scaled by 1/√ε = \(String(format: "%.3g", gain)), so test accuracy can stay near chance; use more training "
            + "images (\(train.imageSize + 1) or more), a larger --zca-epsilon, or --whiten standardize"
    }

    /// A human-readable summary of the run (printed at start).
    public var description: String {
        // Each line fits 80 columns for networks of usual names (the progress display's width).
        var s = "training \(graph.name): \(train.count) training and \(test.count) test images, batch \(options.batch), "
            + "\(formatEpochCount(options.trainingEpochs)) epoch\(options.trainingEpochs == 1 ? "" : "s")\n"
        s += "SGD lr \(options.learningRate)\(options.decoupled ? " decoupled (\(options.stepLearningRate) per step)" : ""), momentum \(options.momentum)\(options.nesterov ? " (Nesterov)" : ""), weight decay \(options.weightDecay), "
            + "seed \(options.seed)\n"
        s += "schedule: \(schedule)\n"
        if let extras = optimizationSummary { s += extras + "\n" }
        let flips = ["random": "flips", "alternate": "alternating flips", "off": "no flips"][options.flipMode.rawValue]!
        s += "augmentation: \(flips), \(options.translate > 0 ? "translations up to \(options.translate) px\(options.padMode == .reflect ? " (reflect pad)" : "")" : "no translations"); preprocessing: \(preprocessor.method.rawValue)\n"
        if let warning = zcaWarning { s += "warning: \(warning)\n" }
        s += "engine: \(engineThreadCount) thread\(engineThreadCount == 1 ? "" : "s"), \(engine.parameterCount) parameters, planned memory \(String(format: "%.1f", Double(engine.plannedBytes) / 1048576)) MiB"
        return s
    }

    /// With `--flip alternate`: 1 when training image `image` (dataset order) is flipped in
    /// `epoch` (0-based): its own coin, inverted in odd epochs. 0 with another flip mode.
    func alternateFlip(image: Int, epoch: Int) -> UInt8 {
        flipBases.isEmpty ? 0 : flipBases[image] ^ UInt8(epoch & 1)
    }

    /// Runs the remaining epochs. `checkpoint` is called at the end of every epoch and when
    /// interrupted; it must write the checkpoint (the trainer does not know the path).
    /// `stopRequested` is checked before the first step and after every step and epoch.
    ///
    /// Throws a `TrainingError` when a loss is NaN or infinite, and a `DeadNetworkError` when
    /// the dead-network guard (`DeadNetworkGuard`: no gradient reaching the output layer's
    /// weights for 50 consecutive steps, their mean loss at ln(classes)) stops the run. An epoch
    /// that ends inside such a streak of dead steps is not checkpointed (unless it is the
    /// run's last or a stop was requested), so that the checkpoint of the last epoch that ended
    /// with the network alive is kept; a healthy run never has a dead step.
    public func run(report: (TrainingEvent) -> Void, checkpoint: (Trainer) throws -> Void) throws -> TrainingOutcome {
        let b = options.batch
        let steps = stepsPerEpoch
        let imageSize = train.imageSize
        let images = UnsafeMutablePointer<Float>.allocate(capacity: b * imageSize)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: imageSize)
        let labels = UnsafeMutablePointer<Int32>.allocate(capacity: b)
        let batchFlips = UnsafeMutablePointer<UInt8>.allocate(capacity: b)
        defer { images.deallocate(); scratch.deallocate(); labels.deallocate(); batchFlips.deallocate() }
        sessionStart = Date()
        defer { elapsedBefore = elapsedSeconds; sessionStart = nil }
        report(.started(description))
        // Initialisation from the data: a new run only (a resumed run or one started with
        // --init has its weights).
        if dataInitializationPending && position == TrainingPosition() && lastCheckpoint == nil && initializedFrom == nil {
            for line in try applyDataInitializations() { report(.started(line)) }
        }
        dataInitializationPending = false
        func save() throws {
            try checkpoint(self)
            lastCheckpoint = position
        }
        deadGuard?.reset()
        if Trainer.stopRequested {
            try save()
            return .interrupted(epoch: position.epoch, step: position.step)
        }
        while position.epoch < options.epochs {
            let epoch = position.epoch
            let epochSteps = self.steps(inEpoch: epoch)
            // Backward computes only what the epoch's trained parameters need (a frozen first
            // layer costs no gradient work); the optimiser skips the others.
            engine.setTrainedParameters { $0.training.isTrained(inEpoch: epoch) }
            let order = EpochShuffler(count: train.count, seed: mix(options.seed, 0, 0x5348_5546)).order(epoch: epoch)
            if position.step == 0 { epochLossSum = 0; epochCorrect = 0 }
            var sessionImages = 0
            let epochStart = Date()
            while position.step < epochSteps {
                let s = position.step
                if let lookahead, !lookahead.isStarted { lookahead.start() }
                try train.gatherBatch(indices: order[(s * b)..<((s + 1) * b)], images: images, labels: labels)
                var augmenter = try Augmenter(horizontalFlip: options.flipMode == .random, padding: options.translate, padMode: options.padMode,
                                              seed: mix(options.seed, UInt64(epoch), UInt64(s) &+ 0xA5A5))
                if !flipBases.isEmpty {
                    // Alternating flips: the image's own coin, inverted in odd epochs.
                    for (j, index) in order[(s * b)..<((s + 1) * b)].enumerated() { batchFlips[j] = alternateFlip(image: index, epoch: epoch) }
                }
                augmenter.augment(images: images, count: b, height: train.height, width: train.width, channels: train.channels, scratch: scratch,
                                  flips: flipBases.isEmpty ? nil : UnsafePointer(batchFlips))
                engine.reseedDropout(mix(options.seed, UInt64(epoch), UInt64(s) &+ 0xD0D0))
                _ = engine.forward(images, batch: b, training: true)
                let (loss, hits) = engine.backward(labels: labels, batch: b, labelSmoothing: options.labelSmoothing)
                guard loss.isFinite else {
                    throw TrainingError("loss became \(loss) at epoch \(epoch + 1), step \(s + 1); try a lower learning rate (now \(learningRate(epoch: epoch, step: s, steps: steps)))")
                }
                if let logits = engine.logits, deadGuard?.observe(loss: loss, logits: logits, batch: b) == true, let g = deadGuard {
                    throw DeadNetworkError(layer: g.deadLayer.name, outputLayer: g.head, epoch: epoch + 1, step: s + 1,
                                           deadSteps: g.run, classes: engine.classCount, learningRate: options.learningRate,
                                           schedule: options.schedule, lastCheckpoint: lastCheckpoint, silent: g.weightsSilent,
                                           deadOutputs: (g.lastDead.outputs, g.lastDead.ofOutputs), feeder: g.feeder,
                                           deadInputs: (g.lastDead.inputs, g.lastDead.ofInputs))
                }
                let rate = learningRate(epoch: epoch, step: s, steps: steps)
                optimizer.step(parameters: engine.parameterValues, gradients: engine.parameterGrads, learningRate: rate, epoch: epoch)
                if let lookahead, let every = options.lookahead { lookahead.afterStep(epoch * steps + s + 1, of: totalSteps, schedule: every) }
                epochLossSum += Double(loss) * Double(b); epochCorrect += hits; sessionImages += b
                position.step += 1
                let seen = Double(position.step * b)
                let elapsed = Date().timeIntervalSince(epochStart)
                report(.step(epoch: epoch + 1, step: position.step, steps: epochSteps, loss: epochLossSum / seen, accuracy: Double(epochCorrect) / seen,
                             imagesPerSecond: Double(sessionImages) / max(elapsed, 1e-9), elapsed: elapsedSeconds,
                             batchLoss: Double(loss), learningRate: rate))
                if Trainer.stopRequested {
                    try save()
                    return .interrupted(epoch: position.epoch, step: position.step)
                }
            }
            let trainTime = Date().timeIntervalSince(epochStart)
            // --eval-every: every N-th epoch and the last (0: the last only); the last with --tta.
            let isLast = epoch + 1 == options.epochs
            var evaluation: Evaluation?
            if isLast || (options.evalEvery > 0 && (epoch + 1) % options.evalEvery == 0) {
                report(.evaluating(epoch: epoch + 1, images: test.count))
                evaluation = try evaluate(test)
                if isLast && options.tta > 0 { evaluation!.tta = try evaluate(test, tta: options.tta) }
            }
            let seen = Double(epochSteps * b)
            let (trainLoss, trainAccuracy) = (epochLossSum / seen, Double(epochCorrect) / seen)
            position.epoch += 1
            position.step = 0
            epochLossSum = 0; epochCorrect = 0
            report(.epochEnded(epoch: epoch + 1, trainLoss: trainLoss, trainAccuracy: trainAccuracy,
                               test: evaluation, learningRate: learningRate(epoch: epoch, step: epochSteps - 1, steps: steps),
                               imagesPerSecond: Double(sessionImages) / max(trainTime, 1e-9), elapsed: elapsedSeconds))
            // Inside a streak of dead steps the previous checkpoint (the network alive) is kept.
            if (deadGuard?.run ?? 0) == 0 || position.epoch == options.epochs || Trainer.stopRequested { try save() }
            if Trainer.stopRequested { return position.epoch < options.epochs ? .interrupted(epoch: position.epoch, step: 0) : .finished }
        }
        return .finished
    }

    /// Evaluates on a (preprocessed) dataset in inference mode.
    public func evaluate(_ data: Dataset) throws -> Evaluation {
        try Trainer.evaluate(engine: engine, data: data, batch: options.batch)
    }

    /// Throws unless `engine` can evaluate `data` in batches of `batch`: a softmax over the
    /// dataset's classes, labels in range (checked before anything is indexed), images of the
    /// input's size.
    static func checkEvaluable(engine: EngineGraph, data: Dataset, batch: Int) throws {
        let classes = data.classes
        guard engine.endsInSoftmax, engine.classCount == classes else {
            throw TrainingError("the network outputs \(engine.classCount) classes but the dataset has \(classes)")
        }
        guard batch >= 1, batch <= engine.maxBatch else { throw TrainingError("evaluation batch \(batch) outside 1...\(engine.maxBatch)") }
        try checkLabels(data, classes: classes, role: "dataset")
        guard engine.inputShape.count == data.imageSize else {
            throw TrainingError("the network's input has \(engine.inputShape.count) values per image but the dataset's images have \(data.imageSize)")
        }
    }

    /// Evaluates a compiled classifier engine on a preprocessed dataset: the loss is
    /// `EngineGraph.loss` (cross-entropy from the logits), the confusion matrix counts the
    /// most probable class. Throws when the engine's outputs are not the dataset's classes or
    /// a label is out of range (checked before anything is indexed).
    public static func evaluate(engine: EngineGraph, data: Dataset, batch: Int) throws -> Evaluation {
        let classes = data.classes
        try checkEvaluable(engine: engine, data: data, batch: batch)
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var lossSum = 0.0
        let size = data.imageSize
        data.images.withUnsafeBufferPointer { imgs in
            data.labels.withUnsafeBufferPointer { labels in
                var i = 0
                while i < data.count {
                    let n = min(batch, data.count - i)
                    engine.forward(imgs.baseAddress! + i * size, batch: n, training: false)
                    let (loss, _) = engine.loss(labels: labels.baseAddress! + i, batch: n)
                    lossSum += Double(loss) * Double(n)
                    for (j, predicted) in engine.predictedClasses(batch: n).enumerated() {
                        confusion[Int(labels[i + j])][predicted] += 1
                    }
                    i += n
                }
            }
        }
        let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
        return Evaluation(loss: lossSum / Double(max(data.count, 1)), accuracy: Double(correct) / Double(max(data.count, 1)), confusion: confusion)
    }

    // MARK: - Checkpoints

    /// A checkpoint of the run: parameters and batch-norm buffers under the IR's layer names,
    /// momentum, preprocessing, position, elapsed time, the epoch's running sums, the recipe,
    /// the data fingerprint and metadata naming the network, its spec hash, its layers
    /// ("layers", see `LayerRecord`) and, for a run started with `initialize(from:file:)`, the
    /// checkpoint it started from ("init").
    public func checkpoint() throws -> TrainingCheckpoint {
        var tensors: [String: StoredTensor] = [:]
        for p in engine.parameters {
            tensors[p.name] = try StoredTensor(shape: p.shape, floats: Array(UnsafeBufferPointer(start: p.value, count: p.count)))
        }
        for b in engine.buffers {
            tensors[b.name] = try StoredTensor(shape: b.shape, floats: Array(UnsafeBufferPointer(start: b.value, count: b.count)))
        }
        return TrainingCheckpoint(parameters: tensors, velocity: optimizer.velocityValues,
                                  lookahead: lookahead.flatMap { $0.isStarted ? $0.values : nil }, preprocessor: preprocessor,
                                  epoch: position.epoch, step: position.step, elapsedSeconds: elapsedSeconds,
                                  epochLossSum: epochLossSum, epochCorrect: epochCorrect, recipe: options, data: dataFingerprint,
                                  metadata: metadata)
    }

    /// The free-form metadata of this run's checkpoints.
    var metadata: [String: String] {
        var m = ["format": TrainingCheckpoint.currentFormat, "network": graph.name, "spec_hash": specHash,
                 "layers": LayerRecord.encode(LayerRecord.layers(of: graph))]
        if let initializedFrom { m["init"] = initializedFrom }
        return m
    }

    /// Restores weights, buffers, momentum, position, elapsed time and the epoch's running sums
    /// from a checkpoint of the same network, recipe (except the number of epochs), data and
    /// preprocessing. Throws, naming `file` and the field, on any mismatch.
    public func restore(from checkpoint: TrainingCheckpoint, file: String) throws {
        _ = try Trainer.checkCheckpoint(checkpoint, graph: graph, file: file, use: .resume)
        guard let recipe = checkpoint.recipe, let data = checkpoint.data else {
            throw TrainingError("\(file): written by an older dsl (format \(checkpoint.metadata["format"] ?? "dsl-checkpoint-1")) without the training recipe; it can be evaluated with 'dsl eval' but not resumed")
        }
        if let (field, mine, theirs) = options.recipeDifferences(from: recipe, ignoring: TrainingOptions.changeableOnResume).first {
            throw TrainingError("\(file): the run has \(field.key) \(theirs.isEmpty ? "(none)" : theirs), this trainer \(mine.isEmpty ? "(none)" : mine)")
        }
        if data != dataFingerprint {
            throw TrainingError("\(file): the run trained on other images (metadata data.*: \(data.trainImages) training images, hash \(data.trainHash); \(data.testImages) test images, hash \(data.testHash)) than these (\(dataFingerprint.trainImages), hash \(dataFingerprint.trainHash); \(dataFingerprint.testImages), hash \(dataFingerprint.testHash))")
        }
        guard let stored = checkpoint.preprocessor, stored == preprocessor else {
            throw TrainingError("\(file): the checkpoint's preprocessing (preprocess.*) differs from the trainer's; build the trainer with the checkpoint's preprocessor")
        }
        guard checkpoint.epoch < options.epochs else {
            throw TrainingError("\(file): the checkpoint has completed \(checkpoint.epoch) epochs (train.epoch); a run of \(options.epochs) epochs has nothing left to train")
        }
        guard checkpoint.step >= 0, checkpoint.step <= steps(inEpoch: checkpoint.epoch) else {
            throw TrainingError("\(file): train.step \(checkpoint.step) is outside epoch \(checkpoint.epoch + 1) of \(steps(inEpoch: checkpoint.epoch)) steps")
        }
        guard let velocity = checkpoint.velocity else { throw TrainingError("\(file): the checkpoint has no optimizer state (optimizer.velocity); it cannot be resumed") }
        guard velocity.count == optimizer.parameterCount else {
            throw TrainingError("\(file): tensor 'optimizer.velocity' has \(velocity.count) values, the network has \(optimizer.parameterCount) parameters")
        }
        try Trainer.loadWeights(checkpoint.parameters, into: engine, file: file)
        try optimizer.setVelocity(velocity)
        try restoreLookahead(checkpoint, file: file)
        position = TrainingPosition(epoch: checkpoint.epoch, step: checkpoint.step)
        epochLossSum = checkpoint.epochLossSum
        epochCorrect = checkpoint.epochCorrect
        elapsedBefore = checkpoint.elapsedSeconds
        initializedFrom = checkpoint.metadata["init"]
        lastCheckpoint = position
    }

    /// Starts this (new) run from another checkpoint's weights, for fine-tuning: every
    /// parameter and batch-norm buffer whose name and shape match is copied from `checkpoint`
    /// (which may be of another spec, e.g. one with a new head); the others keep their
    /// initial values. Momentum, position and preprocessing stay this run's own. `file` is
    /// recorded in the run's checkpoints (metadata "init"). Throws, naming `file`, when the run
    /// has already started or when no tensor matches.
    @discardableResult
    public func initialize(from checkpoint: TrainingCheckpoint, file: String) throws -> InitializationReport {
        guard position == TrainingPosition() else {
            throw TrainingError("--init \(file): the run has already trained \(position.epoch) epochs and \(position.step) steps; --init starts a new run")
        }
        var report = InitializationReport(file: file, network: checkpoint.metadata["network"], epoch: checkpoint.epoch)
        let targets = engine.parameters.map { ($0.name, $0.shape, $0.value) } + engine.buffers.map { ($0.name, $0.shape, $0.value) }
        var loads: [(UnsafeMutablePointer<Float>, [Float])] = []
        for (name, shape, destination) in targets {
            guard let stored = checkpoint.parameters[name] else { report.missing.append(name); continue }
            guard stored.shape == shape, let values = stored.floats, values.count == shape.reduce(1, *) else {
                report.skipped.append((name, stored.shape, shape)); continue
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw TrainingError("--init \(file): tensor '\(name)' holds \(values[bad]) at element \(bad); weights must be finite")
            }
            loads.append((destination, values))
            report.loaded.append(name)
            report.loadedValues += values.count
        }
        report.totalValues = targets.reduce(0) { $0 + $1.1.reduce(1, *) }
        let names = Set(targets.map(\.0))
        report.unused = checkpoint.parameters.keys.filter { !names.contains($0) }.sorted()
        guard !loads.isEmpty else {
            throw TrainingError("--init \(file): no tensor of the checkpoint (network \(report.network ?? "unknown")) matches a parameter of \(graph.name) "
                + "by name and shape; \(report.describe(limit: 6))")
        }
        for (destination, values) in loads { destination.update(from: values, count: values.count) }
        initializedFrom = file
        return report
    }

    /// Copies parameters and buffers by name into an engine, checking every name, dtype, shape
    /// and value (finite); a tensor the network does not have is an error too.
    public static func loadWeights(_ tensors: [String: StoredTensor], into engine: EngineGraph, file: String) throws {
        let contents = SafetensorsContents(tensors: tensors)
        var expected: Set<String> = []
        var loads: [(UnsafeMutablePointer<Float>, [Float])] = []
        for (name, shape) in engine.parameters.map({ ($0.name, $0.shape) }) + engine.buffers.map({ ($0.name, $0.shape) }) {
            expected.insert(name)
            let values = try contents.floats(name, shape: shape, file: file)
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw TrainingError("\(file): tensor '\(name)' holds \(values[bad]) at element \(bad); weights must be finite")
            }
        }
        if let extra = tensors.keys.filter({ !expected.contains($0) }).sorted().first {
            throw TrainingError("\(file): tensor '\(extra)' is not a parameter or buffer of this network")
        }
        for p in engine.parameters { loads.append((p.value, try contents.floats(p.name, file: file))) }
        for b in engine.buffers { loads.append((b.value, try contents.floats(b.name, file: file))) }
        for (destination, values) in loads { destination.update(from: values, count: values.count) }
    }

    /// FNV-1a hash of the network's layers (names, ops, shapes): formatting and comments do not change it.
    public static func hash(_ g: Graph) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for n in g.nodes {
            for byte in "\(n.name)|\(n.op)|\(n.inputs)|\(n.shape);".utf8 { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        return String(h, radix: 16)
    }
}

/// Mixes three numbers into a seed (SplitMix64 finaliser over a combination).
func mix(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
    EngineRandom.finalize(a &+ 0x9E37_79B9_7F4A_7C15 &* (b &+ 1) &+ 0xBF58_476D_1CE4_E5B9 &* (c &+ 1))
}


/// What `Trainer.initialize(from:file:)` loaded.
public struct InitializationReport: Sendable {
    /// The checkpoint file.
    public var file: String
    /// The checkpoint's network name, when recorded.
    public var network: String?
    /// Epochs the checkpoint had completed.
    public var epoch: Int
    /// Tensors copied (name and shape matched), in the network's order.
    public var loaded: [String] = []
    /// Tensors of both with other shapes: name, the checkpoint's shape, the network's.
    public var skipped: [(name: String, checkpoint: [Int], network: [Int])] = []
    /// The network's tensors the checkpoint lacks (left at their initial values).
    public var missing: [String] = []
    /// The checkpoint's tensors the network does not have.
    public var unused: [String] = []
    /// Values copied.
    public var loadedValues = 0
    /// Values of all the network's parameters and buffers.
    public var totalValues = 0

    /// Creates an empty report.
    public init(file: String, network: String?, epoch: Int) { self.file = file; self.network = network; self.epoch = epoch }

    /// Skipped, missing and unused tensors in one line, at most `limit` names of each kind.
    public func describe(limit: Int = 8) -> String {
        func list(_ items: [String]) -> String {
            items.prefix(limit).joined(separator: ", ") + (items.count > limit ? " and \(items.count - limit) more" : "")
        }
        func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
        var parts: [String] = []
        if !skipped.isEmpty { parts.append("skipped (other shape): " + list(skipped.map { "\($0.name) \(shape($0.checkpoint)) there, \(shape($0.network)) here" })) }
        if !missing.isEmpty { parts.append("not in the checkpoint (left at their initial values): " + list(missing)) }
        if !unused.isEmpty { parts.append("not in this network (unused): " + list(unused)) }
        return parts.isEmpty ? "every tensor matched" : parts.joined(separator: "; ")
    }
}
