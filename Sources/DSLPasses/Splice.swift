import DSLSyntax

/// Writes a pass's result into the text the pass read, so that every statement the pass did
/// not touch stays as written (its spacing, blank lines, comment alignment, indentation) and a
/// diff of the two texts shows only the rewrites.
///
/// The old and new statement trees are compared list by list. A new statement with the
/// location and the content (comments included) of an old one is kept as its old text; a
/// block, repeat or merge whose header and comments are unchanged is compared inside; every
/// other run of new statements replaces the old statements between the same kept neighbours
/// (from the first line of the first one's leading comments to the last line of the last one,
/// its trailing comment included), printed canonically at the indentation of the first line
/// replaced. Where the text does not allow a clean cut (two statements on one line, `{ relu }`
/// on the line of its opening brace, an insertion into an empty body), `splice` gives up and
/// the caller prints the whole spec canonically, as before.
///
/// The result is checked: it must parse to the same statements and comments as the canonical
/// text of the new tree (compared line by line without blank lines and with runs of blanks
/// made one), else `splice` returns nil.
public struct Splicer {
    /// Lines `start ..< start + count` (1-based) replaced by `lines`.
    struct Edit {
        var start: Int
        var count: Int
        var lines: [String]
    }

    /// The text of `new` (a pass's output) written into the text of `old` (the spec it read),
    /// or nil where that cannot be done cleanly.
    public static func splice(old: SpecFile, new: SpecFile) -> String? {
        guard old.headerComments == new.headerComments, old.trailingComments == new.trailingComments else { return nil }
        var s = Splicer(file: old.source)
        guard s.compare(old.statements, new.statements) else { return nil }
        var lines = s.fileLines()
        for e in s.edits.sorted(by: { $0.start > $1.start }) {
            guard e.start >= 1, e.start - 1 + e.count <= lines.count else { return nil }
            lines.replaceSubrange((e.start - 1)..<(e.start - 1 + e.count), with: e.lines)
        }
        let text = lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
        if s.edits.isEmpty { return text }
        // The safety net: the spliced text must say what the canonical text says.
        let (reparsed, diagnostics) = Parser.parse(SourceFile(path: old.source.path, text: text))
        guard !diagnostics.hasErrors, normalized(SpecPrinter.print(reparsed)) == normalized(SpecPrinter.print(new)) else { return nil }
        return text
    }

    /// Lines without blank ones, each with runs of blanks made one and trimmed.
    public static func normalized(_ text: String) -> [String] {
        text.split(separator: "\n").map { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
        }.filter { !$0.isEmpty }
    }

    let file: SourceFile
    var edits: [Edit] = []

    init(file: SourceFile) { self.file = file }

    /// The file's lines without line endings (no empty last line for a final newline).
    func fileLines() -> [String] {
        var lines = (1...file.lineStarts.count).map { String(decoding: file.lineText($0), as: UTF8.self) }
        if file.lineStarts.last == file.bytes.count, lines.last == "" { lines.removeLast() }
        return lines
    }

    private static let blank: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r")]

    /// The leading blanks of a line.
    func indentation(_ line: Int) -> String {
        String(decoding: file.lineText(line).prefix { Splicer.blank.contains($0) }, as: UTF8.self)
    }

    /// The first line of a statement's text with its leading comments, if nothing but blanks
    /// precedes the statement on its line and its comments are the comment lines above it.
    func regionStart(_ s: Statement) -> Int? {
        let lineStart = file.lineStarts[s.location.line - 1]
        guard s.location.offset >= lineStart, file.bytes[lineStart..<s.location.offset].allSatisfy({ Splicer.blank.contains($0) }) else { return nil }
        var line = s.location.line
        var found = 0
        var l = line - 1
        while found < s.leadingComments.count {
            guard l >= 1 else { return nil }
            let text = file.lineText(l).drop { Splicer.blank.contains($0) }
            if text.isEmpty { l -= 1; continue }
            guard text.first == UInt8(ascii: "#") else { return nil }
            found += 1
            line = l
            l -= 1
        }
        return line
    }

    /// The last line of a statement, if nothing but blanks or its own trailing comment
    /// follows it there.
    func regionEnd(_ s: Statement) -> Int? {
        let end = s.location.offset + max(0, s.location.length)
        let line = file.line(of: max(s.location.offset, end - 1))
        let lineEnd = line < file.lineStarts.count ? file.lineStarts[line] : file.bytes.count
        var i = end
        while i < lineEnd && (Splicer.blank.contains(file.bytes[i]) || file.bytes[i] == UInt8(ascii: "\n")) { i += 1 }
        if i < lineEnd {
            guard file.bytes[i] == UInt8(ascii: "#"), s.trailingComment != nil else { return nil }
        }
        return line
    }

    /// The column (in characters, from 0) of the trailing comment of a statement line, if the
    /// line has code and then a comment.
    func commentColumn(_ line: Int) -> Int? {
        guard line >= 1, line <= file.lineStarts.count else { return nil }
        let text = String(decoding: file.lineText(line), as: UTF8.self)
        guard let hash = text.firstIndex(of: "#") else { return nil }
        let code = text[..<hash]
        guard code.contains(where: { $0 != " " && $0 != "\t" }), code.hasSuffix("  ") || code.hasSuffix(" ") else { return nil }
        return text.distance(from: text.startIndex, to: hash)
    }

