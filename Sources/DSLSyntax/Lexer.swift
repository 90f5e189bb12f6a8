/// Turns spec bytes into tokens. Comments run from `#` to the end of the line. Words are runs of
/// letters, digits and `_` (a word may start with a digit, as in the label `3a`); a run of digits
/// with an optional fraction and exponent is a number, and `32x32x3` is a dims token.
/// Bytes outside printable ASCII are errors outside comments.
public struct Lexer {
    private let file: SourceFile
    private let bytes: [UInt8]
    private var pos = 0
    /// Diagnostics reported while lexing.
    public private(set) var diagnostics = DiagnosticBag()
    /// Every comment, in order: the line it is on, its text after `#`, and whether it is the
    /// only thing on its line (kept so the printer can carry comments through a rewrite).
    public private(set) var comments: [Comment] = []

    /// A comment's line, text and placement.
    public struct Comment: Sendable {
        /// 1-based line.
        public var line: Int
        /// Text after the `#`, without the newline.
        public var text: String
        /// True when nothing but blanks precedes it on its line.
        public var wholeLine: Bool
    }

    /// Creates a lexer over a file.
    public init(file: SourceFile) {
        self.file = file
        self.bytes = file.bytes
    }

    /// Lexes the whole file; the last token is always `.end`.
    public mutating func tokenize() -> [Token] {
        var tokens: [Token] = []
        tokens.reserveCapacity(bytes.count / 3 + 2)
        var reportedLine = -1
        while pos < bytes.count {
            let c = bytes[pos]
            let start = pos
            switch c {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                pos += 1
            case UInt8(ascii: "\n"):
                pos += 1
                tokens.append(Token(.newline, "\n", loc(start, 1)))
            case UInt8(ascii: "#"):
                while pos < bytes.count && bytes[pos] != UInt8(ascii: "\n") { pos += 1 }
                // Trailing blanks (and the CR of a CRLF line) are not part of the comment: the
                // printer writes lines without them, and a comment ending in a second CR used to
                // change its text when printed and read again.
                var end = pos
                while end > start + 1 && (bytes[end - 1] == UInt8(ascii: "\r") || bytes[end - 1] == 32 || bytes[end - 1] == 9) { end -= 1 }
                let l = loc(start, 1)
                let lineStart = file.lineStarts[l.line - 1]
                let whole = bytes[lineStart..<start].allSatisfy { $0 == 32 || $0 == 9 }
                comments.append(Comment(line: l.line, text: String(decoding: bytes[(start + 1)..<max(start + 1, end)], as: UTF8.self), wholeLine: whole))
            case _ where isWordByte(c):
                while pos < bytes.count && isWordByte(bytes[pos]) { pos += 1 }
                // A number may carry a fraction and an exponent: 0.5, 1e-3, 2.5E+2.
                if isDigit(c) && pos < bytes.count && bytes[pos] == UInt8(ascii: ".")
                    && pos + 1 < bytes.count && isDigit(bytes[pos + 1]) && allDigits(start, pos) {
                    pos += 1
                    while pos < bytes.count && isWordByte(bytes[pos]) { pos += 1 }
                }
                if isDigit(c), pos + 1 < bytes.count, bytes[pos - 1] | 0x20 == UInt8(ascii: "e"),
                   bytes[pos] == UInt8(ascii: "-") || bytes[pos] == UInt8(ascii: "+"), isDigit(bytes[pos + 1]),
                   isNumberText(start, pos - 1) {
                    pos += 1
                    while pos < bytes.count && isDigit(bytes[pos]) { pos += 1 }
                }
                var text = String(decoding: bytes[start..<pos], as: UTF8.self)
                let kind = classify(text)
                let l = loc(start, pos - start)
                if kind == .word { text = capped(text, at: l) }
                tokens.append(Token(kind, text, l))
                // The name after a statement-initial `network` is one word of printable ASCII up
                // to a blank, `#` or `;`: Grammar.md allows `-`, `_` and `.` in it, but `.` is
                // no symbol, so `network resnet-v1.5` used to fail with "unexpected character '.'".
                if text == "network", tokens.count < 2 || tokens[tokens.count - 2].kind == .newline || tokens[tokens.count - 2].isSymbol(";") {
                    while pos < bytes.count && (bytes[pos] == 32 || bytes[pos] == 9) { pos += 1 }
                    let nameStart = pos
                    while pos < bytes.count, bytes[pos] > 32, bytes[pos] < 127, bytes[pos] != UInt8(ascii: "#"), bytes[pos] != UInt8(ascii: ";") { pos += 1 }
                    if pos > nameStart {
                        let l = loc(nameStart, pos - nameStart)
                        tokens.append(Token(.word, capped(String(decoding: bytes[nameStart..<pos], as: UTF8.self), at: l), l))
                    }
                }
            case _ where "(){}<>,=:;+-*/".utf8.contains(c):
                pos += 1
                tokens.append(Token(.symbol, String(UnicodeScalar(c)), loc(start, 1)))
            default:
                // Skip a whole UTF-8 sequence (or one stray byte) and report it once per line.
                pos += 1
                while pos < bytes.count && bytes[pos] & 0xC0 == 0x80 { pos += 1 }
                let l = loc(start, pos - start)
                if l.line != reportedLine {
                    reportedLine = l.line
                    let what: String
                    if c >= 0x80 {
                        what = c >= 0xC0 && pos - start > 1 ? "unexpected character '\(String(decoding: bytes[start..<pos], as: UTF8.self))'" : String(format0x: c)
                        // In a file that is not UTF-8 (read as ISO-8859-1) the character is one byte.
                        if file.encoding == .latin1 && pos - start == 2, let raw = String(decoding: bytes[start..<pos], as: UTF8.self).unicodeScalars.first {
                            diagnostics.error("\(what) (byte \(String(format0x: UInt8(raw.value)).dropFirst("unexpected byte ".count)) of a file that is not UTF-8, read as ISO-8859-1; specs are plain ASCII outside comments)", at: l)
                            tokens.append(Token(.invalid, "", l))
                            continue
                        }
                    }
                    else { what = c < 32 || c == 127 ? String(format0x: c) : "unexpected character '\(Character(UnicodeScalar(c)))'" }
                    diagnostics.error(what + (c >= 0x80 || c < 32 || c == 127 ? " (specs are plain ASCII outside comments)" : ""), at: l)
                }
                tokens.append(Token(.invalid, "", l))
            }
        }
        tokens.append(Token(.end, "", loc(bytes.count, 0)))
        return tokens
    }

