import Foundation
import XCTest

/// Runs `dsl check` on every file in `bad-specs/`. Each file names the errors it must produce in
/// comment lines `# expect: LINE:COL: error: MESSAGE-SUBSTRING`; the run must exit 1 without a
/// crash, print each expected error as `PATH:LINE:COL: error: ...` followed by the source line
/// and a caret line, and print no other error.
final class BadSpecTests: XCTestCase {
    static let directory = DSL.testsDirectory.appendingPathComponent("bad-specs")

    struct Expectation: CustomStringConvertible {
        var line: Int, column: Int, message: String
        var description: String { "\(line):\(column): error: \(message)" }
    }

    /// The `# expect:` lines of a spec.
    static func expectations(in text: String) -> [Expectation] {
        text.split(separator: "\n", omittingEmptySubsequences: false).compactMap { l in
            guard l.hasPrefix("# expect: ") else { return nil }
            let rest = l.dropFirst("# expect: ".count)
            let parts = rest.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, let ln = Int(parts[0]), let col = Int(parts[1]), parts[2] == " error" else { return nil }
            return Expectation(line: ln, column: col, message: String(parts[3].dropFirst()))
        }
    }

    static func specFiles() throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "dsl" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    func testThereAreEnoughBadSpecs() throws {
        XCTAssertGreaterThanOrEqual(try Self.specFiles().count, 45)
    }

    func testEveryBadSpecReportsExactlyItsErrors() throws {
        let files = try Self.specFiles()
        XCTAssertFalse(files.isEmpty)
        var multiErrorFiles = 0
        for url in files {
            let name = url.lastPathComponent
            let data = try Data(contentsOf: url)
            let text = String(decoding: data, as: UTF8.self)
            let expected = Self.expectations(in: text)
            XCTAssertFalse(expected.isEmpty, "\(name) names no '# expect:' diagnostics")
            if expected.count >= 3 { multiErrorFiles += 1 }
            let sourceLines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let path = "Tests/CLITests/bad-specs/\(name)"
            let r = try DSL.run(["check", path])
            XCTAssertFalse(r.signaled, "\(name) crashed: \(r.summary)")
            XCTAssertFalse(r.timedOut, "\(name) hung")
            XCTAssertEqual(r.status, 1, "\(name): \(r.summary)")
            XCTAssertEqual(r.stdout, "", "\(name) printed a report despite errors")
            let printed = printedDiagnostics(r.stderr, path: path)
            let errors = printed.filter { $0.severity == "error" }
            for e in expected {
                guard let d = errors.first(where: { $0.line == e.line && $0.column == e.column && $0.message.contains(e.message) }) else {
                    XCTFail("\(name): expected '\(e)' but got:\n\(errors.map { "\($0.line):\($0.column): \($0.message)" }.joined(separator: "\n"))")
                    continue
                }
                assertSnippet(d, sourceLines: sourceLines)
            }
            XCTAssertEqual(errors.count, expected.count, "\(name): unexpected extra errors:\n\(r.stderr)")
            // Notes carry their own snippets too.
            for n in printed where n.severity == "note" { assertSnippet(n, sourceLines: sourceLines) }
            XCTAssertTrue(r.stderr.hasSuffix("\(errors.count) error\(errors.count == 1 ? "" : "s") in \(path)\n"),
                          "\(name): missing the error count line:\n\(r.stderr.suffix(300))")
        }
        XCTAssertGreaterThanOrEqual(multiErrorFiles, 3, "need several files with 3+ errors reported in one run")
    }

    /// The expectation parser itself: a wrong line, column or message must not match.
    func testExpectationsAreParsedAndCanFail() {
        let e = Self.expectations(in: "# x\n# expect: 3:8: error: 'conv' expects 3 arguments\nconv\n# expect: bogus\n")
        XCTAssertEqual(e.count, 1)
        XCTAssertEqual(e.first?.line, 3)
        XCTAssertEqual(e.first?.column, 8)
        XCTAssertEqual(e.first?.message, "'conv' expects 3 arguments")
        let printed = printedDiagnostics("a.dsl:3:9: error: 'conv' expects 3 arguments\n  |\n3 | x\n  | ^\n", path: "a.dsl")
        XCTAssertEqual(printed.count, 1)
        XCTAssertFalse(printed.contains { $0.line == 3 && $0.column == 8 })
    }
}
