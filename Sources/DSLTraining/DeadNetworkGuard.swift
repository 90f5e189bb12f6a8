import DSLEngine
import DSLIR
import Foundation

/// The dead-network guard of `Trainer.run`: a network whose output layer stopped receiving
/// gradient cannot learn again, and without the guard it trains on at chance with no message.
///
/// A step looks dead when every gradient of the output layer's weights is exactly zero after
/// its backward pass, or when its logits are the same for every image of a batch of 8 or more
/// (for every class, their standard deviation across the images is below `spreadLimit`, 0.02: the output
/// no longer depends on the input, the collapse of a network most of whose last units died;
/// measured on All-CNN-C, such a run stays below 0.006 and healthy runs above 0.14). The output layer is the last
///   convolution or fully connected layer before the softmax (through global pooling, pooling,
///   dropout and activations). Its weight gradient is the product of its input and the gradient
///   at its output, so it is zero for a whole batch only when its ReLU outputs zero for every
///   image (its units died: then its bias gradient is zero too and nothing before it learns) or
///   when its input is zero for every image (the layer feeding it died).
///
/// `steps` (50) consecutive dead steps whose mean batch loss is within `tolerance` (2 %) of
/// ln(classes), the loss of logits that carry no information about the image, stop the run (a
/// head whose input died still learns its bias, so single batches stray from ln(classes) by a
/// few per cent; their mean does not). Momentum carries at most 0.9⁵⁰ ≈ 0.5 % of
/// an earlier update by then, and weight decay only shrinks weights, so a network in this state
/// does not come back. The guard only reads the gradients: a run it does not stop computes
/// exactly what it computed without it. Its count starts at zero in every session (a resumed
/// run counts from its first step).
struct DeadNetworkGuard {
    /// Consecutive dead steps that stop training.
    static let steps = 50
    /// Below this standard deviation across a batch's images of every logit, the network's
    /// output does not depend on its input (a step counts as dead).
    static let spreadLimit = 0.02
    /// The smallest batch whose logits' spread is looked at (a batch of one image has none).
    static let spreadBatch = 8
    /// How close to ln(classes) the mean batch loss of the dead steps must be, relative to ln(classes).
    static let tolerance = 0.02

    /// The output layer (IR layer name).
    let head: String
    /// Whether the output layer applies a ReLU (its units can die).
    let headHasReLU: Bool
    /// The layer whose output feeds the output layer (through pooling, dropout, activations),
    /// nil when it is the network's input.
    let feeder: String?
    /// The output layer's weight gradient.
    let weightGradient: UnsafeBufferPointer<Float>
    /// Its other gradients (bias, batch norm).
    let otherGradients: [UnsafeBufferPointer<Float>]
    /// ln(classes).
    let chance: Double
    /// Logits per image (the classes, times the pixels of a per-pixel classifier).
    let logitsPerImage: Int
    /// Rows of the weight gradient (its elements over the output layer's outputs).
    let rows: Int
    /// Channels of the output layer's input (row r of the weight gradient belongs to channel r % inputChannels).
    let inputChannels: Int
    /// In the last dead step: the output layer's units and its input's channels that got no gradient, of how many.
    private(set) var lastDead = (outputs: 0, ofOutputs: 0, inputs: 0, ofInputs: 0)
    /// Dead steps in a row so far.
    private(set) var run = 0
    /// The batch losses of the last `steps` dead steps (a ring buffer indexed by `run`).
    private var losses = [Double](repeating: 0, count: DeadNetworkGuard.steps)
    /// Whether the last dead step had every gradient of the output layer zero (not only its weights').
    private(set) var headSilent = false
    /// Whether the last dead step had every gradient of the output layer's weights zero (else
    /// its logits were the same for every image).
    private(set) var weightsSilent = false

