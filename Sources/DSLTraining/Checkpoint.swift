/// A training checkpoint: model tensors plus what resuming and evaluation need, in one safetensors file.
///
/// Tensors: model parameters and buffers under their own names (F32); "optimizer.velocity" (F32
/// [n], SGD momentum); with `--lookahead`, "optimizer.lookahead" (F32 [parameters + buffer
/// values], the lookahead average, absent before the run's first step); "preprocess.*" (the fitted input transform, F32); the position
/// "train.epoch" and "train.step" (I64 scalars); "train.elapsed_s" (F64 scalar, training seconds
/// over every session of the run), "train.epoch_loss_sum" (F64 scalar, Σ batch loss × batch
/// over the steps done in the epoch in progress) and "train.epoch_correct" (I64 scalar).
/// Metadata: "format" ("dsl-checkpoint-2"), the preprocessor's "preprocess.*" keys, the recipe
/// ("recipe.*", see `TrainingOptions.recipeFields`), the data fingerprint ("data.*", see
/// `DataFingerprint`) and free-form strings ("network", "spec_hash", ...).
///
/// `read(from:)` validates every stored field (dtype, shape, element count, finite values,
/// position within the run, metadata values) and names the file and the field in its errors.
public struct TrainingCheckpoint {
    /// The "format" metadata value of checkpoints written with a recipe.
    public static let currentFormat = "dsl-checkpoint-2"
    /// Tensor name prefixes reserved for the non-model parts.
    public static let reservedPrefixes = ["optimizer.", "preprocess.", "train."]
    /// Metadata key prefixes owned by the checkpoint itself (not free-form).
    public static let reservedMetadataPrefixes = ["preprocess.", "recipe.", "data."]
    /// The "train.*" tensors this version writes.
    public static let progressTensors = ["train.epoch", "train.step", "train.elapsed_s", "train.epoch_loss_sum", "train.epoch_correct"]

    /// Model tensors by name (no reserved prefix).
    public var parameters: [String: StoredTensor]
    /// The SGD velocity, when saved.
    public var velocity: [Float]?
    /// The lookahead average (parameters, then buffers in engine order), when the run has one.
    public var lookahead: [Float]?
    /// The input transform, when saved.
    public var preprocessor: Preprocessor?
    /// Epochs completed.
    public var epoch: Int
    /// Optimiser steps completed in the epoch in progress.
    public var step: Int
    /// Seconds of training so far, summed over every session of the run.
    public var elapsedSeconds: Double
    /// Σ (batch loss × batch size) over the steps done in the epoch in progress.
    public var epochLossSum: Double
    /// Correct training predictions in the steps done in the epoch in progress.
    public var epochCorrect: Int
    /// The run's recipe (nil in checkpoints written before format 2).
    public var recipe: TrainingOptions?
    /// The images the run uses (nil in checkpoints written before format 2).
    public var data: DataFingerprint?
    /// Free-form string metadata (e.g. the network name, its spec hash, "format").
    public var metadata: [String: String]

    /// Bundles the parts of a checkpoint.
    public init(parameters: [String: StoredTensor], velocity: [Float]? = nil, lookahead: [Float]? = nil, preprocessor: Preprocessor? = nil,
                epoch: Int, step: Int, elapsedSeconds: Double = 0, epochLossSum: Double = 0, epochCorrect: Int = 0,
                recipe: TrainingOptions? = nil, data: DataFingerprint? = nil, metadata: [String: String] = [:]) {
        self.parameters = parameters; self.velocity = velocity; self.lookahead = lookahead; self.preprocessor = preprocessor
        self.epoch = epoch; self.step = step; self.elapsedSeconds = elapsedSeconds
        self.epochLossSum = epochLossSum; self.epochCorrect = epochCorrect
        self.recipe = recipe; self.data = data; self.metadata = metadata
    }

