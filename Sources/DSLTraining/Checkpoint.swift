/// A training checkpoint: model tensors plus what resuming and evaluation need, in one safetensors file.
///
/// Tensor names: model parameters under their own names; "optimizer.velocity" (SGD momentum);
/// "preprocess.*" (the fitted input transform); "train.epoch" and "train.step" (I64 scalars).
/// Metadata: the preprocessor's "preprocess.*" keys plus any caller-supplied strings.
public struct TrainingCheckpoint {
    /// Tensor name prefixes reserved for the non-model parts.
    public static let reservedPrefixes = ["optimizer.", "preprocess.", "train."]

    /// Model tensors by name (no reserved prefix).
    public var parameters: [String: StoredTensor]
    /// The SGD velocity, when saved.
    public var velocity: [Float]?
    /// The input transform, when saved.
    public var preprocessor: Preprocessor?
    /// Epochs completed.
    public var epoch: Int
    /// Optimiser steps completed.
    public var step: Int
    /// Free-form string metadata (e.g. the model source, command line, seed).
    public var metadata: [String: String]

    /// Bundles the parts of a checkpoint.
    public init(parameters: [String: StoredTensor], velocity: [Float]? = nil, preprocessor: Preprocessor? = nil,
                epoch: Int, step: Int, metadata: [String: String] = [:]) {
        self.parameters = parameters; self.velocity = velocity; self.preprocessor = preprocessor
        self.epoch = epoch; self.step = step; self.metadata = metadata
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
        var allMetadata = metadata
        if let velocity { tensors["optimizer.velocity"] = try StoredTensor(shape: [velocity.count], floats: velocity) }
        if let preprocessor {
            try preprocessor.validate()
            tensors.merge(preprocessor.tensors()) { _, new in new }
            allMetadata.merge(preprocessor.metadata()) { _, new in new }
        }
        tensors["train.epoch"] = .scalar(Int64(epoch))
        tensors["train.step"] = .scalar(Int64(step))
        try writeSafetensors(tensors, metadata: allMetadata, to: path)
    }

    /// Reads a checkpoint written by `write(to:)`, with clear errors for missing or malformed parts.
    public static func read(from path: String) throws -> TrainingCheckpoint {
        let contents = try readSafetensors(path: path)
        func counter(_ name: String) throws -> Int {
            guard let tensor = contents.tensors[name] else { throw TrainingError("\(path): no '\(name)' tensor; not a dsl training checkpoint") }
            guard let values = tensor.int64s, values.count == 1 else { throw TrainingError("\(path): '\(name)' must be one I64 value") }
            return Int(values[0])
        }
        let epoch = try counter("train.epoch"), step = try counter("train.step")
        let velocity = contents.tensors["optimizer.velocity"] == nil ? nil : try contents.floats("optimizer.velocity", file: path)
        let preprocessor = contents.metadata["preprocess.method"] == nil ? nil : try Preprocessor(contents: contents, file: path)
        let parameters = contents.tensors.filter { name, _ in !reservedPrefixes.contains { name.hasPrefix($0) } }
        let metadata = contents.metadata.filter { key, _ in !key.hasPrefix("preprocess.") }
        return TrainingCheckpoint(parameters: parameters, velocity: velocity, preprocessor: preprocessor,
                                  epoch: epoch, step: step, metadata: metadata)
    }
}
