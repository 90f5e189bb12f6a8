import DSLIR
import DSLSyntax

/// Checks a pass's output against its input by elaborating both (see `RewritePass`):
/// the new spec must elaborate without errors (every shape inferable), keep the network's input
/// and output shapes, and each change's new statements must give the output shape of the
/// statements they replaced (only the spatial size for `spatialOnly` changes). Also measures
/// each change: Δparams and ΔMACs over the region, Δreceptive field at its output.
public enum Verifier {
    /// One thing verification found wrong.
    public struct Failure: Sendable {
        /// The index (in the changes verified) of the change it concerns; nil when it concerns
        /// the network as a whole (it does not elaborate, its output shape changed).
        public var change: Int?
        /// The reason, for messages: `the network is too large to count: ...`.
        public var reason: String
        /// The error diagnostic, located in the text the pass read.
        public var diagnostic: Diagnostic
    }

    /// Verifies `after` (parsed from the printed text) against `before`; returns the changes with
    /// their deltas, and error diagnostics (located in the text the pass read) on failure.
    public static func verify(pass: String, before: Analysis, after: Analysis, changes: [Change]) -> ([Change], [Diagnostic]) {
        let (measured, failures) = check(pass: pass, before: before, after: after, changes: changes)
        return (measured, failures.map(\.diagnostic))
    }

