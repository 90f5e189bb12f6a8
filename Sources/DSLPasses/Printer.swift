import DSLSyntax

/// Prints a spec's AST back to canonical source text, such that `parse(print(spec)) == spec`
/// (statements compare by meaning; see `Statement.==`).
///
/// Canonical formatting:
/// - header comments first, then one blank line, then the statements;
/// - one statement per line, two spaces of indentation per level of braces, `} {` between the
///   branches of `concat`/`add`, `{}` for an empty body;
/// - leading comments on their own lines above their statement, trailing comments after it,
///   aligned within a run of consecutive lines (two spaces after the longest line of the run);
///   a comment after a `{` or a closing `}` two spaces after it; comment lines at the end of a
///   body above its `}` (an empty body with comments is written open, not as `{}`); comments
///   after the last statement at the end, after a blank line — every comment the parser keeps
///   (`SpecFile.comments`) is printed where it reads back to the same place;
/// - at most one blank line between statements, kept where the source had one (known from
///   the statements' locations; statements made by a pass take the location of the one they
///   replace, so no blank line appears inside a rewrite);
/// - positional arguments as written (numbers keep their text: `0.50` stays `0.50`), binary
///   operators with a space on each side, parentheses only where precedence needs them;
/// - options in a canonical order: padding, dilation, groups, rounding, batch norm, bias,
///   activation, slope, then anything else in the order written (`SpecPrinter.optionOrder`);
///   a merge's options (`add zeropad`) after its keyword;
/// - sizes (`1x7`, `pad=0x3`) as written.
public enum SpecPrinter {
    /// The order options are printed in; options not listed follow in their written order.
    public static let optionOrder: [String] = [
        "pad", "same", "valid", "dilation", "groups", "ceil", "floor", "bn", "bias", "nobias",
        "act", "relu", "leaky", "linear", "gelu", "silu", "swish", "relu6", "hardswish", "hardsigmoid", "sigmoid", "tanh",
        "slope", "bottleneck", "widen", "zeropad",
    ]

    /// The canonical text of a spec.
    public static func print(_ spec: SpecFile) -> String {
        var lines: [String] = spec.headerComments.map { "#" + $0 }
        if !lines.isEmpty && !spec.statements.isEmpty { lines.append("") }
        render(spec.statements, depth: 0, source: spec.source, into: &lines)
        let trailing = spec.trailingComments
        if !trailing.isEmpty {
            if !spec.statements.isEmpty { lines.append("") }
            lines += trailing.map { "#" + $0 }
        }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }

    /// The canonical text of one statement (without comments), as it would appear at top level.
    public static func line(_ s: Statement) -> String {
        var lines: [String] = []
        var copy = s
        copy.leadingComments = []; copy.trailingComment = nil; copy.bodyComments = []
        render([copy], depth: 0, source: SourceFile(path: "", text: ""), into: &lines)
        return lines.joined(separator: "\n")
    }

    /// The canonical lines of a run of statements with their comments, at no indentation (the
    /// statements of one list; `source` is the text their locations refer to, for blank lines).
    public static func lines(_ statements: [Statement], source: SourceFile) -> [String] {
        var lines: [String] = []
        render(statements, depth: 0, source: source, into: &lines)
        return lines
    }

    private static func firstLine(_ s: Statement, _ source: SourceFile) -> Int { s.location.line }
    private static func lastLine(_ s: Statement, _ source: SourceFile) -> Int {
        source.line(of: s.location.offset + max(0, s.location.length - 1))
    }

    private static func render(_ list: [Statement], depth: Int, source: SourceFile, into lines: inout [String]) {
        let pad = String(repeating: "  ", count: depth)
        // Pending single-line statements whose trailing comments are aligned together.
        var run: [(code: String, comment: String?)] = []
        func flush() {
            let width = run.filter { $0.comment != nil }.map(\.code.count).max() ?? 0
            for r in run {
                if let c = r.comment {
                    lines.append(r.code + String(repeating: " ", count: width - r.code.count + 2) + "#" + c)
                } else {
                    lines.append(r.code)
                }
            }
            run.removeAll()
        }
        for (i, s) in list.enumerated() {
            if i > 0 {
                let prev = list[i - 1]
                if firstLine(s, source) - s.leadingComments.count - 1 > lastLine(prev, source) {
                    flush(); lines.append("")
                }
            }
            if !s.leadingComments.isEmpty {
                flush()
                for c in s.leadingComments { lines.append(pad + "#" + c) }
            }
            let label = s.label.map { $0 + ": " } ?? ""
            switch s.kind {
            case .block(let b):
                flush()
                let head = pad + label + "block \(b.name)(\(b.parameters.map(\.0).joined(separator: ", ")))"
                braced(head, [b.body], s, depth: depth, source: source, into: &lines)
            case .repeatLoop(let count, let body):
                flush()
                braced(pad + label + "repeat \(expr(count))", [body], s, depth: depth, source: source, into: &lines)
            case .merge(let kind, let branches, let mergeOptions):
                flush()
                let head = ([pad + label + kind] + canonicalOrder(mergeOptions).map(option)).joined(separator: " ")
                braced(head, branches, s, depth: depth, source: source, into: &lines)
            default:
                run.append((pad + label + singleLine(s.kind), s.trailingComment))
            }
        }
        flush()
    }

