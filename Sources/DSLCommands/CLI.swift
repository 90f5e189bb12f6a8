import DSLIR
import DSLSyntax
import Foundation

/// One `dsl` subcommand: its name, a one-line summary, its help text and its entry point.
struct Command {
    var name: String
    var summary: String
    var help: String
    var run: ([String]) throws -> Int32
}

/// Every command, in the order `dsl --help` lists them.
let commands: [Command] = [
    CheckCommand.command,
    RewriteCommand.command,
    FmtCommand.command,
    RunCommand.command,
    BenchCommand.command,
    TrainCommand.command,
    EvalCommand.command,
    DrawCommand.command,
    VisualizeCommand.command,
    ExportCommand.command,
]

/// The `dsl` version string.
public let dslVersion = "0.1.0"

/// Runs the `dsl` command line with the given arguments and returns the process exit code.
public func runDSL(_ arguments: [String]) -> Int32 {
    guard let first = arguments.first else {
        err(topLevelHelp())
        return ExitCode.usage
    }
    if first == "--help" || first == "-h" || first == "help" {
        if arguments.count > 1, let c = commands.first(where: { $0.name == arguments[1] }) { out(c.help); return ExitCode.ok }
        out(topLevelHelp())
        return ExitCode.ok
    }
    if first == "--version" { out("dsl \(dslVersion)\n"); return ExitCode.ok }
    guard let command = commands.first(where: { $0.name == first }) else {
        let near = commands.map(\.name).min { Arguments.distance($0, first) < Arguments.distance($1, first) }
        err("dsl: unknown command '\(first)'" + (near.map { Arguments.distance($0, first) <= 2 ? "; did you mean '\($0)'?" : "" } ?? "") + "\nRun 'dsl --help' for the list of commands.\n")
        return ExitCode.usage
    }
    let rest = Array(arguments.dropFirst())
    if rest.contains("--help") || rest.contains("-h") { out(command.help); return ExitCode.ok }
    do {
        return try command.run(rest)
    } catch let e as UsageError {
        err("dsl \(command.name): \(e.message)\nRun 'dsl \(command.name) --help' for usage.\n")
        return ExitCode.usage
    } catch let e as CommandFailure {
        err("dsl \(command.name): \(e.message)\n")
        return ExitCode.failure
    } catch let e as SourceError {
        err("dsl \(command.name): \(e.message)\n")
        return ExitCode.failure
    } catch {
        err("dsl \(command.name): \(error)\n")
        return ExitCode.failure
    }
}

func topLevelHelp() -> String {
    var s = """
    dsl \(dslVersion): describe a convolutional network in a few lines, then check, rewrite and train it.

    Usage: dsl COMMAND [options]

    Commands:

    """
    for c in commands { s += "  " + c.name.padding(toLength: 10, withPad: " ", startingAt: 0) + c.summary + "\n" }
    s += "\nRun 'dsl COMMAND --help' for a command's options. Exit codes: 0 ok, 1 errors, 2 usage.\n"
    return s
}

/// Loads and checks a spec, printing diagnostics to standard error. Returns nil after errors,
/// once `onErrors` has seen the checked network. `input` replaces the size the spec declares.
func loadChecked(_ path: String, printWarnings: Bool = true, input: Shape? = nil,
                 onErrors: (CheckedNetwork) -> Void = { _ in }) throws -> (CheckedNetwork, Graph, NetworkCost)? {
    let source = try SourceFile.read(path: path)
    let checked = Frontend.check(source, input: input)
    let renderer = DiagnosticRenderer(file: source)
    let shown = checked.diagnostics.items.filter { printWarnings || $0.severity == .error }
        .enumerated().sorted { ($0.element.location.offset, $0.offset) < ($1.element.location.offset, $1.offset) }.map(\.element)
    err(renderer.render(shown))
    guard let g = checked.graph, let c = checked.cost, !checked.diagnostics.hasErrors else {
        let n = checked.diagnostics.errorCount
        err("\(n) error\(n == 1 ? "" : "s") in \(path)\n")
        onErrors(checked)
        return nil
    }
    return (checked, g, c)
}
