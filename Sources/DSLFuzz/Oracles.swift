import DSLEngine
import DSLIR
import DSLPasses
import DSLSyntax

/// Something an oracle found wrong with one input.
public struct Finding: Sendable, Equatable {
    /// Which property failed.
    public enum Kind: String, Sendable, CaseIterable {
        /// The process died on a signal (trap, segfault, abort, stack overflow) or ran out of
        /// its memory limit: reported by the supervisor, which knows the input being run.
        case trap
        /// The input took longer than the supervisor's limit (a hang or a super-linear cost).
        case hang
        /// A diagnostic (or note) points outside the file, or a failed check has no error.
        case unlocated
        /// Formatting lost or changed something: the printed spec does not parse, says something
        /// else, loses a comment, is not idempotent, or elaborates to another network.
        case fmt
        /// A rewrite pass produced a spec its verifier rejected.
        case pass
        /// `check` accepted a network the engine refused.
        case engine
        /// One and two threads gave different bits.
        case threads
    }
    /// Which property failed.
    public var kind: Kind
    /// What was seen.
    public var message: String
    /// Creates a finding.
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
}

/// What the oracles exercised, summed over a campaign.
public struct OracleCounts: Sendable {
    /// Inputs run.
    public var inputs = 0
    /// Inputs that parsed without errors.
    public var parsed = 0
    /// Inputs `check` accepted.
    public var checked = 0
    /// Diagnostics whose location was verified.
    public var diagnostics = 0
    /// Format round trips verified.
    public var formatted = 0
    /// Pass applications verified (or warned).
    public var passes = 0
    /// Pass applications that skipped a place with a warning.
    public var passWarnings = 0
    /// Networks run forward on the engine (each with 1 and 2 threads).
    public var engineForward = 0
    /// Networks also run backward.
    public var engineBackward = 0
    /// Checked networks too large for the fuzzer's engine budget (not run).
    public var engineSkipped = 0

    /// Creates zero counts.
    public init() {}

    /// Adds another campaign's counts.
    public mutating func add(_ o: OracleCounts) {
        inputs += o.inputs; parsed += o.parsed; checked += o.checked; diagnostics += o.diagnostics
        formatted += o.formatted; passes += o.passes; passWarnings += o.passWarnings
        engineForward += o.engineForward; engineBackward += o.engineBackward; engineSkipped += o.engineSkipped
    }
}

/// The oracles: properties every input must have, checked by calling the front end, the
/// printer, the passes and the engine as functions.
///
/// - every diagnostic is located inside the file, and `check` never fails without an error;
/// - `fmt`: a file that parses prints to text that parses to the same statements with the same
///   comments, prints identically again, and elaborates to the same network (or fails the same way);
/// - every pass either applies and verifies, or skips a place with a located warning;
/// - `check` accepts ⇒ the engine lowers, compiles and runs it (forward, and backward when it
///   ends in softmax), on a budget of small shapes;
/// - one and two engine threads give bit-identical outputs, losses and gradients.
public struct Oracles {
    /// Run the engine oracle (off for front-end-only campaigns).
    public var engine = true
    /// Run the pass oracle.
    public var passes = true
    /// Largest network the engine oracle runs: activation elements per image, summed over layers.
    public var maxEngineElements = 200_000
    /// Largest network the engine oracle runs: multiply-accumulates per image.
    public var maxEngineMACs = 4_000_000
    /// Largest network the pass oracle runs (nodes and module instances); passes elaborate
    /// their input several times.
    public var maxPassNodes = 3_000
    /// The printer under test (`dsl fmt`); tests substitute a faulty one to see the oracle fail.
    public var printer: (SpecFile) -> String = SpecPrinter.print
    /// Extra pass configurations run besides the standard ones (tests add faulty passes).
    public var extraPasses: [(String, [RewritePass])] = []

    /// Creates the oracles with default budgets.
    public init() {}

    /// Runs every oracle on one input; `random` decides the engine's batch and inputs.
    public func run(_ bytes: [UInt8], random: inout FuzzRandom, counts: inout OracleCounts) -> [Finding] {
        var findings: [Finding] = []
        counts.inputs += 1
        let source = SourceFile(path: "fuzz.dsl", bytes: bytes)
        let checked = Frontend.check(source)
        findings += located(checked, source, &counts)
        let (spec, parseDiagnostics) = Parser.parse(source)
        if !parseDiagnostics.hasErrors {
            counts.parsed += 1
            findings += formatRoundTrip(spec, source, checked, &counts)
        }
        guard let graph = checked.graph, let cost = checked.cost, !checked.diagnostics.hasErrors else { return findings }
        counts.checked += 1
        if passes && graph.nodes.count + graph.modules.count <= maxPassNodes { findings += rewrites(source, cost: cost, random: &random, &counts) }
        if engine {
            if cost.activationElements <= maxEngineElements && cost.macs <= maxEngineMACs && graph.nodes.count + graph.modules.count <= 2_000 {
                findings += runEngine(graph, random: &random, &counts)
            } else {
                counts.engineSkipped += 1
            }
        }
        return findings
    }

