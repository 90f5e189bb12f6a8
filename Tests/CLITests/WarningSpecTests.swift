import Foundation
import XCTest

/// Lints for plausible mistakes: `dsl check` on every file in `warning-specs/` succeeds (exit 0)
/// and prints exactly the warnings named in its `# expect: LINE:COL: warning: MESSAGE` lines,
/// each with its source line and caret; and no spec in `specs/` gets any warning.
final class WarningSpecTests: XCTestCase {
    static let directory = DSL.testsDirectory.appendingPathComponent("warning-specs")

    /// The `# expect: LINE:COL: warning: MESSAGE` lines of a spec.
    static func expectations(in text: String) -> [(line: Int, column: Int, message: String)] {
        text.split(separator: "\n", omittingEmptySubsequences: false).compactMap { l in
            guard l.hasPrefix("# expect: ") else { return nil }
            let parts = l.dropFirst("# expect: ".count).split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, let ln = Int(parts[0]), let col = Int(parts[1]), parts[2] == " warning" else { return nil }
            return (ln, col, String(parts[3].dropFirst()))
        }
    }

    func testEveryWarningSpecReportsExactlyItsWarnings() throws {
        let files = try FileManager.default.contentsOfDirectory(at: Self.directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "dsl" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        XCTAssertGreaterThanOrEqual(files.count, 5)
        for url in files {
            let name = url.lastPathComponent
            let text = String(decoding: try Data(contentsOf: url), as: UTF8.self)
            let expected = Self.expectations(in: text)
            XCTAssertFalse(expected.isEmpty, "\(name) names no '# expect:' warnings")
            let path = "Tests/CLITests/warning-specs/\(name)"
            let r = try DSL.run(["check", path])
            XCTAssertEqual(r.status, 0, "\(name): \(r.summary)")
            let printed = printedDiagnostics(r.stderr, path: path)
            XCTAssertEqual(printed.filter { $0.severity == "error" }.count, 0, "\(name): \(r.stderr)")
            let warnings = printed.filter { $0.severity == "warning" }
            let sourceLines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for e in expected {
                guard let w = warnings.first(where: { $0.line == e.line && $0.column == e.column && $0.message == e.message }) else {
                    XCTFail("\(name): expected \(e.line):\(e.column): warning: \(e.message)\ngot:\n\(r.stderr)")
                    continue
                }
                assertSnippet(w, sourceLines: sourceLines)
            }
            XCTAssertEqual(warnings.count, expected.count, "\(name): unexpected warnings:\n\(r.stderr)")
        }
    }

    /// The shipped specs are what the lints hold up as right: none of them gets a warning (a
    /// ResNet-style 1x1/2 projection, as in strided-cnn-b, is not "dropping a row").
    func testNoShippedSpecGetsAWarning() throws {
        let specs = try FileManager.default.contentsOfDirectory(at: DSL.packageRoot.appendingPathComponent("specs"), includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "dsl" }
        XCTAssertGreaterThanOrEqual(specs.count, 20)
        for url in specs {
            let r = try DSL.run(["check", "specs/\(url.lastPathComponent)"])
            XCTAssertEqual(r.status, 0, r.summary)
            XCTAssertFalse(r.stderr.contains("warning:"), "\(url.lastPathComponent):\n\(r.stderr)")
        }
    }
}