    /// The longest name accepted (labels, block, parameter, option and network names), in
    /// characters. Names end up in every generated layer name below them: a 100 KB label inside
    /// a repeat made 100,000 names of 100 KB each.
    public static let maxNameLength = 128

    /// A word longer than `maxNameLength` is an error; its text is cut to that length so that
    /// later stages, which still run to report their own errors, never see the long text.
    private mutating func capped(_ text: String, at l: SourceLocation) -> String {
        guard text.utf8.count > Lexer.maxNameLength else { return text }
        diagnostics.error("name '\(String(text.prefix(24)))...' is too long (\(text.utf8.count) characters; at most \(Lexer.maxNameLength))", at: l)
        return String(text.prefix(Lexer.maxNameLength))
    }

    /// The last location computed: tokens come in increasing offsets, so the column of the next
    /// one on the same line is counted from here instead of from the start of the line (which
    /// made a long single-line file quadratic: a 10 MB line never finished lexing).
    private var lastLocation = SourceLocation(offset: 0, length: 0, line: 1, column: 1)

    private mutating func loc(_ offset: Int, _ length: Int) -> SourceLocation {
        let last = lastLocation
        let lineStart = file.lineStarts[last.line - 1]
        let nextLineStart = last.line < file.lineStarts.count ? file.lineStarts[last.line] : Int.max
        var l: SourceLocation
        if offset >= last.offset && offset >= lineStart && offset < nextLineStart {
            var column = last.column
            var i = last.offset
            while i < offset && i < bytes.count {
                if bytes[i] & 0xC0 != 0x80 { column += 1 }
                i += 1
            }
            l = SourceLocation(offset: offset, length: max(length, 0), line: last.line, column: column)
        } else {
            l = file.location(offset: offset, length: length)
        }
        lastLocation = l
        return l
    }

    private func allDigits(_ a: Int, _ b: Int) -> Bool {
        for i in a..<b where !isDigit(bytes[i]) { return false }
        return true
    }

    /// Whether bytes a..<b read as digits with an optional single fraction, followed by `e` at b.
    private func isNumberText(_ a: Int, _ b: Int) -> Bool {
        var sawDot = false
        for i in a..<b {
            if bytes[i] == UInt8(ascii: ".") { if sawDot { return false }; sawDot = true } else if !isDigit(bytes[i]) { return false }
        }
        return b > a
    }

    private func classify(_ text: String) -> TokenKind {
        let u = Array(text.utf8)
        guard let f = u.first, isDigit(f) else { return .word }
        if isNumberLiteral(u) { return .number }
        // dims: digits ('x' digits)+
        var groups = 0, digits = 0
        for b in u {
            if isDigit(b) { digits += 1 }
            else if b == UInt8(ascii: "x") || b == UInt8(ascii: "X") { if digits == 0 { return .word }; groups += 1; digits = 0 }
            else { return .word }
        }
        return groups >= 1 && digits > 0 ? .dims : .word
    }
}

private extension String {
    init(format0x byte: UInt8) {
        let hex = String(byte, radix: 16, uppercase: true)
        self = "unexpected byte 0x" + (hex.count == 1 ? "0" + hex : hex)
    }
}

@inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
@inline(__always) func isWordByte(_ c: UInt8) -> Bool {
    (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95
}

/// Whether bytes form a decimal number literal: digits, optional `.digits`, optional exponent.
func isNumberLiteral(_ u: [UInt8]) -> Bool {
    var i = 0
    var digits = 0
    while i < u.count && isDigit(u[i]) { i += 1; digits += 1 }
    if digits == 0 { return false }
    if i < u.count && u[i] == UInt8(ascii: ".") {
        i += 1
        var frac = 0
        while i < u.count && isDigit(u[i]) { i += 1; frac += 1 }
        if frac == 0 { return false }
    }
    if i < u.count && (u[i] | 0x20) == UInt8(ascii: "e") {
        i += 1
        if i < u.count && (u[i] == UInt8(ascii: "-") || u[i] == UInt8(ascii: "+")) { i += 1 }
        var e = 0
        while i < u.count && isDigit(u[i]) { i += 1; e += 1 }
        if e == 0 { return false }
    }
    return i == u.count
}