    // MARK: Located diagnostics

    /// Findings for diagnostics located outside `source` (public for the oracle's own tests).
    public func located(_ checked: CheckedNetwork, _ source: SourceFile, _ counts: inout OracleCounts) -> [Finding] {
        var findings: [Finding] = []
        func check(_ l: SourceLocation, _ what: String) {
            let lines = source.lineStarts.count
            guard l.line >= 1, l.line <= lines, l.offset >= 0, l.offset <= source.bytes.count, l.length >= 0,
                  l.offset + l.length <= source.bytes.count + 1, l.column >= 1 else {
                findings.append(Finding(.unlocated, "\(what) at \(l.line):\(l.column) (offset \(l.offset), length \(l.length)) is outside the file (\(lines) lines, \(source.bytes.count) bytes)"))
                return
            }
            // The line must be the one the offset is on (at the very end of the file the offset
            // may equal the file's length).
            if source.line(of: l.offset) != l.line {
                findings.append(Finding(.unlocated, "\(what): line \(l.line) but offset \(l.offset) is on line \(source.line(of: l.offset))"))
            }
        }
        for d in checked.diagnostics.items {
            counts.diagnostics += 1
            check(d.location, "\(d.severity.rawValue) '\(d.message.prefix(80))'")
            for n in d.notes { check(n.location, "note '\(n.message.prefix(80))'") }
        }
        if findings.isEmpty { _ = DiagnosticRenderer(file: source).render(checked.diagnostics.items) }
        if checked.graph == nil && !checked.diagnostics.hasErrors {
            findings.append(Finding(.unlocated, "check produced no network and no error"))
        }
        return findings
    }

    // MARK: fmt

    static func comments(_ source: SourceFile) -> [String] {
        var lexer = Lexer(file: source)
        _ = lexer.tokenize()
        return lexer.comments.map(\.text)
    }

    func formatRoundTrip(_ spec: SpecFile, _ source: SourceFile, _ checked: CheckedNetwork, _ counts: inout OracleCounts) -> [Finding] {
        let text = printer(spec)
        let printed = SourceFile(path: "fuzz.dsl", text: text)
        let (again, diagnostics) = Parser.parse(printed)
        if diagnostics.hasErrors {
            let first = diagnostics.items.first { $0.severity == .error }!
            return [Finding(.fmt, "the formatted text does not parse: \(first.location): \(first.message)")]
        }
        if again.statements != spec.statements { return [Finding(.fmt, "the formatted text parses to different statements")] }
        let before = Oracles.comments(source), after = Oracles.comments(printed)
        if before != after { return [Finding(.fmt, "formatting changed the comments: \(before.count) before, \(after.count) after")] }
        if printer(again) != text { return [Finding(.fmt, "formatting is not idempotent")] }
        // The bytes `dsl fmt` writes: the file's own encoding and line endings.
        guard let written = source.encode(text) else {
            return [Finding(.fmt, "the formatted text cannot be written in the file's encoding (\(source.encoding.rawValue))")]
        }
        let reread = SourceFile(path: "fuzz.dsl", bytes: written)
        // (Text without a line break has no line ending to keep: a file of only "\r\n" formats to "".)
        if reread.encoding != source.encoding || (written.contains(0x0A) && reread.lineEnding != source.lineEnding) {
            return [Finding(.fmt, "the written file reads back as \(reread.encoding.rawValue) \(reread.lineEnding.rawValue), the original was \(source.encoding.rawValue) \(source.lineEnding.rawValue)")]
        }
        let (fromDisk, diskDiagnostics) = Parser.parse(reread)
        if diskDiagnostics.hasErrors || fromDisk.statements != spec.statements || Oracles.comments(reread) != before {
            return [Finding(.fmt, "the written bytes do not read back to the same statements and comments")]
        }
        let recheck = Frontend.check(printed)
        if recheck.diagnostics.hasErrors != checked.diagnostics.hasErrors {
            return [Finding(.fmt, "the formatted spec \(recheck.diagnostics.hasErrors ? "has" : "has no") errors, the original \(checked.diagnostics.hasErrors ? "has" : "has no") errors")]
        }
        if let g1 = checked.graph, let g2 = recheck.graph, let difference = Oracles.difference(g1, g2) {
            return [Finding(.fmt, "the formatted spec elaborates to another network: \(difference)")]
        }
        counts.formatted += 1
        return []
    }

