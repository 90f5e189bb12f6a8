import DSLIR
import DSLPasses
import DSLSyntax
import Foundation
import XCTest

/// The repository root (tests read `specs/` and the golden files).
let repoRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func specPath(_ name: String) -> String { repoRoot.appendingPathComponent("specs/\(name)").path }

func specText(_ name: String) throws -> String { try String(contentsOfFile: specPath(name), encoding: .utf8) }

func parse(_ text: String, path: String = "test.dsl") -> (SpecFile, DiagnosticBag) {
    Parser.parse(SourceFile(path: path, text: text))
}

/// The elaborated graph of spec text; fails the test on errors.
func graph(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> (Graph, NetworkCost)? {
    let c = Frontend.check(text: text)
    guard let g = c.graph, let cost = c.cost else {
        XCTFail("spec has errors: \(c.diagnostics.items.map(\.message))\n\(text)", file: file, line: line)
        return nil
    }
    return (g, cost)
}

/// Ops and shapes in order, ignoring names and locations: what "the same layers" means.
func layerSignature(_ g: Graph) -> [String] {
    g.nodes.map { n in "\(n.op) \(n.inputs) -> \(n.shape)" }
}