    /// `verify`, with each failure attributed to the change it concerns where that is known.
    public static func check(pass: String, before: Analysis, after: Analysis, changes: [Change]) -> ([Change], [Failure]) {
        var failures: [Failure] = []
        func fail(_ change: Int?, _ reason: String, _ message: String, at location: SourceLocation) {
            failures.append(Failure(change: change, reason: reason, diagnostic: .error("verification failed after pass '\(pass)': " + message, at: location)))
        }
        let where0 = before.spec.statements.first?.location ?? .start
        guard let g0 = before.graph, let c0 = before.cost else {
            fail(nil, "the input does not elaborate", "the input does not elaborate", at: where0)
            return (changes, failures)
        }
        // The statements that replace each change's region, in the new AST.
        let replacements: [[Statement]?] = changes.map { ch in
            let found = ch.afterRegion.compactMap { StatementPath.resolve($0, in: after.spec.statements) }
            return found.count == ch.afterRegion.count ? found : nil
        }
        guard let g1 = after.graph, let c1 = after.cost else {
            let first = after.diagnostics.items.first { $0.severity == .error }
            let what = first.map { "line \($0.location.line) of the rewritten spec: \($0.message)" } ?? "unknown error"
            // The change whose new statements hold the error, if any; else the first change.
            var culprit: Int?
            if let e = first?.location {
                culprit = replacements.firstIndex { r in
                    (r ?? []).contains { $0.location.offset <= e.offset && e.offset < $0.location.offset + max(1, $0.location.length) }
                }
            }
            let at = culprit.map { changes[$0].location } ?? changes.first?.location ?? where0
            fail(culprit, "the rewritten spec does not elaborate: \(first?.message ?? "unknown error")",
                 "the rewritten spec does not elaborate (\(what))", at: at)
            return (changes, failures)
        }
        if g0.inputShape != g1.inputShape {
            fail(nil, "the input shape changed from \(g0.inputShape) to \(g1.inputShape)",
                 "the input shape changed from \(g0.inputShape) to \(g1.inputShape)", at: where0)
        }
        let out0 = g0.nodes[g0.output].shape, out1 = g1.nodes[g1.output].shape
        if out0 != out1 {
            let at = changes.last?.location ?? where0
            fail(nil, "the network's output shape would change from \(out0) to \(out1)",
                 "the network's output shape changed from \(out0) to \(out1)", at: at)
        }
        var measured: [Change] = []
        for (index, var ch) in changes.enumerated() {
            guard let newStatements = replacements[index], let lastBefore = ch.beforeRegion.last else {
                fail(index, "the rewritten statements are missing", "the rewritten statements of '\(ch.before)' are missing", at: ch.location)
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
                fail(index, "it gives \(g.isEmpty ? "no output" : g) where '\(ch.before)' gave \(e)",
                     "'\(ch.after)' gives \(g.isEmpty ? "no output" : g) where '\(ch.before)' gave \(e)", at: ch.location)
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
        return (measured, failures)
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
    /// The network's name before and after, when the rewrite renamed it (`name:` of `run`).
    public var renamed: (from: String, to: String)?
}

/// Runs passes in order, each on the printed and re-parsed output of the previous one, and
/// verifies each (see `RewritePass`).
public enum Rewriter {
    /// Rewrites `source` with `passes`. Under `strict`, a pass's warnings are errors and stop it.
    /// `naming` says what the network is called in the result (`NetworkNaming`).
    public static func run(_ source: SourceFile, passes: [RewritePass], strict: Bool = false, naming: NetworkNaming.Policy = .keep) -> RewriteOutcome {
        var outcome = runPasses(source, passes: passes, strict: strict)
        guard !outcome.failed, let before = outcome.graphBefore?.name else { return outcome }
        let name: String
        switch naming {
        case .keep: return outcome
        case .named(let n): name = n
        case .afterPasses: name = NetworkNaming.derived(from: before, passes: passes.map(\.name))
        }
        // The steps' texts have LF line endings; the original keeps its own.
        let text = outcome.steps.isEmpty ? String(decoding: source.bytes, as: UTF8.self) : outcome.text
        guard let renamed = NetworkNaming.renamed(text, path: source.path, to: name) else {
            outcome.failed = true
            outcome.inputDiagnostics = [.error("cannot name the network '\(name)' (a name is 1 to \(Lexer.maxNameLength) ASCII letters, digits, '-', '_' or '.', not starting with '-' or '.')", at: .start)]
            return outcome
        }
        outcome.text = renamed
        outcome.graphAfter?.name = name
        if before != name { outcome.renamed = (before, name) }
        return outcome
    }

    static func runPasses(_ source: SourceFile, passes: [RewritePass], strict: Bool) -> RewriteOutcome {
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
            var step = attempt(pass, current, before, source: source, skipping: [])
            var skipped: [Diagnostic] = []
            if !step.failures.isEmpty, let skippable = pass as? SkippingRewritePass {
                (step, skipped) = skipFailingChanges(skippable, current, before, source: source, first: step)
            }
            // Source order (stable: a statement's own diagnostics keep their order).
            var diagnostics = (step.result.diagnostics + skipped).enumerated()
                .sorted { ($0.element.location.offset, $0.offset) < ($1.element.location.offset, $1.offset) }.map(\.element)
            diagnostics += step.failures.map(\.diagnostic)
            if strict {
                for i in diagnostics.indices where diagnostics[i].severity == .warning { diagnostics[i].severity = .error }
            }
            if step.failures.isEmpty {
                outcome.costAfter = step.after?.cost
                outcome.graphAfter = step.after?.graph
            }
            outcome.steps.append(RewriteStep(pass: pass.name, input: currentFile, changes: step.changes, diagnostics: diagnostics, summary: step.result.summary))
            if diagnostics.contains(where: { $0.severity == .error }) {
                outcome.failed = true
                outcome.costAfter = nil
                outcome.graphAfter = nil
                return outcome
            }
            current = step.reparsed
            currentFile = step.file
            outcome.text = step.text
        }
        return outcome
    }

    /// One run of a pass, printed, re-parsed and verified.
    struct Attempt {
        var result: PassResult
        var text: String
        var file: SourceFile
        var reparsed: SpecFile
        var after: Analysis?
        var changes: [Change]
        var failures: [Verifier.Failure]
    }

    static func attempt(_ pass: RewritePass, _ spec: SpecFile, _ before: Analysis, source: SourceFile, skipping: Set<SourceLocation>) -> Attempt {
        let result = skipping.isEmpty ? pass.apply(spec) : (pass as! SkippingRewritePass).apply(spec, skipping: skipping)
        // Untouched statements keep their text (blank lines, comment alignment), so a diff shows
        // only the rewrites; the canonical print where the text allows no clean cut.
        let text = Splicer.splice(old: spec, new: result.spec) ?? SpecPrinter.print(result.spec)
        let file = SourceFile(path: "\(source.path) (after \(pass.name))", text: text)
        let (reparsed, parseDiagnostics) = Parser.parse(file)
        if parseDiagnostics.hasErrors {
            let first = parseDiagnostics.items.first { $0.severity == .error }!
            let d = Diagnostic.error("verification failed after pass '\(pass.name)': the printed spec does not parse (line \(first.location.line): \(first.message))", at: result.changes.first?.location ?? .start)
            return Attempt(result: result, text: text, file: file, reparsed: reparsed, after: nil, changes: result.changes,
                           failures: [Verifier.Failure(change: nil, reason: "the printed spec does not parse: \(first.message)", diagnostic: d)])
        }
        let after = Analysis(reparsed)
        let (measured, failures) = Verifier.check(pass: pass.name, before: before, after: after, changes: result.changes)
        return Attempt(result: result, text: text, file: file, reparsed: reparsed, after: after, changes: measured, failures: failures)
    }

    /// Runs a pass again without the changes that fail verification, until its output verifies:
    /// a failure attributed to one change skips that change; a failure of the whole network (its
    /// output shape, a limit) skips the first change in source order whose addition makes the
    /// output fail (found by bisection over the changes). Returns the final attempt and one
    /// located warning per skipped change.
    static func skipFailingChanges(_ pass: SkippingRewritePass, _ spec: SpecFile, _ before: Analysis, source: SourceFile,
                                   first: Attempt) -> (Attempt, [Diagnostic]) {
        var current = first
        var skip = Set<SourceLocation>()
        var warnings: [Diagnostic] = []
        func skipChange(_ c: Change, _ reason: String) {
            skip.insert(c.location)
            warnings.append(passWarning(pass.name, "'\(c.before)' -> '\(c.after)' would not pass verification (\(reason)); left unchanged", at: c.location))
        }
        // Each round skips at least one change, so this ends.
        for _ in 0...first.result.changes.count {
            guard !current.failures.isEmpty else { break }
            let attributed = current.failures.filter { $0.change != nil }
            if !attributed.isEmpty {
                for f in attributed where !skip.contains(current.result.changes[f.change!].location) {
                    skipChange(current.result.changes[f.change!], f.reason)
                }
            } else {
                // The smallest prefix of the changes (in source order) that fails.
                let all = current.result.changes.sorted { $0.location.offset < $1.location.offset }
                guard !all.isEmpty else { break }
                func run(_ n: Int) -> Attempt { attempt(pass, spec, before, source: source, skipping: skip.union(all[n...].map(\.location))) }
                var lo = 0, hi = all.count, failing = current   // run(lo) passes (assumed for 0), run(hi) fails
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2
                    let r = run(mid)
                    if r.failures.isEmpty { lo = mid } else { hi = mid; failing = r }
                }
                skipChange(all[hi - 1], failing.failures.first?.reason ?? "verification failed")
            }
            current = attempt(pass, spec, before, source: source, skipping: skip)
        }
        return (current, warnings)
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
