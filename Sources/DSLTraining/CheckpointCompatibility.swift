import DSLEngine
import DSLIR
import Foundation

// Whether a checkpoint fits a spec, and if not, what differs.
//
// A checkpoint records the spec it was trained with twice: "spec_hash" (a hash of every layer:
// name, op with all its attributes, inputs, output shape) and, since this version, "layers"
// (the same layers as JSON, `LayerRecord`), which lets an error say which layers differ.
//
// - Resuming needs the same spec: the run continues exactly, and any change (even a dropout
//   rate) would make it another run. A different spec_hash is refused, naming the differences
//   and pointing to `--init` (a new run from those weights).
// - Evaluating needs the same inference: the layers with dropout removed (dropout is the
//   identity at evaluation) must be equal, so a checkpoint stays usable after a dropout rate is
//   changed, or a dropout layer added or removed. A checkpoint without "layers" (written by an
//   earlier dsl) whose hash differs is evaluated when every tensor matches the network by name
//   and shape, with a warning that what changed cannot be told.

/// One layer of a network as a checkpoint records it.
public struct LayerRecord: Equatable, Sendable {
    /// The layer's name (`conv3`, `3a.b2.conv`).
    public var name: String
    /// The op with all its attributes, e.g. "conv 3x3/1 pad 1 32 nobias bn relu", "dropout 0.5".
    public var op: String
    /// The names of its inputs.
    public var inputs: [String]
    /// Its output shape, "HxWxC".
    public var shape: String

    /// Creates a record.
    public init(name: String, op: String, inputs: [String], shape: String) {
        self.name = name; self.op = op; self.inputs = inputs; self.shape = shape
    }

    /// Whether the layer is a dropout (the identity at evaluation).
    public var isDropout: Bool { op.hasPrefix("dropout") }

    /// "conv 3x3/1 pad 1 32 bn relu -> 32x32x32".
    public var summary: String { "\(op) -> \(shape)" }

    /// The records of a network's layers, in order.
    public static func layers(of graph: Graph) -> [LayerRecord] {
        graph.nodes.map { n in
            LayerRecord(name: n.name, op: describe(n.op), inputs: n.inputs.map { graph.nodes[$0].name }, shape: n.shape.description)
        }
    }

    /// An op with every attribute that changes what it computes.
    public static func describe(_ op: Op) -> String {
        func act(_ a: Activation) -> String {
            switch a {
            case .none: return ""
            case .leaky(let s): return " leaky \(s)"
            default: return " " + a.keyword
            }
        }
        // A batch norm with PyTorch's settings keeps the spelling of checkpoints written before
        // `scale=`, `momentum=` and `eps=` existed.
        func norm(_ b: BatchNormAttributes) -> String {
            (b.scale ? "" : " scale=off") + (b.momentum == 0.1 ? "" : " momentum \(b.momentum)") + (b.epsilon == 1e-5 ? "" : " eps \(b.epsilon)")
        }
        switch op {
        case .input: return "input"
        case .conv(let c):
            // A square convolution keeps the spelling checkpoints written before rectangles,
            // dilation and groups existed.
            let window: String
            if let sq = c.square {
                window = "\(sq.kernel)x\(sq.kernel)/\(sq.stride) pad \(sq.pad)"
            } else {
                window = "\(c.kernelHeight)x\(c.kernelWidth)/\(c.strideHeight)x\(c.strideWidth) pad \(c.padTop),\(c.padLeft),\(c.padBottom),\(c.padRight)"
                    + " dilation \(c.dilationHeight)x\(c.dilationWidth) groups \(c.groups)"
            }
            return "conv \(window) \(c.filters)" + (c.bias ? "" : " nobias") + (c.batchNorm ? " bn" + norm(c.norm) : "") + act(c.activation)
        case .pool(let p): return "\(p.kind.rawValue)pool \(p.kernel)x\(p.kernel)/\(p.stride) pad \(p.pad)" + (p.ceil ? " ceil" : "")
        case .globalAvgPool: return "gap"
        case .adaptiveAvgPool(let h, let w): return "avgpool to \(h)x\(w)"
        case .batchNorm(let b): return "bn" + norm(b)
        case .scale(let x): return "scale \(x)"
        case .activation(let a): return a == .none ? "linear" : String(act(a).dropFirst())
        case .dropout(let p): return "dropout \(p)"
        case .linear(let l): return "fc \(l.units)" + (l.bias ? "" : " nobias") + act(l.activation)
        case .softmax: return "softmax"
        case .concat: return "concat"
        case .add: return "add"
        case .mul: return "mul"
        }
    }