    /// The first difference between two graphs (names, ops, inputs, shapes, modules), or nil.
    public static func difference(_ a: Graph, _ b: Graph) -> String? {
        if a.name != b.name { return "network name \(a.name) vs \(b.name)" }
        if a.nodes.count != b.nodes.count { return "\(a.nodes.count) vs \(b.nodes.count) nodes" }
        for (x, y) in zip(a.nodes, b.nodes) where x.name != y.name || x.op != y.op || x.inputs != y.inputs || x.shape != y.shape {
            return "node \(x.id): \(x.name) \(x.op) \(x.shape) vs \(y.name) \(y.op) \(y.shape)"
        }
        if a.modules.map(\.name) != b.modules.map(\.name) { return "module names differ" }
        return nil
    }

    // MARK: Passes

    func rewrites(_ source: SourceFile, cost: NetworkCost, random: inout FuzzRandom, _ counts: inout OracleCounts) -> [Finding] {
        var findings: [Finding] = []
        var configurations: [(String, [RewritePass])] = [
            ("strided", [StridedPass()]), ("all-conv", [AllConvPass()]), ("convpool", [ConvPoolPass()]),
            ("gap-head", [GapHeadPass()]),
            ("reduce --ratio 0.5", [ReducePass(policy: .ratio(ReductionRatios(r3: 0.5)))]),
            ("reduce --ratio 0.25,0.125,0.5", [ReducePass(policy: .ratio(ReductionRatios(r3: 0.25, r5: 0.125, rp: 0.5)))]),
        ]
        let budget = max(1, Int(Double(cost.macs) * random.pick([0.3, 0.6, 0.9, 1.0, 2.0])))
        configurations.append(("reduce --budget \(budget)", [ReducePass(policy: .budget(budget, nil))]))
        configurations.append(("convpool, all-conv, strided", [ConvPoolPass(), AllConvPass(), StridedPass()]))
        configurations.append(("reduce, gap-head", [ReducePass(policy: .ratio(ReductionRatios(r3: 0.5))), GapHeadPass()]))
        configurations += extraPasses
        for (name, passes) in configurations {
            let outcome = Rewriter.run(source, passes: passes)
            counts.passes += 1
            let all = outcome.steps.flatMap(\.diagnostics)
            counts.passWarnings += all.filter { $0.severity == .warning }.count
            for d in all where d.severity == .error {
                // A budget that cannot be met is the user's error, reported as such; anything
                // else (a verification failure above all) is the pass's.
                if name.hasPrefix("reduce --budget") && d.message.hasPrefix("reduce:") && !d.message.contains("verification") { continue }
                findings.append(Finding(.pass, "\(name): \(d.location): \(d.message)"))
            }
            if outcome.failed && findings.isEmpty && !name.hasPrefix("reduce --budget") {
                findings.append(Finding(.pass, "\(name): the rewrite failed without an error"))
            }
            // The rewritten spec must itself be a valid network.
            if !outcome.failed {
                let again = Frontend.check(SourceFile(path: "rewritten.dsl", text: outcome.text))
                if again.diagnostics.hasErrors {
                    let e = again.diagnostics.items.first { $0.severity == .error }!
                    findings.append(Finding(.pass, "\(name): the rewritten spec does not check: \(e.location): \(e.message)"))
                }
            }
        }
        return findings
    }

    // MARK: Engine

    /// One run of a compiled graph: output, loss and gradient bits.
    struct EngineRun: Equatable {
        var output: [UInt32]
        var loss: UInt32
        var correct: Int
        var gradients: [UInt32]
    }