    /// `head {` body `} {` body `}`, with `{}` for empty bodies without comments; the body
    /// comments and the trailing comment of `s`.
    private static func braced(_ head: String, _ bodies: [[Statement]], _ s: Statement, depth: Int, source: SourceFile, into lines: inout [String]) {
        let pad = String(repeating: "  ", count: depth)
        let inner = pad + "  "
        var current = head
        for (i, body) in bodies.enumerated() {
            let c = i < s.bodyComments.count ? s.bodyComments[i] : BodyComments()
            if body.isEmpty && c.isEmpty { current += " {}"; continue }
            lines.append(current + " {" + (c.opening.map { "  #" + $0 } ?? ""))
            render(body, depth: depth + 1, source: source, into: &lines)
            for text in c.closing { lines.append(inner + "#" + text) }
            current = pad + "}"
        }
        lines.append(current + (s.trailingComment.map { "  #" + $0 } ?? ""))
    }

    private static func singleLine(_ kind: StatementKind) -> String {
        switch kind {
        case .network(let n): return "network \(n)"
        case .input(let h, let w, let c): return "input \(h)x\(w)x\(c)"
        case .layer(let kind, let words, let args, let options):
            var parts = [kind]
            if kind == "inception" {
                parts[0] = "inception<" + args.map { expr($0) }.joined(separator: ", ") + ">"
            } else {
                parts += words.map(\.0)
                for (i, a) in args.enumerated() {
                    var t = expr(a, spaced: false)
                    // `3 -1` would read as one subtraction: parenthesise a later argument that starts with '-'.
                    if (i > 0 || !words.isEmpty) && t.hasPrefix("-") { t = "(" + t + ")" }
                    // An argument that starts with a flag word (`floor-1`, `bn`) would read as an
                    // option, and `pool`'s first one starting with `max` or `avg` as its kind.
                    let first = String(t.prefix { $0.isLetter || $0.isNumber || $0 == "_" })
                    if Parser.flagNames.contains(first) || (kind == "pool" && i == 0 && words.isEmpty && (first == "max" || first == "avg")) {
                        t = "(" + t + ")"
                    }
                    parts.append(t)
                }
            }
            parts += canonicalOrder(options).map(option)
            return parts.joined(separator: " ")
        case .call(let name, let args, let options):
            return ([name + "(" + args.map { expr($0) }.joined(separator: ", ") + ")"] + canonicalOrder(options).map(option)).joined(separator: " ")
        case .invalid:
            return "# (invalid statement)"
        case .block, .repeatLoop, .merge:
            return ""
        }
    }

    /// Options sorted by `optionOrder` (stable; unknown options keep their written order last).
    /// A word without `=` that is not a flag (`bias` in `conv 3 1 8 act=linear bias`) is an
    /// option only after another option: written first it would read as a positional argument,
    /// so such options go after all the others.
    public static func canonicalOrder(_ options: [LayerOption]) -> [LayerOption] {
        func rank(_ o: LayerOption) -> Int {
            if o.value == nil && !Parser.flagNames.contains(o.name) { return optionOrder.count + 1 }
            return optionOrder.firstIndex(of: o.name) ?? optionOrder.count
        }
        return options.enumerated().sorted { a, b in
            (rank(a.element), a.offset) < (rank(b.element), b.offset)
        }.map(\.element)
    }

    private static func option(_ o: LayerOption) -> String {
        guard let v = o.value else { return o.name }
        return o.name + "=" + expr(v, spaced: false)
    }

    /// Precedence: 1 for + -, 2 for * /, 3 for atoms and negation.
    private static func precedence(_ e: Expr) -> Int {
        switch e {
        case .binary(let op, _, _, _): return op == "+" || op == "-" ? 1 : 2
        default: return 3
        }
    }

    /// An expression with the fewest parentheses that parse back to the same tree.
    /// `spaced: false` writes binary operators without spaces (positional arguments and option
    /// values, where a space separates arguments for the reader).
    public static func expr(_ e: Expr, spaced: Bool = true) -> String {
        // Iterative (an explicit stack): an expression may hold `Parser.maxOperators` operators
        // in a chain, too deep for recursion on a small thread stack.
        enum Step { case visit(Expr), negate(Expr), binary(String, Expr, Expr) }
        var steps: [Step] = [.visit(e)]
        var out: [String] = []
        while let step = steps.popLast() {
            switch step {
            case .visit(let x):
                switch x {
                case .number(_, let text, _): out.append(text)
                case .name(let n, _): out.append(n)
                case .dims(_, let text, _): out.append(text)
                case .negate(let y, _): steps.append(.negate(y)); steps.append(.visit(y))
                case .binary(let op, let a, let b, _): steps.append(.binary(op, a, b)); steps.append(.visit(b)); steps.append(.visit(a))
                }
            case .negate(let y):
                let inner = out.removeLast()
                out.append("-" + (precedence(y) < 3 ? "(" + inner + ")" : inner))
            case .binary(let op, let a, let b):
                var r = out.removeLast(), l = out.removeLast()
                let p = op == "+" || op == "-" ? 1 : 2
                if precedence(a) < p { l = "(" + l + ")" }
                if precedence(b) <= p { r = "(" + r + ")" }
                out.append(spaced ? "\(l) \(op) \(r)" : "\(l)\(op)\(r)")
            }
        }
        return out.last ?? ""
    }
}