    /// Writes the checkpoint atomically; throws when a parameter name uses a reserved prefix.
    public func write(to path: String) throws {
        var tensors: [String: StoredTensor] = [:]
        for (name, tensor) in parameters {
            if let prefix = TrainingCheckpoint.reservedPrefixes.first(where: { name.hasPrefix($0) }) {
                throw TrainingError("\(path): parameter name '\(name)' uses the reserved prefix '\(prefix)'")
            }
            tensors[name] = tensor
        }
        if let key = metadata.keys.first(where: { key in TrainingCheckpoint.reservedMetadataPrefixes.contains { key.hasPrefix($0) } }) {
            throw TrainingError("\(path): metadata key '\(key)' uses a reserved prefix")
        }
        var allMetadata = metadata
        if let velocity { tensors["optimizer.velocity"] = try StoredTensor(shape: [velocity.count], floats: velocity) }
        if let lookahead { tensors["optimizer.lookahead"] = try StoredTensor(shape: [lookahead.count], floats: lookahead) }
        if let preprocessor {
            try preprocessor.validate()
            tensors.merge(preprocessor.tensors()) { _, new in new }
            allMetadata.merge(preprocessor.metadata()) { _, new in new }
        }
        if let recipe { allMetadata.merge(recipe.recipeMetadata()) { _, new in new } }
        if let data { allMetadata.merge(data.metadata()) { _, new in new } }
        tensors["train.epoch"] = .scalar(Int64(epoch))
        tensors["train.step"] = .scalar(Int64(step))
        tensors["train.elapsed_s"] = .scalar(elapsedSeconds)
        tensors["train.epoch_loss_sum"] = .scalar(epochLossSum)
        tensors["train.epoch_correct"] = .scalar(Int64(epochCorrect))
        try writeSafetensors(tensors, metadata: allMetadata, to: path)
    }

    /// Reads a checkpoint written by `write(to:)`, validating every field; errors name `path`
    /// and the field.
    public static func read(from path: String) throws -> TrainingCheckpoint {
        try decode(try readSafetensors(path: path), file: path)
    }

    /// Validates and unpacks decoded safetensors contents; `file` names the checkpoint in errors.
    public static func decode(_ contents: SafetensorsContents, file path: String) throws -> TrainingCheckpoint {
        func fail(_ message: String) -> TrainingError { TrainingError("\(path): \(message)") }
        let isCurrent = contents.metadata["format"] == currentFormat
        if let format = contents.metadata["format"], format != currentFormat, format != "dsl-checkpoint-1" {
            throw fail("metadata 'format' is '\(format)'; this dsl reads dsl-checkpoint-1 and \(currentFormat)")
        }
        // Every tensor: known reserved name or a finite F32 model tensor.
        let preprocessTensors: Set<String> = ["preprocess.mean", "preprocess.inv_std", "preprocess.zca"]
        for (name, tensor) in contents.tensors.sorted(by: { $0.key < $1.key }) {
            if name.hasPrefix("train.") {
                guard progressTensors.contains(name) else { throw fail("unknown tensor '\(name)' (not one of \(progressTensors.joined(separator: ", ")))") }
            } else if name.hasPrefix("optimizer.") {
                guard name == "optimizer.velocity" || name == "optimizer.lookahead" else {
                    throw fail("unknown tensor '\(name)' (the optimizer stores only optimizer.velocity and optimizer.lookahead)")
                }
            } else if name.hasPrefix("preprocess.") {
                guard preprocessTensors.contains(name) else { throw fail("unknown tensor '\(name)'") }
            }
            if progressTensors.contains(name) { continue }
            guard let values = tensor.floats else { throw fail("tensor '\(name)' is \(tensor.dtype.rawValue), expected F32") }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw fail("tensor '\(name)' holds \(values[bad]) at element \(bad); a checkpoint holds finite values only")
            }
        }
        func integer(_ name: String, required: Bool) throws -> Int? {
            guard let tensor = contents.tensors[name] else {
                if required { throw fail("no '\(name)' tensor; not a dsl training checkpoint, or a damaged one") }
                return nil
            }
            guard tensor.dtype == .i64, tensor.shape == [], let value = tensor.int64s?.first else {
                throw fail("tensor '\(name)' is \(tensor.dtype.rawValue) of shape \(tensor.shape), expected an I64 scalar (shape [])")
            }
            guard value >= 0, value <= Int64(Int32.max) else { throw fail("tensor '\(name)' is \(value), expected a count from 0 to \(Int32.max)") }
            return Int(value)
        }
        func real(_ name: String, required: Bool) throws -> Double? {
            guard let tensor = contents.tensors[name] else {
                if required { throw fail("no '\(name)' tensor (required in \(currentFormat))") }
                return nil
            }
            guard tensor.dtype == .f64, tensor.shape == [], let value = tensor.doubles?.first else {
                throw fail("tensor '\(name)' is \(tensor.dtype.rawValue) of shape \(tensor.shape), expected an F64 scalar (shape [])")
            }
            guard value.isFinite, value >= 0 else { throw fail("tensor '\(name)' is \(value), expected a finite number ≥ 0") }
            return value
        }
        let epoch = try integer("train.epoch", required: true)!
        let step = try integer("train.step", required: true)!
        let elapsed = try real("train.elapsed_s", required: isCurrent) ?? 0
        let lossSum = try real("train.epoch_loss_sum", required: isCurrent) ?? 0
        let correct = try integer("train.epoch_correct", required: isCurrent) ?? 0