    func runEngine(_ g: Graph, random: inout FuzzRandom, _ counts: inout OracleCounts) -> [Finding] {
        let batch = random.pick([1, 2, 3])
        let seed = random.next() & 0xFFFF
        // Half the inputs run Winograd wherever it applies (a fuzz network at batch 1-3 rarely
        // has the tiles the engine's own rule asks for), half with that rule; the setting is
        // restored when the oracle returns (tests run campaigns in their own process).
        let savedTiles = EngineTuning.winogradMinTiles
        EngineTuning.winogradMinTiles = random.pick([0, EngineTuning.defaultWinogradMinTiles])
        defer { EngineTuning.winogradMinTiles = savedTiles }
        let endsInSoftmax: Bool
        if case .softmax = g.nodes[g.output].op { endsInSoftmax = true } else { endsInSoftmax = false }
        let lowered: LoweredNetwork
        do {
            lowered = try lower(g, maxBatch: batch, seed: seed)
        } catch {
            return [Finding(.engine, "check accepted the network but the engine refused it: \(error)")]
        }
        let engine = lowered.engine
        do {
            try engine.compile(training: true)
        } catch {
            return [Finding(.engine, "check accepted the network but the engine could not compile it: \(error)")]
        }
        var input = [Float](repeating: 0, count: batch * g.inputShape.elements)
        for i in input.indices { input[i] = Float(Double(random.next() >> 11) / Double(1 << 53) * 4 - 2) }
        let outputShape = engine.outputShape
        let outputCount = batch * outputShape.height * outputShape.width * outputShape.channels
        let classes = max(1, outputShape.channels)
        let labels = (0..<batch).map { _ in Int32(random.int(0..<classes)) }
        /// A training step (forward, and backward when the network ends in softmax), then an
        /// inference pass with the updated batch-norm statistics.
        let initialBuffers = engine.buffers.map { b in (0..<b.count).map { b.value[$0] } }
        func once(threads: Int) -> EngineRun {
            for (b, values) in zip(engine.buffers, initialBuffers) { for i in 0..<b.count { b.value[i] = values[i] } }
            let saved = engineThreadCount
            engineThreadCount = threads
            defer { engineThreadCount = saved }
            engine.reseedDropout(seed ^ 0x5EED)
            let out = input.withUnsafeBufferPointer { engine.forward($0.baseAddress!, batch: batch, training: true) }
            var output = (0..<outputCount).map { out[$0].bitPattern }
            var run = EngineRun(output: [], loss: 0, correct: 0, gradients: [])
            if endsInSoftmax {
                let (loss, correct) = labels.withUnsafeBufferPointer { engine.backward(labels: $0.baseAddress!, batch: batch) }
                run.loss = loss.bitPattern; run.correct = correct
                run.gradients = (0..<engine.parameterCount).map { engine.parameterGrads[$0].bitPattern }
            }
            let inference = input.withUnsafeBufferPointer { engine.forward($0.baseAddress!, batch: batch, training: false) }
            output += (0..<outputCount).map { inference[$0].bitPattern }
            run.output = output
            return run
        }
        let one = once(threads: 1)
        let two = once(threads: 2)
        counts.engineForward += 1
        if endsInSoftmax { counts.engineBackward += 1 }
        if one != two {
            let what = one.output != two.output ? "outputs" : one.loss != two.loss ? "losses" : "gradients"
            return [Finding(.threads, "1 and 2 threads give different \(what) (batch \(batch))")]
        }
        // The same network compiled for inference only (no gradients; its convolutions keep
        // their packed weights between calls and fold the batch norms after them), with the same
        // weights and batch-norm statistics:
        // a first call on 1 thread and a second (cached) call on 2 give the same bits, and,
        // where it chose the training graph's algorithms (without a weight gradient to
        // compute it may pick Winograd where training could not), the training graph's bits.
        let inferenceOnly: EngineGraph
        do {
            inferenceOnly = try lower(g, maxBatch: batch, seed: seed).engine
            try inferenceOnly.compile(training: false)
        } catch {
            return [Finding(.engine, "the engine could not compile the network for inference only: \(error)")]
        }
        inferenceOnly.parameterValues.update(from: engine.parameterValues, count: engine.parameterCount)
        for (dst, src) in zip(inferenceOnly.buffers, engine.buffers) { dst.value.update(from: src.value, count: src.count) }
        func infer(threads: Int) -> [UInt32] {
            let saved = engineThreadCount
            engineThreadCount = threads
            defer { engineThreadCount = saved }
            let out = input.withUnsafeBufferPointer { inferenceOnly.forward($0.baseAddress!, batch: batch, training: false) }
            return (0..<outputCount).map { out[$0].bitPattern }
        }
        let first = infer(threads: 1), second = infer(threads: 2)
        if first != second {
            return [Finding(.threads, "compiled for inference only, a first call on 1 thread and a second on 2 "
                            + "give different outputs (batch \(batch))")]
        }
        // Forward algorithms ("direct (dW: gemm)" names backward passes after the first word).
        let forwardAlgorithm = { (e: EngineGraph, j: Int) in e.algorithm(of: j)?.split(separator: " ").first }
        let sameAlgorithms = (1..<engine.nodeCount).allSatisfy { forwardAlgorithm(engine, $0) == forwardAlgorithm(inferenceOnly, $0) }
        let expected = two.output.suffix(outputCount).map { Float(bitPattern: $0) }
        // Batch norms folded into convolutions round differently: equal within 1e-3 then.
        let folded = !inferenceOnly.foldedBatchNorms.isEmpty
        let same = zip(first, expected).allSatisfy { a, b in
            let a = Float(bitPattern: a)
            return a == b || (a.isNaN && b.isNaN) || (folded && abs(a - b) <= 1e-3 * max(1, abs(b)))
        }
        if sameAlgorithms && !same {
            return [Finding(.engine, "compiled for inference only, the network gives other outputs than the "
                            + "training graph's inference pass (batch \(batch))")]
        }
        return []
    }
}