    /// The "layers" metadata value: a JSON array of [name, op, [inputs], shape].
    public static func encode(_ layers: [LayerRecord]) -> String {
        "[" + layers.map { l in
            "[\(jsonQuoted(l.name)),\(jsonQuoted(l.op)),[\(l.inputs.map(jsonQuoted).joined(separator: ","))],\(jsonQuoted(l.shape))]"
        }.joined(separator: ",") + "]"
    }

    /// Decodes a "layers" metadata value; nil when it is not one.
    public static func decode(_ text: String) -> [LayerRecord]? {
        guard let array = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [Any] else { return nil }
        var result: [LayerRecord] = []
        for item in array {
            guard let fields = item as? [Any], fields.count == 4, let name = fields[0] as? String, let op = fields[1] as? String,
                  let inputs = fields[2] as? [String], let shape = fields[3] as? String else { return nil }
            result.append(LayerRecord(name: name, op: op, inputs: inputs, shape: shape))
        }
        return result
    }

    /// The layers as evaluation runs them: dropout layers removed, their consumers reading the
    /// dropout's input instead.
    public static func inferenceLayers(_ layers: [LayerRecord]) -> [LayerRecord] {
        var source: [String: String] = [:]
        func resolve(_ name: String) -> String {
            var n = name, seen = 0
            while let s = source[n], seen < layers.count { n = s; seen += 1 }
            return n
        }
        var result: [LayerRecord] = []
        for l in layers {
            if l.isDropout, let input = l.inputs.first { source[l.name] = input; continue }
            var copy = l
            copy.inputs = l.inputs.map(resolve)
            result.append(copy)
        }
        return result
    }
}

/// How two lists of layers, or of tensors, differ.
public struct SpecDifferences: Sendable {
    /// Layers of the checkpoint's spec that this spec lacks.
    public var onlyInCheckpoint: [LayerRecord] = []
    /// Layers of this spec that the checkpoint's spec lacks.
    public var onlyInSpec: [LayerRecord] = []
    /// Layers of both with another op, inputs or shape: (checkpoint's, this spec's).
    public var changed: [(checkpoint: LayerRecord, spec: LayerRecord)] = []
    /// Tensors of both with other shapes: name, checkpoint's shape, network's shape.
    public var reshaped: [(name: String, checkpoint: [Int], network: [Int])] = []
    /// Tensors the network needs that the checkpoint lacks.
    public var missingTensors: [String] = []
    /// Tensors of the checkpoint the network does not have.
    public var extraTensors: [String] = []

    /// Nothing differs.
    public var isEmpty: Bool {
        onlyInCheckpoint.isEmpty && onlyInSpec.isEmpty && changed.isEmpty && reshaped.isEmpty && missingTensors.isEmpty && extraTensors.isEmpty
    }

    /// The differences of dropout layers only (a rate changed, a dropout added or removed).
    public var dropoutOnly: SpecDifferences {
        var d = SpecDifferences()
        d.onlyInCheckpoint = onlyInCheckpoint.filter(\.isDropout)
        d.onlyInSpec = onlyInSpec.filter(\.isDropout)
        d.changed = changed.filter { $0.checkpoint.isDropout || $0.spec.isDropout }
        return d
    }