    /// The comment column of the nearest line with code and a trailing comment in the run of
    /// non-blank lines around a replaced region (searching up from `above`, then down from
    /// `below`; a blank line ends a run, as for `dsl fmt`'s alignment).
    func neighbourCommentColumn(above: Int, below: Int) -> Int? {
        func blank(_ l: Int) -> Bool { file.lineText(l).allSatisfy { Splicer.blank.contains($0) } }
        var l = above
        while l >= 1 && !blank(l) {
            if let c = commentColumn(l) { return c }
            l -= 1
        }
        l = below
        while l <= file.lineStarts.count && !blank(l) {
            if let c = commentColumn(l) { return c }
            l += 1
        }
        return nil
    }

    /// Lines whose trailing comments start at `column` where their code leaves room (two
    /// blanks at least), the comments of a run aligned together.
    static func aligned(_ lines: [String], to column: Int) -> [String] {
        let split: [(code: Substring, comment: Substring)?] = lines.map { line in
            guard let hash = line.firstIndex(of: "#") else { return nil }
            var code = line[..<hash]
            guard code.contains(where: { $0 != " " }) else { return nil }
            while code.last == " " { code.removeLast() }
            return (code, line[hash...])
        }
        let widest = split.compactMap { $0?.code.count }.max() ?? 0
        let target = max(column, widest + 2)
        return zip(lines, split).map { line, parts in
            guard let (code, comment) = parts else { return line }
            return code + String(repeating: " ", count: target - code.count) + comment
        }
    }

    /// Whether two statements are the same text: meaning, label and every comment, inside
    /// their bodies too.
    static func identical(_ a: Statement, _ b: Statement) -> Bool {
        guard a == b, a.leadingComments == b.leadingComments, a.trailingComment == b.trailingComment, a.bodyComments == b.bodyComments else { return false }
        let x = StatementPath.bodies(a), y = StatementPath.bodies(b)
        guard x.count == y.count else { return false }
        for (p, q) in zip(x, y) {
            guard p.count == q.count, zip(p, q).allSatisfy({ identical($0, $1) }) else { return false }
        }
        return true
    }

    /// Whether two compound statements differ only inside their bodies.
    static func sameShell(_ a: Statement, _ b: Statement) -> Bool {
        guard a.label == b.label, a.leadingComments == b.leadingComments, a.trailingComment == b.trailingComment, a.bodyComments == b.bodyComments else { return false }
        switch (a.kind, b.kind) {
        case (.block(let x), .block(let y)): return x.name == y.name && x.parameters.map(\.0) == y.parameters.map(\.0)
        case (.repeatLoop(let c, _), .repeatLoop(let d, _)): return c == d
        case (.merge(let k, let x, let o), .merge(let l, let y, let p)): return k == l && x.count == y.count && LayerOption.sameOptions(o, p)
        default: return false
        }
    }

    /// Compares one statement list; records the edits. False where no clean cut exists.
    mutating func compare(_ old: [Statement], _ new: [Statement]) -> Bool {
        var byOffset: [Int: Int] = [:]
        for (i, s) in old.enumerated() where byOffset[s.location.offset] == nil { byOffset[s.location.offset] = i }
        // Kept statements: (old index, new index), both increasing.
        var anchors: [(Int, Int)] = [(-1, -1)]
        for (j, n) in new.enumerated() {
            guard let i = byOffset[n.location.offset], old[i].location == n.location, i > anchors.last!.0 else { continue }
            if Splicer.identical(old[i], n) {
                anchors.append((i, j))
            } else if Splicer.sameShell(old[i], n) {
                let x = StatementPath.bodies(old[i]), y = StatementPath.bodies(n)
                for (p, q) in zip(x, y) where !compare(p, q) { return false }
                anchors.append((i, j))
            }
        }
        anchors.append((old.count, new.count))
        for k in 1..<anchors.count {
            let (a, na) = anchors[k - 1], (b, nb) = anchors[k]
            let oldRun = Array(old[(a + 1)..<b]), newRun = Array(new[(na + 1)..<nb])
            if oldRun.isEmpty && newRun.isEmpty { continue }
            let start: Int, count: Int, indent: String
            if let first = oldRun.first, let last = oldRun.last {
                guard let s = regionStart(first), let e = regionEnd(last), e >= s else { return false }
                if a >= 0 { guard let pe = regionEnd(old[a]), pe < s else { return false } }
                if b < old.count { guard let ns = regionStart(old[b]), ns > e else { return false } }
                start = s; count = e - s + 1; indent = indentation(first.location.line)
            } else if b < old.count {
                guard let s = regionStart(old[b]) else { return false }
                if a >= 0 { guard let pe = regionEnd(old[a]), pe < s else { return false } }
                start = s; count = 0; indent = indentation(old[b].location.line)
            } else if a >= 0 {
                guard let e = regionEnd(old[a]) else { return false }
                start = e + 1; count = 0; indent = indentation(old[a].location.line)
            } else {
                return false
            }
            var lines = SpecPrinter.lines(newRun, source: file).map { $0.isEmpty ? $0 : indent + $0 }
            // Trailing comments line up with a neighbour's, where the neighbours align theirs.
            if let column = neighbourCommentColumn(above: start - 1, below: start + count) {
                lines = Splicer.aligned(lines, to: column)
            }
            edits.append(Edit(start: start, count: count, lines: lines))
        }
        return true
    }
}