        var velocity: [Float]?
        if let tensor = contents.tensors["optimizer.velocity"] {
            guard tensor.shape.count == 1 else { throw fail("tensor 'optimizer.velocity' has shape \(tensor.shape), expected [parameter count]") }
            velocity = tensor.floats
        }
        var lookahead: [Float]?
        if let tensor = contents.tensors["optimizer.lookahead"] {
            guard tensor.shape.count == 1 else { throw fail("tensor 'optimizer.lookahead' has shape \(tensor.shape), expected [parameter and buffer values]") }
            lookahead = tensor.floats
        }
        let preprocessor = contents.metadata["preprocess.method"] == nil ? nil : try Preprocessor(contents: contents, file: path)
        if preprocessor == nil, let stray = contents.tensors.keys.sorted().first(where: { $0.hasPrefix("preprocess.") }) {
            throw fail("tensor '\(stray)' without 'preprocess.method' metadata")
        }
        let hasRecipe = contents.metadata.keys.contains { $0.hasPrefix("recipe.") }
        let hasData = contents.metadata.keys.contains { $0.hasPrefix("data.") }
        if isCurrent && !hasRecipe { throw fail("no 'recipe.*' metadata (required in \(currentFormat))") }
        if isCurrent && !hasData { throw fail("no 'data.*' metadata (required in \(currentFormat))") }
        if isCurrent && preprocessor == nil { throw fail("no 'preprocess.method' metadata (required in \(currentFormat))") }
        if isCurrent && velocity == nil { throw fail("no 'optimizer.velocity' tensor (required in \(currentFormat))") }
        let recipe = hasRecipe ? try TrainingOptions(recipe: contents.metadata, file: path) : nil
        let data = hasData ? try DataFingerprint(metadata: contents.metadata, file: path) : nil

        // The position must lie within the run the recipe describes.
        if let recipe {
            guard epoch <= recipe.epochs else {
                throw fail("tensor 'train.epoch' is \(epoch), past the end of the run (recipe.epochs \(recipe.epochs))")
            }
            if epoch == recipe.epochs && step != 0 {
                throw fail("tensor 'train.step' is \(step) but all \(recipe.epochs) epochs are complete (train.epoch \(epoch)); expected 0")
            }
            if let data {
                guard data.trainImages >= recipe.batch else {
                    throw fail("metadata 'data.train_images' is \(data.trainImages), fewer than recipe.batch \(recipe.batch)")
                }
                if let limit = recipe.trainLimit, data.trainImages > limit {
                    throw fail("metadata 'data.train_images' is \(data.trainImages), more than recipe.train_limit \(limit)")
                }
                if let limit = recipe.testLimit, data.testImages > limit {
                    throw fail("metadata 'data.test_images' is \(data.testImages), more than recipe.test_limit \(limit)")
                }
                let steps = data.trainImages / recipe.batch
                guard step <= steps else {
                    throw fail("tensor 'train.step' is \(step), past the end of an epoch (\(steps) steps: \(data.trainImages) images in batches of \(recipe.batch))")
                }
            }
            guard correct <= step * recipe.batch else {
                throw fail("tensor 'train.epoch_correct' is \(correct), more than the \(step * recipe.batch) images of the epoch's \(step) steps")
            }
            if let preprocessor, preprocessor.method != recipe.whiten {
                throw fail("metadata 'preprocess.method' is \(preprocessor.method.rawValue) but recipe.whiten is \(whitenFlagValue(recipe.whiten))")
            }
            if let preprocessor, recipe.whiten == .gcnZCA, preprocessor.zcaEpsilon != recipe.zcaEpsilon {
                throw fail("metadata 'preprocess.zca_epsilon' is \(preprocessor.zcaEpsilon) but recipe.zca_epsilon is \(recipe.zcaEpsilon)")
            }
        }
        if step == 0 && (lossSum != 0 || correct != 0) {
            throw fail("tensors 'train.epoch_loss_sum' (\(lossSum)) and 'train.epoch_correct' (\(correct)) must be 0 at step 0 of an epoch")
        }
        let parameters = contents.tensors.filter { name, _ in !reservedPrefixes.contains { name.hasPrefix($0) } }
        let metadata = contents.metadata.filter { key, _ in !reservedMetadataPrefixes.contains { key.hasPrefix($0) } }
        if lookahead != nil && recipe?.lookahead == nil && recipe != nil {
            throw fail("tensor 'optimizer.lookahead' but recipe.lookahead is none")
        }
        return TrainingCheckpoint(parameters: parameters, velocity: velocity, lookahead: lookahead, preprocessor: preprocessor, epoch: epoch, step: step,
                                  elapsedSeconds: elapsed, epochLossSum: lossSum, epochCorrect: correct,
                                  recipe: recipe, data: data, metadata: metadata)
    }
}