    /// Compares layers by name (the checkpoint's and this spec's).
    public static func layers(checkpoint: [LayerRecord], spec: [LayerRecord]) -> SpecDifferences {
        var d = SpecDifferences()
        let theirs = Dictionary(checkpoint.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let mine = Dictionary(spec.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        d.onlyInCheckpoint = checkpoint.filter { mine[$0.name] == nil }
        d.onlyInSpec = spec.filter { theirs[$0.name] == nil }
        d.changed = spec.compactMap { l in theirs[l.name].flatMap { $0 == l ? nil : ($0, l) } }
        return d
    }

    /// Adds the tensor differences between a checkpoint's model tensors and a network's.
    public mutating func addTensors(checkpoint: [String: StoredTensor], network: [(name: String, shape: [Int])]) {
        let names = Set(network.map(\.name))
        for (name, shape) in network {
            if let stored = checkpoint[name] {
                if stored.shape != shape { reshaped.append((name, stored.shape, shape)) }
            } else {
                missingTensors.append(name)
            }
        }
        extraTensors = checkpoint.keys.filter { !names.contains($0) }.sorted()
    }

    /// The differences in one line: at most `limit` items of each kind, then "and N more".
    public func describe(limit: Int = 6) -> String {
        func list<T>(_ items: [T], _ text: (T) -> String) -> String {
            let shown = items.prefix(limit).map(text).joined(separator: ", ")
            return items.count > limit ? shown + " and \(items.count - limit) more" : shown
        }
        func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
        var parts: [String] = []
        if !changed.isEmpty {
            parts.append("changed layer\(changed.count == 1 ? "" : "s") " + list(changed) { c in
                var what = "'\(c.checkpoint.summary)' in the checkpoint, '\(c.spec.summary)' here"
                if c.checkpoint.inputs != c.spec.inputs {
                    what += " (inputs \(c.checkpoint.inputs.joined(separator: "+")) there, \(c.spec.inputs.joined(separator: "+")) here)"
                }
                return "\(c.spec.name): \(what)"
            })
        }
        if !onlyInCheckpoint.isEmpty { parts.append("layers only in the checkpoint: " + list(onlyInCheckpoint) { "\($0.name) (\($0.summary))" }) }
        if !onlyInSpec.isEmpty { parts.append("layers only in this spec: " + list(onlyInSpec) { "\($0.name) (\($0.summary))" }) }
        if !reshaped.isEmpty { parts.append("tensors of other shapes: " + list(reshaped) { "\($0.name) \(shape($0.checkpoint)) in the checkpoint, \(shape($0.network)) here" }) }
        if !missingTensors.isEmpty { parts.append("tensors missing from the checkpoint: " + list(missingTensors) { $0 }) }
        if !extraTensors.isEmpty { parts.append("tensors this network does not have: " + list(extraTensors) { $0 }) }
        return parts.joined(separator: "; ")
    }
}

/// What a checkpoint is loaded for.
public enum CheckpointUse: Sendable {
    /// Continuing its run (`dsl train --resume`): the spec must be the same.
    case resume
    /// Evaluating or exporting its weights (`dsl eval`): the inference must be the same.
    case evaluate
}

extension Trainer {
    /// The parameters and buffers (names and shapes) of `graph` as the engine lays them out, or
    /// nil when it cannot be lowered.
    public static func tensorShapes(of graph: Graph) -> [(name: String, shape: [Int])]? {
        guard let lowered = try? lower(graph, maxBatch: 1, seed: 0), (try? lowered.engine.compile(training: false)) != nil else { return nil }
        return lowered.engine.parameters.map { ($0.name, $0.shape) } + lowered.engine.buffers.map { ($0.name, $0.shape) }
    }

    /// Checks that `checkpoint` (read from `file`) fits `graph` for `use`; returns notes to
    /// print (e.g. "trained with other dropout"), throws a one-line error naming `file` and what
    /// differs. The rules are in this file's header and README ("Training").
    public static func checkCheckpoint(_ checkpoint: TrainingCheckpoint, graph: Graph, file: String, use: CheckpointUse) throws -> [String] {
        guard let storedHash = checkpoint.metadata["spec_hash"] else {
            throw TrainingError("\(file): not a dsl checkpoint (no spec_hash in its metadata)")
        }
        let hash = Trainer.hash(graph)
        if storedHash == hash { return [] }
        let network = checkpoint.metadata["network"] ?? "unknown"
        let mine = LayerRecord.layers(of: graph)
        let stored = checkpoint.metadata["layers"].flatMap(LayerRecord.decode)
        var differences = stored.map { SpecDifferences.layers(checkpoint: $0, spec: mine) } ?? SpecDifferences()
        if let shapes = tensorShapes(of: graph) { differences.addTensors(checkpoint: checkpoint.parameters, network: shapes) }
        let header = "\(file): the checkpoint is of a different network (\(network), spec hash \(storedHash); this spec's is \(hash))"
        let details = differences.describe()
        switch use {
        case .resume:
            let what = details.isEmpty ? "the layers' options differ (the checkpoint predates layer records, so which cannot be told)" : details
            throw TrainingError("\(header): \(what). A run is resumed with the spec it was started with: any change, even a dropout rate, "
                + "makes it another run; to train this spec from these weights, start a new run with --init \(file)")
        case .evaluate:
            if let stored {
                if LayerRecord.inferenceLayers(stored) == LayerRecord.inferenceLayers(mine) {
                    return ["\(file) was trained with other dropout (\(differences.dropoutOnly.describe())); dropout does nothing at evaluation, so its weights apply"]
                }
                throw TrainingError("\(header): \(details.isEmpty ? "the layers differ" : details)")
            }
            if !differences.isEmpty { throw TrainingError("\(header): \(details)") }
            return ["\(file) was trained with a spec that differs from this one (spec hash \(storedHash), this spec's \(hash)) in options that do "
                + "not change any tensor's name or shape; it predates layer records, so what changed cannot be told: a dropout rate does not "
                + "matter at evaluation, a pooling or activation does"]
        }
    }
}
