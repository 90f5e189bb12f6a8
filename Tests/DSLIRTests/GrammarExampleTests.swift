import XCTest
import DSLSyntax
@testable import DSLIR

/// Every example in Grammar.md goes through the real front end: ```dsl blocks must have no
/// error; ```dsl-error blocks must report an error containing each `# error:` comment's text,
/// and no others.
final class GrammarExampleTests: XCTestCase {
    struct Example { var line: Int; var kind: String; var text: String }

    static func examples() throws -> [Example] {
        let text = try String(contentsOf: packageRoot.appendingPathComponent("Grammar.md"), encoding: .utf8)
        var result: [Example] = []
        var current: Example?
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if var c = current {
                if line == "```" { result.append(c); current = nil } else { c.text += line + "\n"; current = c }
            } else if line == "```dsl" || line == "```dsl-error" {
                current = Example(line: i + 1, kind: String(line.dropFirst(3)), text: "")
            }
        }
        XCTAssertNil(current, "unclosed example")
        return result
    }

    func testEveryExampleChecks() throws {
        let all = try Self.examples()
        XCTAssertGreaterThanOrEqual(all.filter { $0.kind == "dsl" }.count, 15)
        XCTAssertGreaterThanOrEqual(all.filter { $0.kind == "dsl-error" }.count, 8)
        for e in all {
            let c = Frontend.check(text: e.text, path: "Grammar.md:\(e.line)")
            let errors = c.diagnostics.items.filter { $0.severity == .error }.map(\.message)
            if e.kind == "dsl" {
                XCTAssertEqual(errors, [], "Grammar.md example at line \(e.line)")
                XCTAssertNotNil(c.graph, "Grammar.md example at line \(e.line)")
            } else {
                let wanted = e.text.split(separator: "\n").filter { $0.hasPrefix("# error: ") }.map { String($0.dropFirst("# error: ".count)) }
                XCTAssertFalse(wanted.isEmpty, "Grammar.md error example at line \(e.line) names no error")
                for w in wanted {
                    XCTAssertTrue(errors.contains { $0.contains(w) }, "Grammar.md:\(e.line): no error '\(w)' in \(errors)")
                }
                XCTAssertEqual(errors.count, wanted.count, "Grammar.md:\(e.line): \(errors)")
            }
        }
    }

    /// Every construct of the grammar appears in at least one passing example.
    func testEveryConstructHasAnExample() throws {
        let good = try Self.examples().filter { $0.kind == "dsl" }.map(\.text).joined(separator: "\n")
        let spec = Parser.parse(SourceFile(path: "all", text: good)).0
        var seen = Set<String>()
        func visit(_ ss: [Statement]) {
            for s in ss {
                if s.label != nil { seen.insert("label") }
                switch s.kind {
                case .network: seen.insert("network")
                case .input: seen.insert("input")
                case .block(let b): seen.insert("block"); visit(b.body)
                case .repeatLoop(_, let b): seen.insert("repeat"); visit(b)
                case .merge(let k, let bs, _): seen.insert(k); bs.forEach(visit)
                case .call(_, let args, _): seen.insert("call"); if args.contains(where: { if case .binary = $0 { return true }; return false }) { seen.insert("expression") }
                case .layer(let k, let words, _, let options):
                    seen.insert(k)
                    for w in words { seen.insert("pool " + w.0) }
                    for o in options { seen.insert("option " + o.name) }
                case .invalid: seen.insert("invalid")
                }
            }
        }
        visit(spec.statements)
        let required = ["network", "input", "block", "repeat", "concat", "add", "call", "label", "expression",
                        "conv", "pool", "gap", "bn", "relu", "leaky", "dropout", "fc", "softmax", "inception", "pyramid",
                        "pool max", "pool avg", "option pad", "option same", "option valid", "option act", "option slope",
                        "option bn", "option bias", "option nobias", "option ceil", "option linear", "option relu",
                        "option leaky", "option bottleneck", "option widen"]
        for r in required { XCTAssertTrue(seen.contains(r), "Grammar.md has no passing example of \(r)") }
        XCTAssertFalse(seen.contains("invalid"))
    }
}
