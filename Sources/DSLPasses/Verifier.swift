import DSLIR
import DSLSyntax

/// Checks a pass's output against its input by elaborating both (see `RewritePass`):
/// the new spec must elaborate without errors (every shape inferable), keep the network's input
/// and output shapes, and each change's new statements must give the output shape of the
/// statements they replaced (only the spatial size for `spatialOnly` changes). Also measures
/// each change: Δparams and ΔMACs over the region, Δreceptive field at its output.
public enum Verifier {
    /// Verifies `after` (parsed from the printed text) against `before`; returns the changes with
    /// their deltas, and error diagnostics (located in the text the pass read) on failure.
    public static func verify(pass: String, before: Analysis, after: Analysis, changes: [Change]) -> ([Change], [Diagnostic]) {
        var errors: [Diagnostic] = []
        let where0 = before.spec.statements.first?.location ?? .start
        guard let g0 = before.graph, let c0 = before.cost else {
            return (changes, [.error("verification failed after pass '\(pass)': the input does not elaborate", at: where0)])
        }
        guard let g1 = after.graph, let c1 = after.cost else {
            let first = after.diagnostics.items.first { $0.severity == .error }
            let what = first.map { "line \($0.location.line) of the rewritten spec: \($0.message)" } ?? "unknown error"
            // Point at the change nearest the failure, if any.
            let at = changes.first?.location ?? where0
            return (changes, [.error("verification failed after pass '\(pass)': the rewritten spec does not elaborate (\(what))", at: at)])
        }
        if g0.inputShape != g1.inputShape {
            errors.append(.error("verification failed after pass '\(pass)': the input shape changed from \(g0.inputShape) to \(g1.inputShape)", at: where0))
        }
        let out0 = g0.nodes[g0.output].shape, out1 = g1.nodes[g1.output].shape
        if out0 != out1 {
            let at = changes.last?.location ?? where0
            errors.append(.error("verification failed after pass '\(pass)': the network's output shape changed from \(out0) to \(out1)", at: at))
        }
        var measured: [Change] = []
        for var ch in changes {
            let newStatements = ch.afterRegion.compactMap { StatementPath.resolve($0, in: after.spec.statements) }
            guard newStatements.count == ch.afterRegion.count, let lastBefore = ch.beforeRegion.last else {
                errors.append(.error("verification failed after pass '\(pass)': the rewritten statements of '\(ch.before)' are missing", at: ch.location))
                measured.append(ch)
                continue
            }
            let expected = before.outputShapes(lastBefore)
            let got = newStatements.last.map { after.outputShapes($0.location) } ?? before.outputShapes(lastBefore)
            let matches = expected.count == got.count && zip(expected, got).allSatisfy { a, b in
                ch.spatialOnly ? (a.height == b.height && a.width == b.width) : a == b
            }
            if !matches {
                let e = expected.map(\.description).joined(separator: ", "), g = got.map(\.description).joined(separator: ", ")
                errors.append(.error("verification failed after pass '\(pass)': '\(ch.after)' gives \(g.isEmpty ? "no output" : g) where '\(ch.before)' gave \(e)", at: ch.location))
            }
            let beforeNodes = ch.beforeRegion.flatMap { before.nodes($0) }
            let afterNodes = newStatements.flatMap { after.nodes($0.location) }
            ch.deltaParams = afterNodes.reduce(0) { $0 + c1.nodes[$1].params } - beforeNodes.reduce(0) { $0 + c0.nodes[$1].params }
            ch.deltaMACs = afterNodes.reduce(0) { $0 + c1.nodes[$1].macs } - beforeNodes.reduce(0) { $0 + c0.nodes[$1].macs }
            if let o0 = before.outputs(lastBefore).first {
                let o1 = newStatements.last.flatMap { after.outputs($0.location).first }
                ch.deltaReceptiveField = (o1.map { c1.nodes[$0].receptiveField } ?? 0) - c0.nodes[o0].receptiveField
            }
            measured.append(ch)
        }
        return (measured, errors)
    }
}

/// One pass's step in a rewrite.
public struct RewriteStep {
    /// The pass.
    public var pass: String
    /// The text it read (diagnostics and change locations point into it).
    public var input: SourceFile
    /// Its verified changes.
    public var changes: [Change]
    /// Its diagnostics (warnings become errors under `strict`), verification errors included.
    public var diagnostics: [Diagnostic]
    /// Policy explanations.
    public var summary: [String]
    /// Creates a step.
    public init(pass: String, input: SourceFile, changes: [Change], diagnostics: [Diagnostic], summary: [String]) {
        self.pass = pass; self.input = input; self.changes = changes; self.diagnostics = diagnostics; self.summary = summary
    }
}