    /// The guard of a compiled engine lowered from `graph`, or nil when no convolution or fully
    /// connected layer leads to the softmax through single-input layers (then it is off).
    init?(graph: Graph, engine: EngineGraph, classes: Int) {
        guard classes >= 2, let headNode = DeadNetworkGuard.parametric(before: graph.output, in: graph) else { return nil }
        let node = graph.nodes[headNode]
        guard let weight = engine.parameters.first(where: { $0.name == node.name + ".weight" }), weight.shape.count > 1 else { return nil }
        head = node.name
        var relu: Bool
        switch node.op {
        case .conv(let c): relu = c.activation == .relu
        case .linear(let l): relu = l.activation == .relu
        default: relu = false
        }
        // A standalone ReLU between the output layer and the softmax counts as the layer's.
        var k = graph.output
        while k != headNode, let input = graph.nodes[k].inputs.first {
            if case .activation(.relu) = graph.nodes[k].op { relu = true }
            k = input
        }
        headHasReLU = relu
        feeder = node.inputs.first.flatMap { DeadNetworkGuard.source(of: $0, in: graph) }
        weightGradient = UnsafeBufferPointer(start: weight.grad, count: weight.count)
        otherGradients = engine.parameters.filter { $0.name.hasPrefix(node.name + ".") && $0.name != weight.name }
            .map { UnsafeBufferPointer(start: $0.grad, count: $0.count) }
        chance = log(Double(classes))
        logitsPerImage = engine.outputShape.count
        let outputs = weight.shape.last ?? 1
        rows = weight.count / max(1, outputs)
        let channels = node.inputs.first.map { graph.nodes[$0].shape.channels } ?? rows
        inputChannels = channels > 0 && rows % channels == 0 ? channels : rows
    }

    /// The last conv or linear node at or before `node`, walking back through single-input
    /// layers without parameters of their own (softmax, pooling, dropout, activations, batch
    /// norm applied by a conv is part of the conv's node).
    static func parametric(before node: Int, in graph: Graph) -> Int? {
        var k = node
        while true {
            let n = graph.nodes[k]
            switch n.op {
            case .conv, .linear: return k
            case .softmax, .globalAvgPool, .pool, .dropout, .activation:
                guard n.inputs.count == 1 else { return nil }
                k = n.inputs[0]
            default: return nil
            }
        }
    }

    /// The layer that produces what reaches `node` through pooling, dropout and activations:
    /// the first other kind of layer walking back (a conv, fc, batch norm, concat, add), nil for the input.
    static func source(of node: Int, in graph: Graph) -> String? {
        var k = node
        while true {
            let n = graph.nodes[k]
            switch n.op {
            case .input: return nil
            case .globalAvgPool, .pool, .dropout, .activation:
                guard n.inputs.count == 1 else { return n.name }
                k = n.inputs[0]
            default: return n.name
            }
        }
    }

    /// The largest standard deviation, over the logits of an image (`perImage`: the classes,
    /// times the pixels of a per-pixel classifier), of a logit across the batch's images.
    static func spread(_ logits: UnsafePointer<Float>, batch: Int, perImage: Int) -> Double {
        var largest = 0.0
        for c in 0..<perImage {
            var sum = 0.0, squares = 0.0
            for n in 0..<batch { let v = Double(logits[n * perImage + c]); sum += v; squares += v * v }
            let mean = sum / Double(batch)
            largest = max(largest, (max(0, squares / Double(batch) - mean * mean)).squareRoot())
        }
        return largest
    }

    /// Starts counting again (a new session).
    mutating func reset() { run = 0; headSilent = false; weightsSilent = false }

    /// Records a step (its batch loss, with the gradients of its backward pass in place);
    /// returns true when the last `steps` steps were dead with a mean loss at ln(classes).
    mutating func observe(loss: Float, logits: UnsafePointer<Float>, batch: Int) -> Bool {
        let silent = weightGradient.allSatisfy { $0 == 0 }
        guard silent || batch >= DeadNetworkGuard.spreadBatch && DeadNetworkGuard.spread(logits, batch: batch, perImage: logitsPerImage) < DeadNetworkGuard.spreadLimit else {
            run = 0; return false
        }
        losses[run % DeadNetworkGuard.steps] = Double(loss)
        run += 1
        // Which units gave no gradient in this batch: the output layer's (all-zero columns of
        // its weight gradient) and its input's channels (all-zero rows).
        var deadOutputs = 0, deadInputs = 0
        let outputs = weightGradient.count / max(1, rows)
        for o in 0..<outputs where (0..<rows).allSatisfy({ weightGradient[$0 * outputs + o] == 0 }) { deadOutputs += 1 }
        for c in 0..<inputChannels where stride(from: c, to: rows, by: inputChannels).allSatisfy({ r in (0..<outputs).allSatisfy { weightGradient[r * outputs + $0] == 0 } }) {
            deadInputs += 1
        }
        lastDead = (deadOutputs, outputs, deadInputs, inputChannels)
        headSilent = silent && otherGradients.allSatisfy { $0.allSatisfy { $0 == 0 } }
        weightsSilent = silent
        guard run >= DeadNetworkGuard.steps else { return false }
        let mean = losses.reduce(0, +) / Double(DeadNetworkGuard.steps)
        return abs(mean - chance) <= DeadNetworkGuard.tolerance * chance
    }

