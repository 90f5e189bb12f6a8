import DSLEngine
import DSLIR
import Foundation

/// Everything that shapes a training run (`dsl train --help` documents each).
public struct TrainingOptions: Sendable {
    /// Passes over the training set.
    public var epochs = 10
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
    /// Random horizontal flips.
    public var flip = true
    /// Random translations: zero padding in pixels before a random crop (0: off).
    public var translate = 2
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
    /// the running epoch, images per second, seconds elapsed in the whole run.
    case step(epoch: Int, step: Int, steps: Int, loss: Double, accuracy: Double, imagesPerSecond: Double, elapsed: Double)
    /// End of an epoch with its test evaluation and learning rate.
    case epochEnded(epoch: Int, trainLoss: Double, trainAccuracy: Double, test: Evaluation, learningRate: Float, imagesPerSecond: Double, elapsed: Double)
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
    /// The preprocessing applied to every image (fitted on the training set).
    public private(set) var preprocessor: Preprocessor
    /// Where training stands.
    public private(set) var position = TrainingPosition()
    /// A hash of the network's structure; checkpoints of other networks are refused.
    public let specHash: String
    /// SGD with momentum over the engine's contiguous parameter block.
    public let optimizer: SGDOptimizer
    private let train: Dataset
    private let test: Dataset
    private let schedule: LearningRateSchedule
    /// Set from a signal handler to stop after the current step.
    public nonisolated(unsafe) static var stopRequested = false

    /// Lowers and compiles the network, fits preprocessing, and prepares the optimiser.
    public init(graph: Graph, train: Dataset, test: Dataset, options: TrainingOptions) throws {
        guard case .softmax = graph.nodes[graph.output].op else {
            throw TrainingError("the network must end in 'softmax' to be trained (the loss is softmax cross-entropy)")
        }
        let s = graph.inputShape
        guard s.height == train.height, s.width == train.width, s.channels == train.channels else {
            throw TrainingError("the network's input is \(s) but the dataset's images are \(train.height)x\(train.width)x\(train.channels)")
        }
        let classes = graph.nodes[graph.output].shape.elements
        guard classes == train.classes else {
            throw TrainingError("the network outputs \(classes) classes but the dataset has \(train.classes)")
        }
        self.graph = graph
        self.options = options
        self.schedule = try LearningRateSchedule.parse(options.schedule, baseRate: Double(options.learningRate), totalEpochs: options.epochs)
        var trainSet = options.trainLimit.map { train.prefix($0) } ?? train
        var testSet = options.testLimit.map { test.prefix($0) } ?? test
        switch options.whiten {
        case .none: preprocessor = .identity(height: s.height, width: s.width, channels: s.channels)
        case .standardize: preprocessor = .fitStandardization(on: trainSet)
        case .gcnZCA: preprocessor = try .fitGCNZCA(on: trainSet, epsilon: options.zcaEpsilon)
        }
        try preprocessor.apply(to: &trainSet)
        try preprocessor.apply(to: &testSet)
        self.train = trainSet
        self.test = testSet
        let lowered = try lower(graph, maxBatch: options.batch, seed: options.seed)
        engine = lowered.engine
        engine.compile(training: true)
        // Weight decay applies to conv and linear weights, not to biases or batch norm.
        let noDecay = engine.parameters.filter { !($0.name.hasSuffix(".weight") && $0.shape.count > 1) }.map { $0.offset..<($0.offset + $0.count) }
        optimizer = try SGDOptimizer(parameterCount: engine.parameterCount, momentum: options.momentum, weightDecay: options.weightDecay,
                                     nesterov: options.nesterov, noDecay: noDecay)
        specHash = Trainer.hash(graph)
    }

    /// Optimiser steps per epoch (the last partial batch is dropped).
    public var stepsPerEpoch: Int { max(1, train.count / options.batch) }

