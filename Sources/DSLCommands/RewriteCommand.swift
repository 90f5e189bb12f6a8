import DSLIR
import DSLPasses
import DSLSyntax
import Foundation

/// `dsl rewrite FILE --pass NAME...`: applies the papers' transformations as verified passes.
enum RewriteCommand {
    static let command = Command(name: "rewrite", summary: "apply verified rewrites (strided, all-conv, convpool, reduce, gap-head)", help: """
    Usage: dsl rewrite FILE --pass NAME [--pass NAME...] [--ratio R3[,R5[,RP]] | --budget N]
                       [--name NAME] [-o OUT [--in-place] | --in-place] [--diff] [--dry-run]
                       [--format text|json] [--strict]
           dsl rewrite FILE --name NAME [-o OUT [--in-place] | --in-place] [--diff] [--dry-run]
           dsl rewrite --list-passes

    Applies passes to the spec in the order given, each to the output of the previous one, and
    verifies each: the rewritten spec is printed, parsed and elaborated again, and must infer
    every shape, keep the network's input and output shapes, and give every rewritten layer the
    output shape of the layer it replaced. A change that would fail verification is left out
    and the pass run again without it (a located warning, see below); should the output still
    fail, the rewrite stops with an error naming the pass and the layer, and nothing is written.

    Passes:
      strided    remove each max-pooling; the convolution before it takes its stride
      all-conv   replace each max-pooling by conv K S C (its window, stride, input width),
                 padding chosen to keep the output size, the neighbouring convolution's
                 batch norm, bias and activation (ReLU by default; batch norm also when
                 the neighbour is followed by a bn layer)
      convpool   insert a dense conv K 1 C ('same' padding) before each max-pooling, with
                 the neighbouring convolution's options as all-conv
      reduce     insert 1x1 reductions before convolutions with kernels above 1 whose input is
                 wider than the reduction, where the reduction lowers the MACs (not on the
                 network input, directly or through dropout, activations, batch norm or
                 pooling; not after a 1x1); make inception reduce columns that are 0 nonzero
                 (where that lowers the MACs); add pool projections where they are 0, in the
                 order the data flows, later widths following the new module widths (not where
                 the module's new width would change the network's output shape: a warning)
                 (needs --ratio or --budget). In a block called with different widths,
                 the reduction's width is an expression of the width before it (c/2, or
                 c*N/D: the fraction giving whole widths in every use)
      gap-head   replace a final fc N (after optional gap/dropout) by conv 1 1 N act=linear + gap
    Where a pass cannot apply (a pooling with no convolution before it, inside an inception
    module, in a block used with different widths where no convolution before it in the
    block writes the width (else the width is that expression: conv 2 2 c, conv 1 1 c/2), a
    padding that would change the output size, a rewrite that would not pass verification,
    such as a convolution beyond the limits of Grammar.md section 7...), it leaves that place
    as it is and says so with the location: a warning, or an error with --strict. So the
    output of every pass passes the verifier. Notes say where a pass chose not to act
    (already applied, nothing to reduce).

    Options:
      --pass NAME        a pass to apply; repeatable, applied in order
      --name NAME        the rewritten network's name (letters, digits, '-', '_', '.'); by
                         default the original's name and the passes', e.g. model-c-all-conv,
                         so 'dsl train' never puts the rewritten network in the original's
                         run directory (runs/NETWORK). A spec without a 'network' line gets one
      --list-passes      list the passes with a one-line description
      --ratio R3[,R5[,RP]]
                         reduce: width = round(R x input channels), rounded half to even; R3 for
                         kernels below 5 and inception's #3x3 reduce, R5 (default R3) for 5x5 and
                         up and #5x5 reduce, RP (default R5) for pool projections. GoogLeNet's
                         inception (3a): --ratio 0.5,0.0833 (96 and 16 of 192 channels)
      --budget N         reduce: the widest reductions whose network needs at most N MACs per
                         image (N accepts 128049152, 128M, 1.5G): the ratios (--ratio, default
                         1 for all) scaled by a common factor, searched by bisection in 256 steps
                         (the MACs never decrease from one step to the next); the report says
                         which ratios and widths were chosen and why. Plain convolution stacks
                         and inception modules alike. A network already within N is left as it
                         is; when even the narrowest step needs more than N, an error gives the
                         fewest MACs the pass can reach
      -o OUT             write the rewritten spec to OUT (atomically: a temporary file next to
                         OUT, then a rename; a symbolic link is written through and an existing
                         OUT keeps its permissions). OUT may not be the input file unless
                         --in-place is given too; '-o -' is standard output
      --in-place         allow writing over the input (alone: write back to FILE)
      --diff             print a unified diff of the old and new text (instead of the spec, when
                         it would go to standard output)
      --dry-run          write nothing: only the report (and the diff with --diff)
      --format text|json the report's format (default text)
      --strict           a pass that cannot apply somewhere is an error (exit 1, nothing written)

    FILE may be '-' for standard input. The rewritten spec keeps the input's encoding (UTF-8, or
    ISO-8859-1 for a file that is not valid UTF-8) and line endings (CRLF when most of its lines
    end in CRLF). A spec file larger than 16 MiB is an error.

    Output: without -o, the rewritten spec goes to standard output and the report to standard
    error. With -o, --in-place or --dry-run, the report goes to standard output (standard error
    with --diff). The report lists each change with its location (in the text the pass read:
    for the first pass, FILE), before -> after, and its change in parameters, MACs and
    receptive field; then totals before and after; first, the network's new name. Rewritten
    lines carry a trailing comment naming the pass, e.g. '# all-conv: replaces pool at line 14',
    and the old lines' comments quoted as comments ('(old comment: "16x16")').

    Statements a pass does not touch keep their text as written (spacing, blank lines,
    comment column, indentation), so --diff shows only the rewrites; a rewritten line's
    comment starts at its neighbour's comment column. Where a rewritten statement shares its
    line with another ('conv 3 1 8 ; pool'), the whole spec is printed in canonical format
    (as dsl fmt) instead.

    Exit codes: 0 ok (warnings allowed), 1 errors (spec errors, --strict failures, verification
    failures, a budget nothing fits), 2 usage.

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--pass", "-o", "--format", "--ratio", "--budget", "--name"],
                              flagOptions: ["--diff", "--dry-run", "--strict", "--list-passes", "--in-place"])
        if a.has("--list-passes") {
            var s = ""
            for (n, d) in PassRegistry.descriptions { s += n.padding(toLength: 10, withPad: " ", startingAt: 0) + d + "\n" }
            out(s)
            return ExitCode.ok
        }
        guard a.positional.count == 1 else {
            throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file, got \(a.positional.count)")
        }
        let path = a.positional[0]
        let names = a.values["--pass"] ?? []
        let newName = a.value("--name")
        if let n = newName, !NetworkNaming.isValid(n) {
            throw UsageError(message: "--name must be 1 to \(Lexer.maxNameLength) ASCII letters, digits, '-', '_' or '.', not starting with '-' or '.', got '\(n)'")
        }
        guard !names.isEmpty || newName != nil else { throw UsageError(message: "no pass given; use --pass NAME (see --list-passes), or --name NAME to rename the network") }
        let known = PassRegistry.descriptions.map(\.0)
        for n in names where !known.contains(n) {
            let near = known.min { Arguments.distance($0, n) < Arguments.distance($1, n) }
            throw UsageError(message: "unknown pass '\(n)'" + (near.map { Arguments.distance($0, n) <= 3 ? "; did you mean '\($0)'?" : "" } ?? "") + " (passes: \(known.joined(separator: ", ")))")
        }
        var ratios: ReductionRatios?
        if let r = a.value("--ratio") {
            guard let p = ReductionRatios.parse(r) else { throw UsageError(message: "--ratio must be R, R3,R5 or R3,R5,RP with each ratio in (0, 1], got '\(r)'") }
            ratios = p
        }
        let budget = try a.amount("--budget")
        if budget == 0 { throw UsageError(message: "--budget must be positive") }
        var policy: ReductionPolicy?
        if let b = budget { policy = .budget(b, ratios) } else if let r = ratios { policy = .ratio(r) }
        if names.contains("reduce") && policy == nil { throw UsageError(message: "the reduce pass needs --ratio or --budget") }
        if !names.contains("reduce") && policy != nil { throw UsageError(message: "--ratio and --budget apply to the reduce pass, which is not selected") }
        let format = a.value("--format") ?? "text"
        guard format == "text" || format == "json" else { throw UsageError(message: "--format must be text or json, got '\(format)'" + Arguments.suggestion(format, in: ["text", "json"])) }
        var output = a.value("-o")
        if output == "-" { output = nil }   // standard output
        if let o = output, path != "-", samePath(o, path), !a.has("--in-place") {
            throw UsageError(message: "-o \(o) is the input file; add --in-place to overwrite it")
        }
        if output == nil && a.has("--in-place") {
            if path == "-" { throw UsageError(message: "--in-place needs a file, not standard input") }
            output = path
        }
        let dryRun = a.has("--dry-run")
        let passes = names.map { PassRegistry.pass(named: $0, reduction: policy)! }

        let source = try SourceFile.read(path: path)
        // A rewritten network gets a name of its own (its default run directory is
        // runs/NAME): --name, else the original's name and the passes'.
        let outcome = Rewriter.run(source, passes: passes, strict: a.has("--strict"), naming: newName.map { .named($0) } ?? .afterPasses)
        if !outcome.inputDiagnostics.isEmpty {
            let shown = outcome.inputDiagnostics.sorted { $0.location.offset < $1.location.offset }
            err(DiagnosticRenderer(file: source).render(shown))
            let n = shown.filter { $0.severity == .error }.count
            err("\(n) error\(n == 1 ? "" : "s") in \(path); nothing rewritten\n")
            return ExitCode.failure
        }
        for step in outcome.steps {
            err(DiagnosticRenderer(file: step.input).render(step.diagnostics))
        }
        let reportToStdout = (output != nil || dryRun) && !a.has("--diff")
        let report = format == "json" ? RewriteReport.json(outcome, path: path).render() + "\n" : RewriteReport.text(outcome, path: path)
        if reportToStdout { out(report) } else { err(report) }
        if outcome.failed {
            err("dsl rewrite: \(path) not rewritten because of the errors above\n")
            return ExitCode.failure
        }
        // The rewritten spec keeps the input's encoding and line endings.
        guard let encoded = source.encode(outcome.text) else {
            err("dsl rewrite: the rewritten spec cannot be written in \(source.encoding.rawValue), the encoding of \(path); nothing written\n")
            return ExitCode.failure
        }
        if a.has("--diff") {
            let new = source.lineEnding == .crlf ? outcome.text.replacingOccurrences(of: "\n", with: "\r\n") : outcome.text
            out(LineDiff.unified(outcome.original, new, oldName: path, newName: output ?? "\(path) (rewritten)"))
        }
        if dryRun { return ExitCode.ok }
        if let o = output {
            try SourceFile.writeAtomically(encoded, to: o)
        } else if !a.has("--diff") {
            FileHandle.standardOutput.write(Data(encoded))
        }
        return ExitCode.ok
    }

    /// Whether two paths name the same file (after resolving `.`, `..` and symbolic links).
    static func samePath(_ a: String, _ b: String) -> Bool {
        let x = URL(fileURLWithPath: a).standardizedFileURL.resolvingSymlinksInPath().path
        let y = URL(fileURLWithPath: b).standardizedFileURL.resolvingSymlinksInPath().path
        return x == y
    }
}

/// The rewrite report as text or JSON.
enum RewriteReport {
    static func signed(_ n: Int) -> String { n > 0 ? "+" + grouped(n) : grouped(n) }

    static func text(_ o: RewriteOutcome, path: String) -> String {
        var s = ""
        if let r = o.renamed {
            s += "network: \(r.from) -> \(r.to) (dsl train's default run directory: runs/\(r.to))\n"
        }
        for step in o.steps {
            s += "\(step.pass): \(step.changes.count) change\(step.changes.count == 1 ? "" : "s") in \(step.input.path)\n"
            for line in step.summary { s += "  \(line)\n" }
            for c in step.changes {
                s += "  line \(c.location.line): \(c.before) -> \(c.after)\n"
                s += "    params \(signed(c.deltaParams)), MACs \(signed(c.deltaMACs)), receptive field \(signed(c.deltaReceptiveField))"
                if let n = c.note { s += "; \(n)" }
                s += "\n"
            }
            let w = step.diagnostics.filter { $0.severity == .warning }.count, e = step.diagnostics.filter { $0.severity == .error }.count
            if w + e > 0 { s += "  \(e) error\(e == 1 ? "" : "s"), \(w) warning\(w == 1 ? "" : "s") (above)\n" }
        }
        if let b = o.costBefore {
            func line(_ name: String, _ x: Int, _ y: Int?) -> String {
                "  \(name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(grouped(x)) -> \(y.map(grouped) ?? "?")" + (y.map { " (\(signed($0 - x)))" } ?? "") + "\n"
            }
            s += "totals:\n"
            s += line("params", b.params, o.costAfter?.params)
            s += line("weights", b.weights, o.costAfter?.weights)
            s += line("MACs", b.macs, o.costAfter?.macs)
            s += line("ptflops", b.ptflopsMACs, o.costAfter?.ptflopsMACs)
        }
        return s
    }

    static func json(_ o: RewriteOutcome, path: String) -> JSON {
        func totals(_ c: NetworkCost?) -> JSON {
            guard let c else { return .null }
            return .object([("params", .int(c.params)), ("weights", .int(c.weights)), ("macs", .int(c.macs)), ("ptflops_macs", .int(c.ptflopsMACs))])
        }
        let steps: [JSON] = o.steps.map { step in
            .object([
                ("pass", .string(step.pass)),
                ("input", .string(step.input.path)),
                ("summary", .array(step.summary.map { .string($0) })),
                ("changes", .array(step.changes.map { c in
                    .object([("line", .int(c.location.line)), ("column", .int(c.location.column)),
                             ("before", .string(c.before)), ("after", .string(c.after)),
                             ("delta_params", .int(c.deltaParams)), ("delta_macs", .int(c.deltaMACs)),
                             ("delta_receptive_field", .int(c.deltaReceptiveField)),
                             ("note", c.note.map { .string($0) } ?? .null)])
                })),
                ("diagnostics", .array(step.diagnostics.map { d in
                    .object([("severity", .string(d.severity.rawValue)), ("message", .string(d.message)),
                             ("line", .int(d.location.line)), ("column", .int(d.location.column))])
                })),
            ])
        }
        return .object([
            ("input", .string(path)),
            ("ok", .bool(!o.failed)),
            ("network", o.renamed.map { .object([("before", .string($0.from)), ("after", .string($0.to))]) } ?? .null),
            ("passes", .array(steps)),
            ("before", totals(o.costBefore)),
            ("after", totals(o.failed ? nil : o.costAfter)),
        ])
    }
}
