import DSLPasses
import DSLSyntax
import Foundation

/// `dsl fmt FILE...`: rewrites specs in canonical form (see `SpecPrinter`).
enum FmtCommand {
    static let command = Command(name: "fmt", summary: "rewrite specs in canonical format", help: """
    Usage: dsl fmt FILE... [--check]

    Rewrites each spec in canonical format, in place: one statement per line, two spaces of
    indentation inside braces, options in a canonical order (padding, rounding, bn, bias,
    activation, slope, others), numbers as written, comments kept (trailing comments aligned
    within a run of lines), at most one blank line between statements.

    A file is rewritten only if it parses without errors, and only when its text changes; the
    new text is written atomically (a temporary file, then a rename). Before writing, the new
    text is parsed again and must say exactly what the old one said, with every comment.

    Options:
      --check   do not write; print the name of each file that is not formatted and exit 1
                if there is any

    Exit codes: 0 ok (or, with --check, every file formatted), 1 a file has syntax errors or
    (with --check) is not formatted, 2 usage.

    """, run: run)

    /// The number of comments in a file (the formatter must keep every one).
    static func commentCount(_ file: SourceFile) -> Int {
        var lexer = Lexer(file: file)
        _ = lexer.tokenize()
        return lexer.comments.count
    }

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: [], flagOptions: ["--check"])
        guard !a.positional.isEmpty else { throw UsageError(message: "missing spec file") }
        var failed = false
        for path in a.positional {
            let source = try SourceFile.read(path: path)
            let (spec, diagnostics) = Parser.parse(source)
            if diagnostics.hasErrors {
                err(DiagnosticRenderer(file: source).render(diagnostics.items.filter { $0.severity == .error }))
                err("\(path): not formatted because of syntax errors\n")
                failed = true
                continue
            }
            let text = SpecPrinter.print(spec)
            let (again, againDiagnostics) = Parser.parse(SourceFile(path: path, text: text))
            guard !againDiagnostics.hasErrors, again.statements == spec.statements else {
                err("\(path): internal error: the formatted text does not parse back to the same spec; file left unchanged\n")
                failed = true
                continue
            }
            guard commentCount(source) == commentCount(SourceFile(path: path, text: text)) else {
                err("\(path): internal error: formatting would lose comments; file left unchanged\n")
                failed = true
                continue
            }
            if text == String(decoding: source.bytes, as: UTF8.self) { continue }
            if a.has("--check") {
                out("\(path): not formatted\n")
                failed = true
            } else {
                try writeAtomically(Data(text.utf8), to: path)
            }
        }
        return failed ? ExitCode.failure : ExitCode.ok
    }
}