    /// The learning rate of step `step` (0-based) of epoch `epoch` (0-based).
    public func learningRate(epoch: Int, step: Int, steps: Int) -> Float {
        schedule.lr(atStep: epoch * steps + step, stepsPerEpoch: steps)
    }

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
        var s = "training \(graph.name): \(train.count) training and \(test.count) test images, batch \(options.batch), \(options.epochs) epochs, seed \(options.seed)\n"
        s += "SGD lr \(options.learningRate), momentum \(options.momentum)\(options.nesterov ? " (Nesterov)" : ""), weight decay \(options.weightDecay)\n"
        s += "schedule: \(schedule)\n"
        s += "augmentation: \(options.flip ? "horizontal flips" : "no flips"), \(options.translate > 0 ? "translations up to \(options.translate) px" : "no translations"); preprocessing: \(preprocessor.method.rawValue)\n"
        if let warning = zcaWarning { s += "warning: \(warning)\n" }
        s += "engine: \(engineThreadCount) thread\(engineThreadCount == 1 ? "" : "s"), \(engine.parameterCount) parameters, planned memory \(String(format: "%.1f", Double(engine.plannedBytes) / 1048576)) MiB"
        return s
    }

    /// Runs the remaining epochs. `checkpoint` is called at the end of every epoch and when
    /// interrupted; it must write the checkpoint (the trainer does not know the path).
    public func run(report: (TrainingEvent) -> Void, checkpoint: (Trainer) throws -> Void) throws -> TrainingOutcome {
        let b = options.batch
        let steps = stepsPerEpoch
        let imageSize = train.imageSize
        let images = UnsafeMutablePointer<Float>.allocate(capacity: b * imageSize)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: imageSize)
        let labels = UnsafeMutablePointer<Int32>.allocate(capacity: b)
        defer { images.deallocate(); scratch.deallocate(); labels.deallocate() }
        let start = Date()
        report(.started(description))
        while position.epoch < options.epochs {
            let epoch = position.epoch
            let order = EpochShuffler(count: train.count, seed: mix(options.seed, 0, 0x5348_5546)).order(epoch: epoch)
            var lossSum = 0.0, correct = 0, seen = 0
            let epochStart = Date()
            while position.step < steps {
                let s = position.step
                try train.gatherBatch(indices: order[(s * b)..<((s + 1) * b)], images: images, labels: labels)
                var augmenter = try Augmenter(horizontalFlip: options.flip, padding: options.translate, seed: mix(options.seed, UInt64(epoch), UInt64(s) &+ 0xA5A5))
                augmenter.augment(images: images, count: b, height: train.height, width: train.width, channels: train.channels, scratch: scratch)
                engine.reseedDropout(mix(options.seed, UInt64(epoch), UInt64(s) &+ 0xD0D0))
                _ = engine.forward(images, batch: b, training: true)
                let (loss, hits) = engine.backward(labels: labels, batch: b)
                guard loss.isFinite else {
                    throw TrainingError("loss became \(loss) at epoch \(epoch + 1), step \(s + 1); try a lower learning rate (now \(learningRate(epoch: epoch, step: s, steps: steps)))")
                }
                optimizer.step(parameters: engine.parameterValues, gradients: engine.parameterGrads, learningRate: learningRate(epoch: epoch, step: s, steps: steps))
                lossSum += Double(loss) * Double(b); correct += hits; seen += b
                position.step += 1
                let elapsed = Date().timeIntervalSince(epochStart)
                report(.step(epoch: epoch + 1, step: position.step, steps: steps, loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen),
                             imagesPerSecond: Double(seen) / max(elapsed, 1e-9), elapsed: Date().timeIntervalSince(start)))
                if Trainer.stopRequested {
                    try checkpoint(self)
                    return .interrupted(epoch: position.epoch, step: position.step)
                }
            }
            let trainTime = Date().timeIntervalSince(epochStart)
            let evaluation = evaluate(test)
            position.epoch += 1
            position.step = 0
            report(.epochEnded(epoch: epoch + 1, trainLoss: seen > 0 ? lossSum / Double(seen) : .nan, trainAccuracy: seen > 0 ? Double(correct) / Double(seen) : .nan,
                               test: evaluation, learningRate: learningRate(epoch: epoch, step: steps - 1, steps: steps),
                               imagesPerSecond: Double(seen) / max(trainTime, 1e-9), elapsed: Date().timeIntervalSince(start)))
            try checkpoint(self)
            if Trainer.stopRequested { return position.epoch < options.epochs ? .interrupted(epoch: position.epoch, step: 0) : .finished }
        }
        return .finished
    }

    /// Evaluates on a (preprocessed) dataset in inference mode.
    public func evaluate(_ data: Dataset) -> Evaluation {
        Trainer.evaluate(engine: engine, data: data, batch: options.batch)
    }

    /// Evaluates any compiled engine on a preprocessed dataset.
    public static func evaluate(engine: EngineGraph, data: Dataset, batch: Int) -> Evaluation {
        let classes = data.classes
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
        var lossSum = 0.0
        let size = data.imageSize
        data.images.withUnsafeBufferPointer { imgs in
            var i = 0
            while i < data.count {
                let n = min(batch, data.count - i)
                let probs = engine.forward(imgs.baseAddress! + i * size, batch: n, training: false)
                for j in 0..<n {
                    let row = probs + j * classes
                    var best = 0
                    for c in 1..<classes where row[c] > row[best] { best = c }
                    let truth = Int(data.labels[i + j])
                    confusion[truth][best] += 1
                    lossSum -= log(Double(max(row[truth], 1e-30)))
                }
                i += n
            }
        }
        let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
        return Evaluation(loss: lossSum / Double(max(data.count, 1)), accuracy: Double(correct) / Double(max(data.count, 1)), confusion: confusion)
    }

    // MARK: - Checkpoints

    /// A checkpoint of the run: parameters and batch-norm buffers under the IR's layer names,
    /// momentum, preprocessing, position, and metadata naming the network and its spec hash.
    public func checkpoint() throws -> TrainingCheckpoint {
        var tensors: [String: StoredTensor] = [:]
        for p in engine.parameters {
            tensors[p.name] = try StoredTensor(shape: p.shape, floats: Array(UnsafeBufferPointer(start: p.value, count: p.count)))
        }
        for b in engine.buffers {
            tensors[b.name] = try StoredTensor(shape: b.shape, floats: Array(UnsafeBufferPointer(start: b.value, count: b.count)))
        }
        return TrainingCheckpoint(parameters: tensors, velocity: optimizer.velocityValues, preprocessor: preprocessor,
                                  epoch: position.epoch, step: position.step,
                                  metadata: ["format": "dsl-checkpoint-1", "network": graph.name, "spec_hash": specHash,
                                             "seed": String(options.seed), "batch": String(options.batch)])
    }

    /// Restores weights, buffers, momentum and position from a checkpoint of the same network.
    public func restore(from checkpoint: TrainingCheckpoint, file: String) throws {
        try Trainer.checkSpec(checkpoint.metadata, hash: specHash, file: file)
        if let b = checkpoint.metadata["batch"], b != String(options.batch) {
            throw TrainingError("\(file): the checkpoint was trained with batch \(b); resume with --batch \(b) to continue exactly")
        }
        try Trainer.loadWeights(checkpoint.parameters, into: engine, file: file)
        guard let velocity = checkpoint.velocity else { throw TrainingError("\(file): the checkpoint has no optimizer state; it cannot be resumed") }
        try optimizer.setVelocity(velocity)
        position = TrainingPosition(epoch: checkpoint.epoch, step: checkpoint.step)
    }

    /// Refuses a checkpoint whose spec hash differs from the network's.
    public static func checkSpec(_ metadata: [String: String], hash: String, file: String) throws {
        guard let h = metadata["spec_hash"] else { throw TrainingError("\(file): not a dsl checkpoint (no spec_hash in its metadata)") }
        guard h == hash else {
            throw TrainingError("\(file): the checkpoint is of a different network (\(metadata["network"] ?? "unknown"), spec hash \(h)); this spec's hash is \(hash)")
        }
    }

    /// Copies parameters and buffers by name into an engine, checking every shape.
    public static func loadWeights(_ tensors: [String: StoredTensor], into engine: EngineGraph, file: String) throws {
        let contents = SafetensorsContents(tensors: tensors)
        for p in engine.parameters {
            p.value.update(from: try contents.floats(p.name, shape: p.shape, file: file), count: p.count)
        }
        for b in engine.buffers {
            b.value.update(from: try contents.floats(b.name, shape: b.shape, file: file), count: b.count)
        }
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