    /// The layer that died: the output layer when its own ReLU outputs zero (every gradient of
    /// it zero) or when more of its units than of its input's channels gave no gradient, else
    /// the layer feeding it.
    var deadLayer: (name: String, own: Bool) {
        if headSilent && headHasReLU || feeder == nil { return (head, true) }
        let d = lastDead
        if !headSilent && d.outputs * max(1, d.ofInputs) > d.inputs * max(1, d.ofOutputs) { return (head, true) }
        return (feeder!, false)
    }
}

/// Training stopped by the dead-network guard (`Trainer.run`): the output layer's weight
/// gradients were zero for `DeadNetworkGuard.steps` consecutive steps with a mean training loss
/// at ln(classes). The message names the dead layer and what to change; the command adds
/// where the last checkpoint is.
public struct DeadNetworkError: Error, CustomStringConvertible {
    /// The layer whose units died (the output layer, or the layer feeding it).
    public let layer: String
    /// The output layer (the last conv or fc before the softmax).
    public let outputLayer: String
    /// Epoch and step (1-based) of the step that stopped the run.
    public let epoch: Int
    public let step: Int
    /// The consecutive dead steps that stopped it.
    public let deadSteps: Int
    /// Classes of the network (the loss sat at ln of this).
    public let classes: Int
    /// The run's base learning rate and schedule text.
    public let learningRate: Float
    public let schedule: String
    /// The position of the last checkpoint this run wrote or was resumed from, nil when none
    /// was (the network died in its first epoch).
    public let lastCheckpoint: TrainingPosition?
    /// Whether no gradient at all reached the output layer's weights in the last step (else
    /// its logits were the same for every image, the network collapsed).
    public let silent: Bool
    /// In the last step: the output layer's units that output zero for every image, of how many.
    public let deadOutputs: (dead: Int, of: Int)
    /// The layer feeding the output layer (nil: the input) and its channels that were zero for every image, of how many.
    public let feeder: String?
    public let deadInputs: (dead: Int, of: Int)

    /// A lower learning rate to suggest: a fifth of the run's, to 2 significant digits.
    public var suggestedLearningRate: String { String(format: "%.2g", Double(learningRate) / 5) }

    /// The schedule with a one-epoch warm-up added (nil when it has a warm-up already).
    public var suggestedSchedule: String? {
        schedule.lowercased().contains("warmup") ? nil : schedule + "+warmup:1"
    }

    /// The message (without the checkpoint's path).
    public var description: String {
        let chance = String(format: "%.4f", log(Double(classes)))
        var s = "the network died at epoch \(epoch), step \(step): for \(deadSteps) consecutive steps the training loss stayed at "
            + "ln \(classes) = \(chance) (chance) and "
        if !silent {
            s += "the output layer \(outputLayer) gave every image the same outputs (logits differing by less than "
                + "\(DeadNetworkGuard.spreadLimit)): in the last batch \(deadOutputs.dead) of its \(deadOutputs.of) units"
            if let feeder { s += " and \(deadInputs.dead) of the \(deadInputs.of) channels of \(feeder) feeding it" }
            s += " output zero for every image (their ReLUs died)"
        } else if layer == outputLayer {
            s += "the output layer \(outputLayer) received no gradient: every unit of \(layer) outputs zero after its ReLU for every image (its ReLUs died), so no layer learns"
        } else {
            s += "the output layer \(outputLayer) received no gradient: its input is zero for every image (every unit of \(layer) died)"
        }
        s += ". Lower the learning rate (--lr \(suggestedLearningRate); this run has \(String(format: "%g", Double(learningRate))))"
        if let schedule = suggestedSchedule { s += ", or warm it up (--schedule \(schedule))" }
        return s
    }
}