/// The outcome of running passes over a spec.
public struct RewriteOutcome {
    /// The original text.
    public var original: String
    /// The rewritten text (the original when nothing could be done).
    public var text: String
    /// Each pass's step, in order (stops after a failing pass).
    public var steps: [RewriteStep]
    /// Costs before and after.
    public var costBefore: NetworkCost?
    public var costAfter: NetworkCost?
    /// Graphs before and after.
    public var graphBefore: Graph?
    public var graphAfter: Graph?
    /// Diagnostics of the input spec itself (elaboration), when it has errors.
    public var inputDiagnostics: [Diagnostic]
    /// Whether any error occurred (input errors, verification failures, strict warnings).
    public var failed: Bool
}

/// Runs passes in order, each on the printed and re-parsed output of the previous one, and
/// verifies each (see `RewritePass`).
public enum Rewriter {
    /// Rewrites `source` with `passes`. Under `strict`, a pass's warnings are errors and stop it.
    public static func run(_ source: SourceFile, passes: [RewritePass], strict: Bool = false) -> RewriteOutcome {
        let original = String(decoding: source.bytes, as: UTF8.self)
        let checked = Frontend.check(source)
        var outcome = RewriteOutcome(original: original, text: original, steps: [], costBefore: checked.cost, costAfter: checked.cost,
                                     graphBefore: checked.graph, graphAfter: checked.graph, inputDiagnostics: [], failed: false)
        guard checked.graph != nil, !checked.diagnostics.hasErrors else {
            outcome.inputDiagnostics = checked.diagnostics.items
            outcome.failed = true
            return outcome
        }
        var current = checked.spec
        var currentFile = source
        for pass in passes {
            let before = Analysis(current)
            let result = pass.apply(current)
            var diagnostics = result.diagnostics.map { d -> Diagnostic in
                var d = d
                if strict && d.severity == .warning { d.severity = .error }
                return d
            }
            let text = SpecPrinter.print(result.spec)
            let newFile = SourceFile(path: "\(source.path) (after \(pass.name))", text: text)
            let (reparsed, parseDiagnostics) = Parser.parse(newFile)
            var changes = result.changes
            if parseDiagnostics.hasErrors {
                let first = parseDiagnostics.items.first { $0.severity == .error }!
                diagnostics.append(.error("verification failed after pass '\(pass.name)': the printed spec does not parse (line \(first.location.line): \(first.message))", at: result.changes.first?.location ?? .start))
            } else {
                let after = Analysis(reparsed)
                let (measured, errors) = Verifier.verify(pass: pass.name, before: before, after: after, changes: result.changes)
                changes = measured
                diagnostics += errors
                if errors.isEmpty {
                    outcome.costAfter = after.cost
                    outcome.graphAfter = after.graph
                }
            }
            outcome.steps.append(RewriteStep(pass: pass.name, input: currentFile, changes: changes, diagnostics: diagnostics, summary: result.summary))
            if diagnostics.contains(where: { $0.severity == .error }) {
                outcome.failed = true
                outcome.costAfter = nil
                outcome.graphAfter = nil
                return outcome
            }
            current = reparsed
            currentFile = newFile
            outcome.text = text
        }
        return outcome
    }
}

/// The passes `dsl rewrite` knows, by name, in the order `--list-passes` shows them.
public enum PassRegistry {
    /// Name and one-line description of every pass.
    public static let descriptions: [(String, String)] = [
        ("strided", StridedPass().summary),
        ("all-conv", AllConvPass().summary),
        ("convpool", ConvPoolPass().summary),
        ("reduce", ReducePass(policy: .ratio(ReductionRatios(r3: 0.5))).summary),
        ("gap-head", GapHeadPass().summary),
    ]

    /// A pass by name (`reduce` needs a policy).
    public static func pass(named name: String, reduction: ReductionPolicy?) -> RewritePass? {
        switch name {
        case "strided": return StridedPass()
        case "all-conv": return AllConvPass()
        case "convpool": return ConvPoolPass()
        case "reduce": return reduction.map { ReducePass(policy: $0) }
        case "gap-head": return GapHeadPass()
        default: return nil
        }
    }
}
