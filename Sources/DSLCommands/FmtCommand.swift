import DSLPasses
import DSLSyntax
import Foundation

/// `dsl fmt FILE...`: rewrites specs in canonical form (see `SpecPrinter`).
enum FmtCommand {
    static let command = Command(name: "fmt", summary: "rewrite specs in canonical format", help: """
    Usage: dsl fmt FILE... [--check] [--diff]
           dsl fmt - [--check] [--diff]

    Rewrites each spec in canonical format, in place: one statement per line, two spaces of
    indentation inside braces, options in a canonical order (padding, rounding, bn, bias,
    activation, slope, others), numbers as written, comments kept (trailing comments aligned
    within a run of lines), at most one blank line between statements.

    A file is rewritten only if it parses without errors, and only when its text changes. Before
    writing, the new text is parsed again and must say exactly what the old one said, with every
    comment. The file keeps its encoding (UTF-8, or ISO-8859-1 for a file that is not valid
    UTF-8: every byte of its comments is written back as it was), its line endings (CRLF when
    most of its lines end in CRLF), its permission bits and, where allowed, its owner and group.
    The new text is written atomically: a temporary file .FILE.dsl-tmp-PID next to the file,
    flushed, then renamed over it (temporary files of a write that was killed are removed by the
    next write). A symbolic link is written through: its target is replaced, the link stays.

    '-' formats standard input to standard output (always printed, changed or not). A FILE that
    is a directory, a named pipe, a device or larger than 16 MiB is an error; the other files
    are still formatted.

    Options:
      --check   do not write; print the name of each file that is not formatted ('<stdin>' for
                '-') and exit 1 if there is any
      --diff    do not write; print a unified diff of each file that is not formatted against
                its formatted text (nothing for a formatted one); with --check, the diffs
                instead of the names, and exit 1 if there is any

    Exit codes: 0 ok (or, with --check, every file formatted), 1 a file has syntax errors,
    cannot be read or written, or (with --check) is not formatted, 2 usage.

    """, run: run)

    /// The number of comments in a file (the formatter must keep every one).
    static func commentCount(_ file: SourceFile) -> Int {
        var lexer = Lexer(file: file)
        _ = lexer.tokenize()
        return lexer.comments.count
    }

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: [], flagOptions: ["--check", "--diff"])
        guard !a.positional.isEmpty else { throw UsageError(message: "missing spec file") }
        if a.positional.filter({ $0 == "-" }).count > 1 { throw UsageError(message: "'-' (standard input) may be given once") }
        var failed = false
        for path in a.positional {
            do {
                if try !format(path, check: a.has("--check"), diff: a.has("--diff")) { failed = true }
            } catch let e as SourceError {
                err("dsl fmt: \(e.message)\n")
                failed = true
            }
        }
        return failed ? ExitCode.failure : ExitCode.ok
    }

    /// Formats one file (or standard input for `-`); false when it failed or, with `check`, is
    /// not formatted. `diff` prints a unified diff instead of writing. Throws `SourceError`
    /// when the file cannot be read or written.
    static func format(_ path: String, check: Bool, diff: Bool = false) throws -> Bool {
        let stdin = path == "-"
        if !stdin {
            // Only regular files (through links) are formatted in place; checked before opening,
            // so a named pipe is never opened (and nothing waits for a writer).
            var st = stat()
            guard stat(path, &st) == 0 else { throw SourceError(message: SourceFile.openFailure(path, errno)) }
            switch st.st_mode & S_IFMT {
            case S_IFREG: break
            case S_IFDIR: throw SourceError(message: "\(path): is a directory, not a spec file")
            case S_IFIFO: throw SourceError(message: "\(path): is a named pipe (FIFO), not a file that can be formatted in place; use 'dsl fmt - < \(path)'")
            default: throw SourceError(message: "\(path): is not a regular file (a device or socket); use 'dsl fmt - < \(path)'")
            }
        }
        let source = try SourceFile.read(path: path)
        let name = source.path
        let (spec, diagnostics) = Parser.parse(source)
        if diagnostics.hasErrors {
            err(DiagnosticRenderer(file: source).render(diagnostics.items.filter { $0.severity == .error }))
            err("\(name): not formatted because of syntax errors\n")
            return false
        }
        let text = SpecPrinter.print(spec)
        let (again, againDiagnostics) = Parser.parse(SourceFile(path: name, text: text))
        guard !againDiagnostics.hasErrors, again.statements == spec.statements else {
            err("\(name): internal error: the formatted text does not parse back to the same spec; \(stdin ? "nothing printed" : "file left unchanged")\n")
            return false
        }
        guard commentCount(source) == commentCount(SourceFile(path: name, text: text)) else {
            err("\(name): internal error: formatting would lose comments; \(stdin ? "nothing printed" : "file left unchanged")\n")
            return false
        }
        guard let encoded = source.encode(text) else {
            err("\(name): internal error: the formatted text cannot be written in \(source.encoding.rawValue); \(stdin ? "nothing printed" : "file left unchanged")\n")
            return false
        }
        let formatted = encoded == source.rawBytes
        if diff {
            if !formatted {
                let new = source.lineEnding == .crlf ? text.replacingOccurrences(of: "\n", with: "\r\n") : text
                out(LineDiff.unified(String(decoding: source.bytes, as: UTF8.self), new, oldName: name, newName: "\(name) (formatted)"))
            }
            return !check || formatted
        }
        if check {
            if !formatted { out("\(name): not formatted\n") }
            return formatted
        }
        if stdin {
            FileHandle.standardOutput.write(Data(encoded))
        } else if !formatted {
            try SourceFile.writeAtomically(encoded, to: path)
        }
        return true
    }
}
