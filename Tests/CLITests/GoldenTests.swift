import Foundation
import XCTest

/// `dsl check` tables compared exactly with the files in `good-specs/`: `NAME.expected` is the
/// standard output of `dsl check PATH` run from the package root, where PATH is
/// `Tests/CLITests/good-specs/NAME.dsl` if that exists, else `specs/NAME.dsl`.
///
/// To regenerate after an intended change of the output, run
/// `DSL_UPDATE_GOLDEN=1 swift test --filter GoldenTests` and review the diff.
final class GoldenTests: XCTestCase {
    static let directory = DSL.testsDirectory.appendingPathComponent("good-specs")

    func testGoldenTables() throws {
        let update = ProcessInfo.processInfo.environment["DSL_UPDATE_GOLDEN"] == "1"
        let goldens = try FileManager.default.contentsOfDirectory(at: Self.directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "expected" }.sorted { $0.path < $1.path }
        XCTAssertGreaterThanOrEqual(goldens.count, 3)
        for golden in goldens {
            let name = golden.deletingPathExtension().lastPathComponent
            let local = "Tests/CLITests/good-specs/\(name).dsl"
            let path = FileManager.default.fileExists(atPath: DSL.packageRoot.appendingPathComponent(local).path) ? local : "specs/\(name).dsl"
            let r = try DSL.run(["check", path])
            XCTAssertEqual(r.status, 0, "\(name): \(r.summary)")
            XCTAssertEqual(r.stderr, "", "\(name) printed diagnostics")
            if update {
                try Data(r.stdout.utf8).write(to: golden)
                continue
            }
            let expected = try String(contentsOf: golden, encoding: .utf8)
            if r.stdout != expected {
                let a = expected.split(separator: "\n", omittingEmptySubsequences: false)
                let b = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
                let i = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
                XCTFail("\(name): output differs from \(golden.lastPathComponent) at line \(i + 1):\nexpected: \(i < a.count ? String(a[i]) : "<end>")\n     got: \(i < b.count ? String(b[i]) : "<end>")\n(regenerate with DSL_UPDATE_GOLDEN=1 if intended)")
            }
        }
    }
}
