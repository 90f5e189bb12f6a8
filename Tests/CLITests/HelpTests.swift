import Foundation
import XCTest

/// `--help` against what each command accepts: the options a command parses (read from the
/// `Arguments(...)` call of its source file) all appear in its Usage lines and in its option
/// list, and every option the help lists is accepted.
final class HelpTests: XCTestCase {
    /// The options a command's source passes to `Arguments(valueOptions:flagOptions:)`.
    private func acceptedOptions(_ file: String) throws -> [String] {
        let text = try String(contentsOf: DSL.packageRoot.appendingPathComponent("Sources/DSLCommands/\(file)"), encoding: .utf8)
        guard let start = text.range(of: "try Arguments(") else { XCTFail("\(file): no Arguments call"); return [] }
        let call = text[start.upperBound...].prefix { $0 != "\n" } + "\n" + text[start.upperBound...].split(separator: "\n", maxSplits: 2).dropFirst().first.map(String.init).orEmpty
        let regex = try NSRegularExpression(pattern: #""(-[-a-z]*)""#)
        var s = String(call)
        // Options listed in a named array the call refers to (train's recipeValueFlags).
        if let list = call.range(of: #"[a-zA-Z]+ValueFlags"#, options: .regularExpression),
           let definition = text.range(of: "static let \(call[list]) = [") {
            s += text[definition.upperBound...].prefix { $0 != "]" }
        }
        return regex.matches(in: s, range: NSRange(s.startIndex..., in: s)).map { String(s[Range($0.range(at: 1), in: s)!]) }
    }

    private func help(_ command: String) throws -> (usage: String, body: String) {
        let r = try DSL.run([command, "--help"])
        XCTAssertEqual(r.status, 0, r.summary)
        // The Usage block: from "Usage:" to the first blank line.
        let usage = r.stdout.components(separatedBy: "\n\n").first { $0.hasPrefix("Usage:") } ?? ""
        return (usage, r.stdout)
    }

    /// Whether `option` is a whole word of `text` (`--batch` is not found in `--batch-size`).
    private func mentions(_ text: String, _ option: String) -> Bool {
        let pattern = "(^|[\\s\\[|(])" + NSRegularExpression.escapedPattern(for: option) + "($|[\\s\\]|=)])"
        return text.range(of: pattern, options: .regularExpression) != nil
    }

    func testEveryUsageLineListsEveryOption() throws {
        let files = ["check": "CheckCommand.swift", "rewrite": "RewriteCommand.swift", "fmt": "FmtCommand.swift",
                     "run": "RunCommand.swift", "bench": "BenchCommand.swift", "eval": "EvalCommand.swift",
                     "train": "TrainCommand.swift", "draw": "DrawCommand.swift", "visualize": "VisualizeCommand.swift",
                     "export": "ExportCommand.swift"]
        for (command, file) in files.sorted(by: { $0.key < $1.key }) {
            let options = try acceptedOptions(file)
            XCTAssertFalse(options.isEmpty, command)
            let (usage, body) = try help(command)
            XCTAssertFalse(usage.isEmpty, "\(command): no Usage line")
            let optionList = body.components(separatedBy: "\n").filter { $0.hasPrefix("  -") }.joined(separator: "\n")
            for o in options {
                XCTAssertTrue(mentions(usage, o), "dsl \(command): the Usage lines omit \(o):\n\(usage)")
                XCTAssertTrue(mentions(optionList, o), "dsl \(command) --help does not document \(o)")
            }
        }
    }

    func testEvalHelpDocumentsEveryOption() throws {
        let (_, body) = try help("eval")
        XCTAssertTrue(body.contains("Options:"), body)
        for o in try acceptedOptions("EvalCommand.swift") {
            XCTAssertTrue(body.contains("\n  \(o) "), "dsl eval --help does not document \(o)")
        }
    }

    func testEveryDocumentedOptionIsAccepted() throws {
        for command in ["check", "rewrite", "fmt", "run", "bench", "train", "eval", "draw", "visualize", "export"] {
            let (_, body) = try help(command)
            let documented = body.components(separatedBy: "\n").filter { $0.hasPrefix("  -") }
                .compactMap { $0.split(separator: " ").first.map(String.init) }
            XCTAssertFalse(documented.isEmpty, command)
            for o in Set(documented) {
                // A nonexistent file after the option: whatever else goes wrong, the option
                // itself must not be unknown.
                let r = try DSL.run([command, o, "1", "/nonexistent-dsl-help.dsl"], timeout: 60)
                XCTAssertFalse(r.stderr.contains("unknown option \(o)"), "dsl \(command) documents \(o) but refuses it: \(r.stderr)")
            }
        }
    }
}

private extension Optional where Wrapped == String {
    var orEmpty: String { self ?? "" }
}
