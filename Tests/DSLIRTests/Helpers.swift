import XCTest
import DSLSyntax
@testable import DSLIR

/// The package root, from this file's path.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// Checks spec text; fails the test on any error.
func build(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> (Graph, NetworkCost) {
    let c = Frontend.check(text: text)
    let errors = c.diagnostics.items.filter { $0.severity == .error }
    XCTAssertTrue(errors.isEmpty, "errors: \(errors.map { "\($0.location): \($0.message)" })", file: file, line: line)
    let g = try XCTUnwrap(c.graph, file: file, line: line)
    return (g, try XCTUnwrap(c.cost, file: file, line: line))
}

/// Checks one of the repository's specs.
func buildSpec(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> (Graph, NetworkCost) {
    let path = packageRoot.appendingPathComponent("specs/\(name).dsl").path
    let c = Frontend.check(try SourceFile.read(path: path))
    XCTAssertFalse(c.diagnostics.hasErrors, "\(name): \(c.diagnostics.items.map(\.message))", file: file, line: line)
    let g = try XCTUnwrap(c.graph, file: file, line: line)
    return (g, try XCTUnwrap(c.cost, file: file, line: line))
}

/// The error messages for spec text.
func errors(_ text: String) -> [String] {
    Frontend.check(text: text).diagnostics.items.filter { $0.severity == .error }.map(\.message)
}

/// The warning messages for spec text.
func warnings(_ text: String) -> [String] {
    Frontend.check(text: text).diagnostics.items.filter { $0.severity == .warning }.map(\.message)
}

extension Graph {
    /// The node with a name.
    func node(_ name: String) -> Node? { nodes.first { $0.name == name } }
}
