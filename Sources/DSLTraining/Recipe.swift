import Foundation
import DSLIR

// The training recipe as stored in a checkpoint's metadata (format dsl-checkpoint-2): one
// string per `dsl train` flag, under "recipe.<name>", so that `dsl train FILE --resume CKPT`
// continues a run with exactly the settings it was started with. Floats are written in Swift's
// shortest round-trip form, so a stored value reads back bit for bit.

/// One recipe entry: its metadata key, the `dsl train` flag that sets it, and how it reads.
public struct RecipeField: Sendable {
    /// Metadata key, e.g. "recipe.lr".
    public let key: String
    /// The command-line flag, e.g. "--lr".
    public let flag: String
    /// The stored text of this field for some options.
    public let text: @Sendable (TrainingOptions) -> String
    /// Sets the field from stored text; throws a message (without file) when malformed.
    let set: @Sendable (inout TrainingOptions, String) throws -> Void
    /// The text of a field that checkpoints written before it existed lack (their runs had this
    /// value); nil: the field is required.
    var absent: String? = nil
}

/// Epochs as stored and shown: "10" for a whole number, else Swift's shortest form ("9.9").
public func formatEpochCount(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
}

private func recipeEpochs(_ text: String) throws -> Double {
    guard let value = Double(text), value.isFinite, value > 0, value <= 100_000 else {
        throw TrainingError("'\(text)' is not a number of epochs above 0 and at most 100000")
    }
    return value
}

