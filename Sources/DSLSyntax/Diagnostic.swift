/// How serious a diagnostic is.
public enum Severity: String, Sendable {
    case error, warning, note
}

/// A message about the spec, located at the text that caused it; a value, never a global flag.
public struct Diagnostic: Sendable, Equatable {
    /// Error, warning or note.
    public var severity: Severity
    /// The message, lower case, without trailing period ("expected ')' after kernel size").
    public var message: String
    /// Where it points.
    public var location: SourceLocation
    /// Secondary locations, e.g. "in expansion of block 'vgg' here".
    public var notes: [Note]

    /// A secondary message with its own location.
    public struct Note: Sendable, Equatable {
        /// The note's text.
        public var message: String
        /// Where it points.
        public var location: SourceLocation
        /// Creates a note.
        public init(_ message: String, at location: SourceLocation) { self.message = message; self.location = location }
    }

    /// Creates a diagnostic.
    public init(_ severity: Severity, _ message: String, at location: SourceLocation, notes: [Note] = []) {
        self.severity = severity; self.message = message; self.location = location; self.notes = notes
    }

    /// An error at a location.
    public static func error(_ message: String, at location: SourceLocation, notes: [Note] = []) -> Diagnostic {
        Diagnostic(.error, message, at: location, notes: notes)
    }

    /// A warning at a location.
    public static func warning(_ message: String, at location: SourceLocation, notes: [Note] = []) -> Diagnostic {
        Diagnostic(.warning, message, at: location, notes: notes)
    }
}

/// An ordered collection of diagnostics for one file, with a cap so junk input stays readable.
public struct DiagnosticBag: Sendable {
    /// Diagnostics in the order they were reported.
    public private(set) var items: [Diagnostic] = []
    /// The most errors kept; beyond it a single "too many errors" error is kept.
    public let limit: Int
    /// Set once the limit was reached.
    public private(set) var truncated = false

    /// Creates an empty bag.
    public init(limit: Int = 100) { self.limit = limit }

    /// Whether any error (not warning) was reported.
    public var hasErrors: Bool { items.contains { $0.severity == .error } }
    /// Number of errors.
    public var errorCount: Int { items.filter { $0.severity == .error }.count }
    /// Number of warnings.
    public var warningCount: Int { items.filter { $0.severity == .warning }.count }

    /// When set, a diagnostic equal to one already kept (severity, message and location) is
    /// dropped (the elaborator sets it).
    public var deduplicating = false
    private struct Key: Hashable { var severity: Severity; var message: String; var offset: Int; var length: Int }
    private var seen: Set<Key> = []

    /// Errors and warnings kept so far, counted separately: warnings alone never make an error.
    private var errorsKept = 0, warningsKept = 0
    /// Set once the warning limit was reached.
    public private(set) var warningsTruncated = false

    /// Adds a diagnostic (dropped once the limit for its severity is reached). Warnings have their
    /// own limit: a hundred warnings (say, from a repeated empty block) used to fill the bag and
    /// turn into a "too many errors" error, failing a spec that had none.
    public mutating func add(_ d: Diagnostic) {
        if deduplicating {
            // The same message at the same place (a block body's error that does not depend on
            // the block's arguments, seen once per call): kept once, with the first call's notes.
            guard seen.insert(Key(severity: d.severity, message: d.message, offset: d.location.offset, length: d.location.length)).inserted else { return }
        }
        if d.severity == .error {
            if truncated { return }
            if errorsKept >= limit {
                truncated = true
                items.append(.error("too many errors (\(limit)); stopping here", at: d.location))
                return
            }
            errorsKept += 1
        } else {
            if warningsTruncated { return }
            if warningsKept >= limit {
                warningsTruncated = true
                items.append(.warning("too many warnings (\(limit)); the rest are not shown", at: d.location))
                return
            }
            warningsKept += 1
        }
        items.append(d)
    }

    /// Adds an error.
    public mutating func error(_ message: String, at location: SourceLocation, notes: [Diagnostic.Note] = []) {
        add(.error(message, at: location, notes: notes))
    }

    /// Adds a warning.
    public mutating func warning(_ message: String, at location: SourceLocation, notes: [Diagnostic.Note] = []) {
        add(.warning(message, at: location, notes: notes))
    }

