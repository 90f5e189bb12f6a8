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
    /// Per-parameter momentum buffers, one contiguous block like the engine's parameters.
    public private(set) var velocity: [Float]
    private var decayMask: [Float]
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
        self.schedule = try LearningRateSchedule(parsing: options.schedule, epochs: options.epochs)
        var trainSet = options.trainLimit.map { train.prefix($0) } ?? train
        var testSet = options.testLimit.map { test.prefix($0) } ?? test
        switch options.whiten {
        case .none: preprocessor = .identity(height: s.height, width: s.width, channels: s.channels)
        case .standardize: preprocessor = .fitStandardization(on: trainSet)
        case .gcnZCA: preprocessor = try .fitGCNZCA(on: trainSet)
        }
        try preprocessor.apply(to: &trainSet)
        try preprocessor.apply(to: &testSet)
        self.train = trainSet
        self.test = testSet
        let lowered = try lower(graph, maxBatch: options.batch, seed: options.seed)
        engine = lowered.engine
        engine.compile(training: true)
        velocity = [Float](repeating: 0, count: engine.parameterCount)
        // Weight decay applies to conv and linear weights, not to biases or batch norm.
        decayMask = [Float](repeating: 0, count: engine.parameterCount)
        for p in engine.parameters where p.name.hasSuffix(".weight") && p.shape.count > 1 {
            for i in p.offset..<(p.offset + p.count) { decayMask[i] = 1 }
        }
        specHash = Trainer.hash(graph)
    }

    /// The learning rate at a fractional epoch.
    public func learningRate(epoch: Int, step: Int, steps: Int) -> Float {
        options.learningRate * schedule.factor(at: Double(epoch) + Double(step) / Double(max(steps, 1)))
    }

    /// A human-readable summary of the run (printed at start).
    public var description: String {
        var s = "training \(graph.name): \(train.count) training and \(test.count) test images, batch \(options.batch), \(options.epochs) epochs, seed \(options.seed)\n"
        s += "SGD lr \(options.learningRate), momentum \(options.momentum)\(options.nesterov ? " (Nesterov)" : ""), weight decay \(options.weightDecay)\n"
        s += "schedule: \(schedule.describe(base: options.learningRate))\n"
        s += "augmentation: \(options.flip ? "horizontal flips" : "no flips"), \(options.translate > 0 ? "translations up to \(options.translate) px" : "no translations"); preprocessing: \(preprocessor.method.rawValue)\n"
        s += "engine: \(engineThreadCount) thread\(engineThreadCount == 1 ? "" : "s"), \(engine.parameterCount) parameters, planned memory \(String(format: "%.1f", Double(engine.plannedBytes) / 1048576)) MiB"
        return s
    }

    /// Runs the remaining epochs. `checkpoint` is called at the end of every epoch and when
    /// interrupted; it must write the checkpoint (the trainer does not know the path).
    public func run(report: (TrainingEvent) -> Void, checkpoint: (Trainer) throws -> Void) throws -> TrainingOutcome {
        let b = options.batch
        let steps = max(1, train.count / b) // the last partial batch is dropped, as usual
        let imageSize = train.imageSize
        let images = UnsafeMutablePointer<Float>.allocate(capacity: b * imageSize)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: imageSize)
        let labels = UnsafeMutablePointer<Int32>.allocate(capacity: b)
        defer { images.deallocate(); scratch.deallocate(); labels.deallocate() }
        let start = Date()
        report(.started(description))
        while position.epoch < options.epochs {
            let epoch = position.epoch
            var order = Array(0..<train.count)
            var shuffleRNG = SplitMix64(seed: mix(options.seed, UInt64(epoch), 0x5348_5546))
            order.shuffle(using: &shuffleRNG)
            var lossSum = 0.0, correct = 0, seen = 0
            let epochStart = Date()
            while position.step < steps {
                let s = position.step
                try train.gatherBatch(indices: order[(s * b)..<((s + 1) * b)], images: images, labels: labels)
                var augRNG = SplitMix64(seed: mix(options.seed, UInt64(epoch), UInt64(s) &+ 0xA5A5))
                augment(images, count: b, scratch: scratch, rng: &augRNG)
                engine.reseedDropout(mix(options.seed, UInt64(epoch), UInt64(s) &+ 0xD0D0))
                _ = engine.forward(images, batch: b, training: true)
                let (loss, hits) = engine.backward(labels: labels, batch: b)
                guard loss.isFinite else {
                    throw TrainingError("loss became \(loss) at epoch \(epoch + 1), step \(s + 1); try a lower learning rate (now \(learningRate(epoch: epoch, step: s, steps: steps)))")
                }
                sgdStep(learningRate: learningRate(epoch: epoch, step: s, steps: steps))
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

    /// SGD with momentum and weight decay in one fused loop over all parameters (PyTorch
    /// semantics: v = μv + (g + λw); w -= lr·v, or Nesterov: w -= lr·(g + λw + μv)).
    private func sgdStep(learningRate lr: Float) {
        let n = engine.parameterCount
        let w = engine.parameterValues, g = engine.parameterGrads
        let mu = options.momentum, wd = options.weightDecay, nesterov = options.nesterov
        velocity.withUnsafeMutableBufferPointer { vb in
            decayMask.withUnsafeBufferPointer { mb in
                let v = vb.baseAddress!, m = mb.baseAddress!
                for i in 0..<n {
                    let d = g[i] + wd * m[i] * w[i]
                    let vi = mu * v[i] + d
                    v[i] = vi
                    w[i] -= lr * (nesterov ? d + mu * vi : vi)
                }
            }
        }
    }

    /// Random horizontal flips and translations (zero padding, random crop) in place.
    private func augment(_ images: UnsafeMutablePointer<Float>, count: Int, scratch: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        let h = train.height, w = train.width, c = train.channels
        let size = h * w * c
        let p = options.translate
        for n in 0..<count {
            let img = images + n * size
            let flip = options.flip && rng.nextBool()
            let dy = p > 0 ? rng.nextInt(below: 2 * p + 1) - p : 0
            let dx = p > 0 ? rng.nextInt(below: 2 * p + 1) - p : 0
            if !flip && dx == 0 && dy == 0 { continue }
            scratch.update(from: img, count: size)
            for y in 0..<h {
                let sy = y + dy
                for x in 0..<w {
                    let sxRaw = x + dx
                    let sx = flip ? w - 1 - sxRaw : sxRaw
                    let dst = img + (y * w + x) * c
                    if sy < 0 || sy >= h || sxRaw < 0 || sxRaw >= w {
                        for k in 0..<c { dst[k] = 0 }
                    } else {
                        let src = scratch + (sy * w + sx) * c
                        for k in 0..<c { dst[k] = src[k] }
                    }
                }
            }
        }
    }

    // MARK: - Checkpoints

    /// The tensors and metadata of a checkpoint: parameters and buffers by layer name,
    /// momentum (`optimizer.velocity.<name>`), preprocessing, position and the spec hash.
    public func checkpointContents() throws -> (tensors: [String: StoredTensor], metadata: [String: String]) {
        var tensors: [String: StoredTensor] = [:]
        for p in engine.parameters {
            tensors[p.name] = try StoredTensor(shape: p.shape, floats: Array(UnsafeBufferPointer(start: p.value, count: p.count)))
            tensors["optimizer.velocity." + p.name] = try StoredTensor(shape: p.shape, floats: Array(velocity[p.offset..<(p.offset + p.count)]))
        }
        for b in engine.buffers {
            tensors[b.name] = try StoredTensor(shape: b.shape, floats: Array(UnsafeBufferPointer(start: b.value, count: b.count)))
        }
        for (k, v) in preprocessor.tensors() { tensors[k] = v }
        var meta = preprocessor.metadata()
        meta["format"] = "dsl-checkpoint-1"
        meta["network"] = graph.name
        meta["spec_hash"] = specHash
        meta["epoch"] = String(position.epoch)
        meta["step"] = String(position.step)
        meta["seed"] = String(options.seed)
        meta["batch"] = String(options.batch)
        return (tensors, meta)
    }

    /// Restores weights, buffers, momentum and position from a checkpoint of the same network.
    public func restore(from contents: SafetensorsContents, file: String) throws {
        try Trainer.checkSpec(contents, hash: specHash, file: file)
        try Trainer.loadWeights(contents, into: engine, file: file)
        for p in engine.parameters {
            let v = try contents.floats("optimizer.velocity." + p.name, shape: p.shape, file: file)
            velocity.replaceSubrange(p.offset..<(p.offset + p.count), with: v)
        }
        position.epoch = Int(contents.metadata["epoch"] ?? "") ?? 0
        position.step = Int(contents.metadata["step"] ?? "") ?? 0
        if let b = contents.metadata["batch"], b != String(options.batch) {
            throw TrainingError("\(file): the checkpoint was trained with batch \(b); resume with --batch \(b) to continue exactly")
        }
    }

    /// Refuses a checkpoint whose spec hash differs from the network's.
    public static func checkSpec(_ contents: SafetensorsContents, hash: String, file: String) throws {
        guard let h = contents.metadata["spec_hash"] else { throw TrainingError("\(file): not a dsl checkpoint (no spec_hash in its metadata)") }
        guard h == hash else {
            throw TrainingError("\(file): the checkpoint is of a different network (\(contents.metadata["network"] ?? "unknown"), spec hash \(h)); this spec's hash is \(hash)")
        }
    }

    /// Copies parameters and buffers by name from a checkpoint into an engine.
    public static func loadWeights(_ contents: SafetensorsContents, into engine: EngineGraph, file: String) throws {
        for p in engine.parameters {
            let v = try contents.floats(p.name, shape: p.shape, file: file)
            p.value.update(from: v, count: p.count)
        }
        for b in engine.buffers {
            let v = try contents.floats(b.name, shape: b.shape, file: file)
            b.value.update(from: v, count: b.count)
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
    var z = a &+ 0x9E37_79B9_7F4A_7C15 &* (b &+ 1) &+ 0xBF58_476D_1CE4_E5B9 &* (c &+ 1)
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A learning-rate schedule as a factor of the base rate over fractional epochs.
/// Text forms: `constant`, `cosine`, `step:F@E1,E2,...` (multiply by F at each epoch Ei),
/// each optionally followed by `+warmup:N` (linear warm-up over the first N epochs).
public struct LearningRateSchedule: Sendable {
    enum Kind: Sendable { case constant, cosine, step(Float, [Int]) }
    let kind: Kind
    let warmup: Int
    let epochs: Int

    /// Parses the text form; throws a message listing the accepted forms.
    public init(parsing text: String, epochs: Int) throws {
        self.epochs = max(1, epochs)
        var parts = text.split(separator: "+").map(String.init)
        var w = 0
        if parts.count == 2, parts[1].hasPrefix("warmup:"), let n = Int(parts[1].dropFirst(7)), n >= 0 { w = n; parts.removeLast() }
        guard parts.count == 1 else { throw TrainingError("bad schedule '\(text)': expected constant, cosine or step:F@E1,E2 (optionally +warmup:N)") }
        warmup = w
        let p = parts[0]
        if p == "constant" { kind = .constant }
        else if p == "cosine" { kind = .cosine }
        else if p.hasPrefix("step:"), let at = p.firstIndex(of: "@"),
                let f = Float(p[p.index(p.startIndex, offsetBy: 5)..<at]), f > 0,
                case let es = p[p.index(after: at)...].split(separator: ",").compactMap({ Int($0) }), !es.isEmpty {
            kind = .step(f, es.sorted())
        } else {
            throw TrainingError("bad schedule '\(text)': expected constant, cosine or step:F@E1,E2 (optionally +warmup:N)")
        }
    }

    /// The factor at fractional epoch `t` (0-based).
    public func factor(at t: Double) -> Float {
        var f: Double
        switch kind {
        case .constant: f = 1
        case .cosine: f = 0.5 * (1 + cos(.pi * min(t, Double(epochs)) / Double(epochs)))
        case .step(let g, let es): f = pow(Double(g), Double(es.filter { Double($0) <= t }.count))
        }
        if warmup > 0 && t < Double(warmup) { f *= (t + 1.0 / 64) / Double(warmup) }
        return Float(f)
    }

    /// `step: 0.05 until epoch 200, then ×0.1 at 200, 250, 300`.
    public func describe(base: Float) -> String {
        var s: String
        switch kind {
        case .constant: s = "constant \(base)"
        case .cosine: s = "cosine from \(base) to 0 over \(epochs) epochs"
        case .step(let g, let es): s = "step: \(base), multiplied by \(g) at epoch\(es.count == 1 ? "" : "s") \(es.map(String.init).joined(separator: ", "))"
        }
        if warmup > 0 { s += ", linear warm-up over \(warmup) epoch\(warmup == 1 ? "" : "s")" }
        return s
    }
}
