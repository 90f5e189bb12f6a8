import DSLSyntax

/// The name of a rewritten network (`dsl rewrite --name`). `dsl train`'s default run directory
/// is `runs/NETWORK`, so a rewritten spec that kept its original's name would train into the
/// original's run: unless told otherwise, `dsl rewrite` names the result after the original
/// and the passes (`model-c-all-conv`).
public enum NetworkNaming {
    /// What `Rewriter.run` names the network.
    public enum Policy: Sendable {
        /// The name it had.
        case keep
        /// This name.
        case named(String)
        /// `derived(from: original name, passes: the passes' names)`.
        case afterPasses
    }

    /// Whether `name` can follow `network`: 1 to 128 ASCII letters, digits, `-`, `_` or `.`.
    public static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= Lexer.maxNameLength
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
            && name.first != "." && name.first != "-"
    }

    /// `NAME-PASS1-PASS2`: the original's name (`network` when it is not a valid name, such as
    /// the `<stdin>` of a spec read from standard input) and the passes applied, in order.
    public static func derived(from name: String, passes: [String]) -> String {
        let base = isValid(name) ? name : "network"
        let full = ([base] + passes).joined(separator: "-")
        return full.utf8.count <= Lexer.maxNameLength ? full : String(full.prefix(Lexer.maxNameLength))
    }

    /// `text` with its network named `name`, the rest as written: the `network` statement's name
    /// replaced, or `network NAME` added on a line of its own before the `input` line when
    /// there is none. Nil when the text does not parse to a spec with an `input` statement, or
    /// the result would not read back with that name.
    public static func renamed(_ text: String, path: String, to name: String) -> String? {
        guard isValid(name) else { return nil }
        let file = SourceFile(path: path, text: text)
        let (spec, diagnostics) = Parser.parse(file)
        guard !diagnostics.hasErrors else { return nil }
        var lines = (1...file.lineStarts.count).map { String(decoding: file.lineText($0), as: UTF8.self) }
        if file.lineStarts.last == file.bytes.count, lines.last == "" { lines.removeLast() }
        if let s = spec.statements.first(where: { if case .network = $0.kind { return true }; return false }) {
            // The statement is on one line: `network NAME`, maybe followed by a comment.
            let line = s.location.line
            let start = s.location.offset - file.lineStarts[line - 1]
            var bytes = Array(lines[line - 1].utf8)
            guard start >= 0, start + s.location.length <= bytes.count else { return nil }
            bytes.replaceSubrange(start..<(start + s.location.length), with: Array("network \(name)".utf8))
            lines[line - 1] = String(decoding: bytes, as: UTF8.self)
        } else if let input = spec.statements.first(where: { if case .input = $0.kind { return true }; return false }) {
            let line = input.location.line
            let indent = String(lines[line - 1].prefix { $0 == " " || $0 == "\t" })
            lines.insert(indent + "network \(name)", at: line - 1)
        } else {
            return nil
        }
        let out = lines.joined(separator: "\n") + "\n"
        let (again, d) = Parser.parse(SourceFile(path: path, text: out))
        guard !d.hasErrors, again.statements.contains(where: { if case .network(let n) = $0.kind { return n == name }; return false }) else { return nil }
        return out
    }
}