    /// Appends all diagnostics of another bag.
    public mutating func append(contentsOf other: DiagnosticBag) {
        for d in other.items { add(d) }
    }
}

/// Renders diagnostics the way Swift and Rust compilers print them:
/// `path:line:col: error: message`, the source line, and a caret underline.
public struct DiagnosticRenderer {
    /// The file the diagnostics point into.
    public let file: SourceFile
    /// The widest stretch of a source line to print (long lines are cut around the caret).
    public var maxLineWidth = 100

    /// Creates a renderer for a file.
    public init(file: SourceFile) { self.file = file }

    /// Renders one diagnostic with its notes, each ending in a newline.
    public func render(_ d: Diagnostic) -> String {
        var out = header(d.severity.rawValue, d.message, d.location)
        out += snippet(d.location)
        for n in d.notes {
            out += header("note", n.message, n.location)
            out += snippet(n.location)
        }
        return out
    }

    /// Renders every diagnostic in order.
    public func render(_ ds: [Diagnostic]) -> String { ds.map(render).joined() }

    private func header(_ kind: String, _ message: String, _ loc: SourceLocation) -> String {
        "\(file.path):\(loc.line):\(loc.column): \(kind): \(message)\n"
    }

    private func snippet(_ loc: SourceLocation) -> String {
        // At the end of a file that ends in a newline the line is empty: it is still printed (as
        // an empty line with the caret at column 1) so every error has its snippet.
        let raw = file.lineText(loc.line)
        // Only a window of bytes around the caret is decoded: a 10 MB line used to be turned
        // into characters whole (twice), which took longer than anyone would wait.
        let lineStart = loc.line >= 1 && loc.line <= file.lineStarts.count ? file.lineStarts[loc.line - 1] : 0
        let rel = min(max(0, loc.offset - lineStart), raw.count)
        let margin = 4 * maxLineWidth
        var wlo = max(0, rel - margin)
        while wlo > 0 && raw[wlo] & 0xC0 == 0x80 { wlo -= 1 }
        var whi = min(raw.count, rel + margin)
        while whi < raw.count && raw[whi] & 0xC0 == 0x80 { whi += 1 }
        let cutLeft = wlo > 0, cutRight = whi < raw.count
        // Characters of the line (printable ASCII kept, other bytes shown as '?').
        var chars: [Character] = []
        let text = String(decoding: raw[wlo..<whi], as: UTF8.self)
        for ch in text {
            if ch == "\t" { chars.append(" ") }
            else if ch.isASCII, let a = ch.asciiValue, a < 32 || a == 127 { chars.append("?") }
            else if ch == "\u{FFFD}" { chars.append("?") }
            else { chars.append(ch) }
        }
        let caretStart = wlo == 0 ? max(0, loc.column - 1) : raw[wlo..<rel].reduce(0) { $0 + ($1 & 0xC0 != 0x80 ? 1 : 0) }
        // Caret length in characters, clipped to the line.
        let locEnd = min(file.bytes.count, loc.offset + min(loc.length, max(0, whi - rel)))
        let locText = String(decoding: file.bytes[min(loc.offset, file.bytes.count)..<max(min(loc.offset, file.bytes.count), locEnd)], as: UTF8.self)
        var caretLen = max(1, locText.count)
        if let nl = locText.firstIndex(of: "\n") { caretLen = max(1, locText.distance(from: locText.startIndex, to: nl)) }
        var lo = 0
        var hi = chars.count
        if chars.count > maxLineWidth {
            lo = max(0, min(caretStart - maxLineWidth / 3, chars.count - maxLineWidth))
            hi = min(chars.count, lo + maxLineWidth)
        }
        caretLen = max(1, min(caretLen, max(1, hi - caretStart)))
        let gutter = String(loc.line)
        let pad = String(repeating: " ", count: gutter.count)
        var shown = String(chars[lo..<hi])
        if lo > 0 || cutLeft { shown = "..." + shown }
        if hi < chars.count || cutRight { shown += "..." }
        let caretCol = caretStart - lo + (lo > 0 || cutLeft ? 3 : 0)
        return "\(pad) |\n\(gutter) | \(shown)\n\(pad) | \(String(repeating: " ", count: max(0, caretCol)))\(String(repeating: "^", count: caretLen))\n"
    }
}
