import DSLEngine
import DSLIR
import DSLSyntax
import Foundation

/// `dsl run FILE`: pushes random input through the lowered network on the CPU engine.
enum RunCommand {
    static let command = Command(name: "run", summary: "run random input through the network (forward, optionally backward)", help: """
    Usage: dsl run FILE [--batch N] [--seed S] [--threads T] [--backward]

    Lowers the checked network to the CPU engine, feeds a batch of random N(0,1) images
    (deterministic under --seed), and prints the output shape and a checksum of the output
    (sum and sum of magnitudes); for a network ending in softmax also of the logits before it,
    since the softmax's sum is always 1 per image.
    With --backward it also computes the softmax cross-entropy loss against random labels
    (one class per image, from the output's channels), runs the backward pass and prints the
    loss and a checksum of all parameter gradients. The engine's memory is planned first: a
    batch that does not fit in the memory this machine can give is refused, with the largest
    batch that does.

    Options:
      --batch N      images per batch (default 2)
      --seed S       seed for the weights, the input and dropout (default 1)
      --threads T    worker threads (default: all cores)
      --backward     also run the backward pass (the network must end in softmax)

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--batch", "--seed", "--threads"], flagOptions: ["--backward"])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        let batch = try a.integer("--batch", default: 2, in: 1...4096)
        let seed = UInt64(try a.integer("--seed", default: 1, in: 0...Int.max))
        engineThreadCount = try a.integer("--threads", default: ProcessInfoCores.count, in: 1...256)
        guard let (checked, g, _) = try loadChecked(a.positional[0]) else { return ExitCode.failure }
        let backward = a.has("--backward")
        if backward, !endsInSoftmax(g) {
            reportEngineError("--backward needs a network that ends in 'softmax' (the loss is softmax cross-entropy); "
                              + "this one ends in '\(g.nodes[g.output].name)'", node: g.output, checked: checked, graph: g)
            return ExitCode.failure
        }
        guard let lowered = try lowerAndCompile(checked, graph: g, batch: batch, seed: seed, training: backward) else {
            return ExitCode.failure
        }
        let engine = lowered.engine
        var rng = EngineRandom(seed: seed &+ 0x9E37_79B9)
        let inputCount = batch * g.inputShape.elements
        var input = [Float](repeating: 0, count: inputCount)
        for i in 0..<inputCount { input[i] = Float(rng.normal()) }
        let start = Date()
        let outPtr = input.withUnsafeBufferPointer { engine.forward($0.baseAddress!, batch: batch, training: backward) }
        let outShape = engine.outputShape
        let outCount = batch * outShape.height * outShape.width * outShape.channels
        var sum = 0.0, abs = 0.0
        for i in 0..<outCount { sum += Double(outPtr[i]); abs += Double(Swift.abs(outPtr[i])) }
        out("\(g.name): output \(batch)x\(outShape.height)x\(outShape.width)x\(outShape.channels) (batch x H x W x C)\n")
        out(String(format: "output checksum: sum %.6f, sum|x| %.6f\n", sum, abs))
        // A softmax's checksum is 1 per image (per pixel): the logits before it tell networks apart.
        if let logits = engine.logits {
            var lsum = 0.0, labs = 0.0
            for i in 0..<outCount { lsum += Double(logits[i]); labs += Double(Swift.abs(logits[i])) }
            out(String(format: "logits checksum (before softmax): sum %.6f, sum|x| %.6f\n", lsum, labs))
        }
        if backward {
            var labels = [Int32](repeating: 0, count: batch)
            let classes = engine.classCount
            var lrng = EngineRandom(seed: seed &+ 7)
            for i in 0..<batch { labels[i] = Int32(lrng.next() % UInt64(classes)) }
            let (loss, _) = labels.withUnsafeBufferPointer { engine.backward(labels: $0.baseAddress!, batch: batch) }
            var gsum = 0.0
            let grads = engine.parameterGrads
            for i in 0..<engine.parameterCount { gsum += Double(Swift.abs(grads[i])) }
            out(String(format: "loss %.6f, gradient checksum sum|g| %.6f over %d parameters\n", loss, gsum, engine.parameterCount))
        }
        out(String(format: "time %.3f s, engine memory %@\n", Date().timeIntervalSince(start), bytes(engine.plannedBytes)))
        return ExitCode.ok
    }
}

// MARK: - Engine errors, located (shared by run, bench, train and eval)

/// Whether the network's last layer is a softmax (the loss node `backward` and training need).
func endsInSoftmax(_ g: Graph) -> Bool {
    if case .softmax = g.nodes[g.output].op { return true }
    return false
}

/// The diagnostic of an engine error about IR node `node`: at the node's source text, with a
/// note for each module instance (block call, inception, pyramid unit) it was expanded from.
func engineDiagnostic(_ message: String, node: Int, graph g: Graph) -> Diagnostic {
    let n = g.nodes[node]
    let notes = g.modulePath(of: n).reversed().map { m in
        Diagnostic.Note("in \(g.modules[m].kind) '\(g.modules[m].name)' here", at: g.modules[m].location)
    }
    return .error(message, at: n.location, notes: notes)
}

/// Prints an engine error about IR node `node` the way `dsl check` prints spec errors:
/// `path:line:col: error: message`, the source line and a caret, notes, then `1 error in path`.
func reportEngineError(_ message: String, node: Int, checked: CheckedNetwork, graph g: Graph) {
    err(DiagnosticRenderer(file: checked.source).render(engineDiagnostic(message, node: node, graph: g)))
    err("1 error in \(checked.source.path)\n")
}

/// Prints a `LoweringError` (from `lower`, or thrown by `Trainer` while it lowers) located at
/// its layer; see `reportEngineError`.
func reportLoweringError(_ e: LoweringError, checked: CheckedNetwork, graph g: Graph) {
    reportEngineError(e.message, node: e.node, checked: checked, graph: g)
}

/// The command-line failure for an `EngineMemoryError`: the planned and available figures and
/// the largest batch that fits, as a `--batch` suggestion.
func memoryFailure(_ e: EngineMemoryError, path: String) -> CommandFailure {
    var message = "\(path): \(e)"
    if let largest = e.largestBatch { message += " (--batch \(largest))" }
    return CommandFailure(message: message)
}

/// Lowers the network for batches of up to `batch` and compiles it (`training`: with
/// gradients). A layer the engine cannot lower is reported at its source text and nil is
/// returned (exit 1); memory that does not fit throws a `CommandFailure` (see `memoryFailure`).
func lowerAndCompile(_ checked: CheckedNetwork, graph g: Graph, batch: Int, seed: UInt64,
                     training: Bool) throws -> LoweredNetwork? {
    let lowered: LoweredNetwork
    do {
        lowered = try lower(g, maxBatch: batch, seed: seed)
    } catch let e as LoweringError {
        reportLoweringError(e, checked: checked, graph: g)
        return nil
    }
    do {
        try lowered.engine.compile(training: training)
    } catch let e as EngineMemoryError {
        throw memoryFailure(e, path: checked.source.path)
    }
    return lowered
}