private func recipeInt(_ text: String, _ range: ClosedRange<Int>) throws -> Int {
    guard let value = Int(text), range.contains(value) else {
        throw TrainingError("'\(text)' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
    }
    return value
}

private func recipeFloat(_ text: String, _ range: ClosedRange<Float>) throws -> Float {
    guard let value = Float(text), value.isFinite, range.contains(value) else {
        throw TrainingError("'\(text)' is not a number from \(range.lowerBound) to \(range.upperBound)")
    }
    return value
}

private func recipeBool(_ text: String) throws -> Bool {
    switch text {
    case "true": return true
    case "false": return false
    default: throw TrainingError("'\(text)' is not true or false")
    }
}

private func recipeLimit(_ text: String) throws -> Int? {
    text == "none" ? nil : try recipeInt(text, 1...Int.max)
}

/// The command-line name of a preprocessing method (`--whiten` values).
public func whitenFlagValue(_ method: Preprocessor.Method) -> String {
    switch method {
    case .none: return "none"
    case .standardize: return "standardize"
    case .gcnZCA: return "zca"
    }
}

/// Parses a `--whiten` value: standardize, zca or none.
public func parseWhitenFlag(_ text: String) -> Preprocessor.Method? {
    switch text {
    case "standardize": return .standardize
    case "zca": return .gcnZCA
    case "none": return Preprocessor.Method.none
    default: return nil
    }
}

extension TrainingOptions {
    /// Every recipe field, in `dsl train --help` order. Ranges are those `dsl train` accepts.
    public static let recipeFields: [RecipeField] = [
        RecipeField(key: "recipe.data", flag: "--data", text: { $0.dataDirectory ?? "" }, set: { o, t in o.dataDirectory = t.isEmpty ? nil : t }),
        RecipeField(key: "recipe.dataset", flag: "--dataset", text: { $0.dataset?.rawValue ?? "" }, set: { o, t in
            if t.isEmpty { o.dataset = nil; return }
            guard let format = DatasetFormat(rawValue: t) else { throw TrainingError("'\(t)' is not cifar10, cifar100 or mnist") }
            o.dataset = format
        }),
        RecipeField(key: "recipe.labels", flag: "--labels", text: { $0.labels.rawValue }, set: { o, t in
            guard let labels = CIFAR100Labels(rawValue: t) else { throw TrainingError("'\(t)' is not fine or coarse") }
            o.labels = labels
        }),
        RecipeField(key: "recipe.train_limit", flag: "--train-limit", text: { $0.trainLimit.map(String.init) ?? "none" }, set: { o, t in o.trainLimit = try recipeLimit(t) }),
        RecipeField(key: "recipe.test_limit", flag: "--test-limit", text: { $0.testLimit.map(String.init) ?? "none" }, set: { o, t in o.testLimit = try recipeLimit(t) }),
        RecipeField(key: "recipe.epochs", flag: "--epochs", text: { formatEpochCount($0.trainingEpochs) }, set: { o, t in o.trainingEpochs = try recipeEpochs(t) }),
        RecipeField(key: "recipe.batch", flag: "--batch", text: { String($0.batch) }, set: { o, t in o.batch = try recipeInt(t, 1...4096) }),
        RecipeField(key: "recipe.lr", flag: "--lr", text: { "\($0.learningRate)" }, set: { o, t in o.learningRate = try recipeFloat(t, 0...10_000) }),
        RecipeField(key: "recipe.momentum", flag: "--momentum", text: { "\($0.momentum)" }, set: { o, t in o.momentum = try recipeFloat(t, 0...0.999) }),
        RecipeField(key: "recipe.nesterov", flag: "--nesterov", text: { $0.nesterov ? "true" : "false" }, set: { o, t in o.nesterov = try recipeBool(t) }),
        RecipeField(key: "recipe.weight_decay", flag: "--weight-decay", text: { "\($0.weightDecay)" }, set: { o, t in o.weightDecay = try recipeFloat(t, 0...1) }),
        RecipeField(key: "recipe.schedule", flag: "--schedule", text: { $0.schedule }, set: { o, t in o.schedule = t }),
        RecipeField(key: "recipe.decoupled", flag: "--decoupled", text: { $0.decoupled ? "true" : "false" }, set: { o, t in o.decoupled = try recipeBool(t) }, absent: "false"),
        RecipeField(key: "recipe.weight_decay_on", flag: "--weight-decay-on", text: { $0.weightDecayScope.rawValue }, set: { o, t in
            guard let scope = WeightDecayScope(rawValue: t) else { throw TrainingError("'\(t)' is not weights or all") }
            o.weightDecayScope = scope
        }, absent: "weights"),
        RecipeField(key: "recipe.bn_bias_lr", flag: "--bn-bias-lr", text: { "\($0.batchNormBiasLearningRate)" }, set: { o, t in
            o.batchNormBiasLearningRate = try recipeFloat(t, 1e-6...1e6)
        }, absent: "1.0"),
        RecipeField(key: "recipe.label_smoothing", flag: "--label-smoothing", text: { "\($0.labelSmoothing)" }, set: { o, t in
            o.labelSmoothing = try recipeFloat(t, 0...0.999)
        }, absent: "0.0"),
        RecipeField(key: "recipe.lookahead", flag: "--lookahead", text: { $0.lookahead?.description ?? "none" }, set: { o, t in
            o.lookahead = try LookaheadSchedule.parse(t)
        }, absent: "none"),
        // "true" and "false" (random, off) as stored before --flip had a third value.
        RecipeField(key: "recipe.flip", flag: "--flip", text: { ["random": "true", "off": "false", "alternate": "alternate"][$0.flipMode.rawValue]! }, set: { o, t in
            guard let mode = ["true": FlipMode.random, "false": .off, "alternate": .alternate][t] else { throw TrainingError("'\(t)' is not true, false or alternate") }
            o.flipMode = mode
        }),
        RecipeField(key: "recipe.translate", flag: "--translate", text: { String($0.translate) }, set: { o, t in o.translate = try recipeInt(t, 0...16) }),
        RecipeField(key: "recipe.pad_mode", flag: "--pad-mode", text: { $0.padMode.rawValue }, set: { o, t in
            guard let mode = PadMode(rawValue: t) else { throw TrainingError("'\(t)' is not zero or reflect") }
            o.padMode = mode
        }, absent: "zero"),
        RecipeField(key: "recipe.patch_whitening_images", flag: "--whitening-images", text: { String($0.patchWhiteningImages) },
                    set: { o, t in o.patchWhiteningImages = try recipeInt(t, 1...Int.max) }, absent: "5000"),
        RecipeField(key: "recipe.eval_every", flag: "--eval-every", text: { $0.evalEvery == 0 ? "final" : String($0.evalEvery) },
                    set: { o, t in o.evalEvery = t == "final" ? 0 : try recipeInt(t, 1...100_000) }, absent: "1"),
        RecipeField(key: "recipe.tta", flag: "--tta", text: { String($0.tta) }, set: { o, t in o.tta = try recipeInt(t, 0...2) }, absent: "0"),
        RecipeField(key: "recipe.whiten", flag: "--whiten", text: { whitenFlagValue($0.whiten) }, set: { o, t in
            guard let method = parseWhitenFlag(t) else { throw TrainingError("'\(t)' is not standardize, zca or none") }
            o.whiten = method
        }),
        RecipeField(key: "recipe.zca_epsilon", flag: "--zca-epsilon", text: { "\($0.zcaEpsilon)" }, set: { o, t in o.zcaEpsilon = try recipeFloat(t, 1e-6...1e6) }),
        RecipeField(key: "recipe.seed", flag: "--seed", text: { String($0.seed) }, set: { o, t in
            guard let seed = UInt64(t), seed <= UInt64(Int.max) else { throw TrainingError("'\(t)' is not a whole number from 0 to \(Int.max)") }
            o.seed = seed
        }),
    ]

    /// The recipe as checkpoint metadata ("recipe.*" keys, one per field of `recipeFields`).
    public func recipeMetadata() -> [String: String] {
        var result: [String: String] = [:]
        for field in TrainingOptions.recipeFields { result[field.key] = field.text(self) }
        return result
    }

    /// Reads a recipe from checkpoint metadata; every "recipe.*" key must be present, known and
    /// well-formed, and the schedule must parse. `file` names the checkpoint in errors.
    public init(recipe metadata: [String: String], file: String) throws {
        self.init()
        let known = Set(TrainingOptions.recipeFields.map(\.key))
        if let unknown = metadata.keys.filter({ $0.hasPrefix("recipe.") && !known.contains($0) }).sorted().first {
            throw TrainingError("\(file): unknown metadata '\(unknown)' (not a training-recipe field of this dsl)")
        }
        for field in TrainingOptions.recipeFields {
            guard let text = metadata[field.key] ?? field.absent else { throw TrainingError("\(file): metadata '\(field.key)' (the run's \(field.flag)) is missing") }
            do { try field.set(&self, text) } catch let error as TrainingError {
                throw TrainingError("\(file): metadata '\(field.key)' (the run's \(field.flag)): \(error.message)")
            }
        }
        if whiten != .gcnZCA && zcaEpsilon != Preprocessor.defaultZCAEpsilon {
            throw TrainingError("\(file): metadata 'recipe.zca_epsilon' is \(zcaEpsilon) but the run does not use ZCA (recipe.whiten \(whitenFlagValue(whiten)))")
        }
        if nesterov && momentum == 0 {
            throw TrainingError("\(file): metadata 'recipe.nesterov' is true with 'recipe.momentum' 0 (Nesterov needs momentum)")
        }
        do { _ = try LearningRateSchedule.parse(schedule, baseRate: Double(stepLearningRate), epochs: trainingEpochs) } catch let error as TrainingError {
            throw TrainingError("\(file): metadata 'recipe.schedule' (the run's --schedule): \(error.message)")
        }
    }

    /// The recipe fields whose stored text differs between `self` and `other`, ignoring the
    /// data directory (a moved dataset is checked by its fingerprint) and `ignoring` keys.
    public func recipeDifferences(from other: TrainingOptions, ignoring: Set<String> = []) -> [(field: RecipeField, mine: String, theirs: String)] {
        TrainingOptions.recipeFields.compactMap { field in
            if field.key == "recipe.data" || ignoring.contains(field.key) { return nil }
            let (a, b) = (field.text(self), field.text(other))
            return a == b ? nil : (field, a, b)
        }
    }
}

/// Identifies the images a run trains and tests on: counts, classes and a hash of every pixel
/// and label (after --train-limit / --test-limit, before preprocessing). Stored in checkpoints
/// under "data.*" so that a resumed run refuses data that changed.
public struct DataFingerprint: Equatable, Sendable {
    /// Training images used.
    public var trainImages: Int
    /// Test images used.
    public var testImages: Int
    /// Classes of the dataset.
    public var classes: Int
    /// FNV-1a (64-bit, over 32-bit words) of the training images' shape, pixels and labels, in hex.
    public var trainHash: String
    /// The same for the test images.
    public var testHash: String

    /// Creates a fingerprint from its parts.
    public init(trainImages: Int, testImages: Int, classes: Int, trainHash: String, testHash: String) {
        self.trainImages = trainImages; self.testImages = testImages; self.classes = classes
        self.trainHash = trainHash; self.testHash = testHash
    }

    /// The fingerprint of a training and a test set.
    public init(train: Dataset, test: Dataset) {
        self.init(trainImages: train.count, testImages: test.count, classes: train.classes,
                  trainHash: DataFingerprint.hash(train), testHash: DataFingerprint.hash(test))
    }

    /// FNV-1a over 32-bit words: the dimensions, every pixel's bit pattern and every label.
    public static func hash(_ data: Dataset) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for word in [data.count, data.height, data.width, data.channels, data.classes] { h = (h ^ UInt64(UInt32(truncatingIfNeeded: word))) &* 0x100_0000_01b3 }
        let pixels = min(data.images.count, data.count * data.imageSize)
        data.images.withUnsafeBufferPointer { p in
            for i in 0..<pixels { h = (h ^ UInt64(p[i].bitPattern)) &* 0x100_0000_01b3 }
        }
        for label in data.labels.prefix(data.count) { h = (h ^ UInt64(UInt32(bitPattern: label))) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    /// As checkpoint metadata ("data.*" keys).
    public func metadata() -> [String: String] {
        ["data.train_images": String(trainImages), "data.test_images": String(testImages), "data.classes": String(classes),
         "data.train_hash": trainHash, "data.test_hash": testHash]
    }

    /// Reads "data.*" metadata; every key must be present, known and well-formed.
    public init(metadata: [String: String], file: String) throws {
        let keys = ["data.train_images", "data.test_images", "data.classes", "data.train_hash", "data.test_hash"]
        if let unknown = metadata.keys.filter({ $0.hasPrefix("data.") && !keys.contains($0) }).sorted().first {
            throw TrainingError("\(file): unknown metadata '\(unknown)'")
        }
        func count(_ key: String, _ minimum: Int) throws -> Int {
            guard let text = metadata[key] else { throw TrainingError("\(file): metadata '\(key)' is missing") }
            guard let value = Int(text), value >= minimum else { throw TrainingError("\(file): metadata '\(key)' is '\(text)', expected a whole number ≥ \(minimum)") }
            return value
        }
        func hash(_ key: String) throws -> String {
            guard let text = metadata[key] else { throw TrainingError("\(file): metadata '\(key)' is missing") }
            guard !text.isEmpty, text.count <= 16, UInt64(text, radix: 16) != nil else { throw TrainingError("\(file): metadata '\(key)' is '\(text)', expected a 64-bit hex hash") }
            return text
        }
        self.init(trainImages: try count("data.train_images", 1), testImages: try count("data.test_images", 0), classes: try count("data.classes", 1),
                  trainHash: try hash("data.train_hash"), testHash: try hash("data.test_hash"))
    }
}

/// A flag given again on `--resume` that the run cannot take: the message names the flag and
/// both values. It is a command-line mistake (exit 2), unlike a `TrainingError`.
public struct RecipeConflict: Error, CustomStringConvertible {
    /// The full message.
    public let message: String
    /// The message.
    public var description: String { message }
}

extension TrainingOptions {
    /// Recipe keys a resumed run may change: the number of epochs, and what only the
    /// evaluation uses (how often it runs, its test-time augmentation).
    public static let changeableOnResume: Set<String> = ["recipe.epochs", "recipe.eval_every", "recipe.tta"]

    /// The recipe of a resumed run: the `stored` one, checked against the flags given again
    /// (`flags`, with `given` the flags present on the command line). Each given flag must
    /// agree, except `--eval-every` and `--tta` (taken: evaluation only), `--epochs` (a new
    /// total: the schedule becomes the one of that total) and
    /// `--data` (the dataset may have moved; its images are checked against the checkpoint, and
    /// `note` receives a line saying so). Throws `RecipeConflict` for a disagreeing flag or an
    /// `--epochs` that leaves nothing to train, `TrainingError` for a run that is complete.
    public static func resumed(stored: TrainingOptions, flags: TrainingOptions, given: Set<String>, completedEpochs: Int,
                               file: String, note: (String) -> Void) throws -> TrainingOptions {
        var o = stored
        func shown(_ field: RecipeField, _ text: String) -> String {
            switch field.key {
            case "recipe.train_limit", "recipe.test_limit": return text == "none" ? "no \(field.flag) (all images)" : "\(field.flag) \(text)"
            case "recipe.nesterov": return text == "true" ? "--nesterov" : "no --nesterov"
            case "recipe.flip": return "--flip " + (["true": "random", "false": "off"][text] ?? text)
            case "recipe.decoupled": return text == "true" ? "--decoupled" : "no --decoupled"
            case "recipe.eval_every": return text == "final" ? "--eval-every final" : "--eval-every \(text)"
            default: return "\(field.flag) \(text)"
            }
        }
        for field in recipeFields where given.contains(field.flag) && !TrainingOptions.changeableOnResume.contains(field.key) && field.key != "recipe.data" {
            let (mine, theirs) = (field.text(flags), field.text(stored))
            if mine == theirs { continue }
            if field.key == "recipe.schedule",
               let x = try? LearningRateSchedule.parse(mine, baseRate: Double(stored.learningRate), totalEpochs: stored.epochs),
               let y = try? LearningRateSchedule.parse(theirs, baseRate: Double(stored.learningRate), totalEpochs: stored.epochs), x == y { continue }
            throw RecipeConflict(message: "\(shown(field, mine)) disagrees with the run in \(file), which has \(shown(field, theirs)); "
                + "a resumed run keeps its recipe (only --epochs may change): drop the flag, or start a new run")
        }
        if given.contains("--data"), let path = flags.dataDirectory {
            if path != stored.dataDirectory {
                note("--data \(path) is not the run's data directory (\(stored.dataDirectory ?? "none")); its images are checked against the checkpoint")
            }
            o.dataDirectory = path
        }
        if given.contains("--epochs") { o.trainingEpochs = flags.trainingEpochs }
        // Evaluation only: the weights do not depend on them.
        if given.contains("--eval-every") { o.evalEvery = flags.evalEvery }
        if given.contains("--tta") { o.tta = flags.tta }
        guard completedEpochs < o.epochs else {
            if given.contains("--epochs") {
                throw RecipeConflict(message: "--epochs \(formatEpochCount(o.trainingEpochs)) leaves nothing to train: the run in \(file) has completed \(completedEpochs) epochs; pass more than \(completedEpochs)")
            }
            throw TrainingError("\(file): the run is complete (\(completedEpochs) of \(stored.epochs) epochs); to train longer, pass --epochs N with N above \(completedEpochs)")
        }
        do { _ = try LearningRateSchedule.parse(o.schedule, baseRate: Double(o.stepLearningRate), epochs: o.trainingEpochs) } catch {
            throw RecipeConflict(message: "--epochs \(formatEpochCount(o.trainingEpochs)): the run's schedule: \(error)")
        }
        return o
    }
}

// MARK: - The default learning rate

extension TrainingOptions {
    /// `dsl train`'s learning rate when `--lr` is not given, with batch norm in the network.
    public static let defaultLearningRateWithBatchNorm: Float = 0.05
    /// ... and without: the All-CNN networks (no batch norm, a ReLU classifier) lost class units
    /// for good in their first epoch at 0.05 (Model B, ConvPool-CNN-A; measured for issue 17).
    public static let defaultLearningRateWithoutBatchNorm: Float = 0.02
    /// The schedule when `--schedule` is not given, with batch norm in the network.
    public static let defaultScheduleWithBatchNorm = "cosine"
    /// ... and without: a one-epoch linear warm-up first (ConvPool-CNN-A still lost every class
    /// unit in its first epoch at 0.02 without it; with it, 39.7 % after 3 epochs).
    public static let defaultScheduleWithoutBatchNorm = "cosine+warmup:1"

    /// The default schedule for a network: cosine, after a one-epoch warm-up without batch norm.
    public static func defaultSchedule(for graph: Graph) -> String {
        hasBatchNorm(graph) ? defaultScheduleWithBatchNorm : defaultScheduleWithoutBatchNorm
    }

    /// The default learning rate for a network: 0.05 if any layer has batch norm (a `bn`
    /// option, a `bn` layer, a `pyramid`), else 0.02.
    public static func defaultLearningRate(for graph: Graph) -> Float {
        hasBatchNorm(graph) ? defaultLearningRateWithBatchNorm : defaultLearningRateWithoutBatchNorm
    }

    /// Whether any layer of the network normalises with batch norm.
    public static func hasBatchNorm(_ graph: Graph) -> Bool {
        graph.nodes.contains { node in
            switch node.op {
            case .batchNorm: return true
            case .conv(let c): return c.batchNorm
            default: return false
            }
        }
    }
}
