import DSLIR
import DSLSyntax
import DSLVisualize
import Foundation

/// `dsl draw FILE`: the checked network as an SVG picture or Graphviz dot.
enum DrawCommand {
    static let command = Command(name: "draw", summary: "draw the network: SVG picture or Graphviz dot", help: """
    Usage: dsl draw FILE [-o OUT] [--format svg|dot] [--depth N] [--no-warnings]

    Draws the checked network top to bottom: a box per layer (name, operation, output shape,
    parameters; the SVG's tooltips add MACs, receptive field and source line), branches side by
    side in spec order and joined at their merge, and modules (inception, pyramid, its stages
    and units, block calls) and labelled merges as labelled frames. The SVG is self-contained
    (no external fonts or scripts) and opens in any browser; dot is Graphviz input with a
    cluster per frame (render it with: dot -Tsvg OUT -o net.svg).

    Options:
      -o OUT               write to OUT (atomically: a temporary file next to it, then a
                           rename; an existing OUT is replaced, OUT may not be FILE);
                           '-' or no -o: standard output (nothing is written to a file
                           you did not name)
      --format svg|dot     output format (default: dot when OUT ends in .dot or .gv, else svg)
      --depth N            expand modules down to depth N and draw each module at depth N
                           (0: the top-level modules) as one box, as dsl check --depth does;
                           labelled merges (res: add { ... } { }) count as a level too and
                           collapse with their branches (default: everything expanded)
      --no-warnings        do not print the spec's warnings

    FILE may be '-' for standard input. A drawing of more than 200,000 boxes is refused (exit
    1; collapse modules with --depth): its SVG would exceed 100 MB.

    Exit codes: 0 drawn, 1 errors in the spec (located diagnostics) or the output not written,
    2 usage.

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["-o", "--format", "--depth"], flagOptions: ["--no-warnings"])
        guard a.positional.count == 1 else {
            throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file, got \(a.positional.count)")
        }
        let path = a.positional[0]
        var output = a.value("-o")
        if output == "-" { output = nil }
        let format: NetworkDrawing.Format
        if let f = a.value("--format") {
            guard let parsed = NetworkDrawing.Format(rawValue: f) else { throw UsageError(message: "--format must be svg or dot, got '\(f)'") }
            format = parsed
        } else if let o = output, o.hasSuffix(".dot") || o.hasSuffix(".gv") {
            format = .dot
        } else {
            format = .svg
        }
        let depth = try a.integer("--depth", default: Int.max, in: 0...1_000)
        if let o = output, path != "-", RewriteCommand.samePath(o, path) {
            throw UsageError(message: "-o \(o) is the spec file itself")
        }
        guard let (checked, _, _) = try loadChecked(path, printWarnings: !a.has("--no-warnings")) else { return ExitCode.failure }
        let text: String
        do {
            guard let drawn = try NetworkDrawing.render(checked, format: format, depth: depth) else { return ExitCode.failure }
            text = drawn
        } catch let e as NetworkDrawing.TooLarge {
            throw CommandFailure(message: "\(path): \(e.description)")
        }
        if let o = output {
            try SourceFile.writeAtomically(Array(text.utf8), to: o)
        } else {
            out(text)
        }
        return ExitCode.ok
    }
}
