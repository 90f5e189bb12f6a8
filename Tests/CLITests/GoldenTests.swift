import Foundation
import XCTest

/// `dsl check` tables compared exactly with the files in `good-specs/`: `NAME.expected` is the
/// standard output of `dsl check PATH` run from the package root, where PATH is
/// `Tests/CLITests/good-specs/NAME.dsl` if that exists, else `specs/NAME.dsl`.
///
/// A `NAME.args` file beside `NAME.expected` gives another command instead (any `dsl` command
/// whose standard output is compared), in lines `args: ARG ARG...` (split at blanks; run from
/// the package root), optionally `status: N` (the exit status, 0 unless given; standard error
/// must be empty only for 0), `stderr: any` (standard error is not checked: a rewrite's report
/// or notes) and `stdin: PATH` (a file fed to standard input); `#` starts a comment line.
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
            let argsFile = golden.deletingPathExtension().appendingPathExtension("args")
            var arguments: [String]
            var status: Int32 = 0
            var stdin: URL?
            var anyStderr = false
            if FileManager.default.fileExists(atPath: argsFile.path) {
                arguments = []
                for line in try String(contentsOf: argsFile, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
                    if line.hasPrefix("args:") { arguments = line.dropFirst(5).split(separator: " ").map(String.init) }
                    else if line.hasPrefix("status:") { status = Int32(line.dropFirst(7).trimmingCharacters(in: .whitespaces)) ?? -1 }
                    else if line == "stderr: any" { anyStderr = true }
                    else if line.hasPrefix("stdin:") { stdin = DSL.packageRoot.appendingPathComponent(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) }
                    else { XCTFail("\(argsFile.lastPathComponent): unknown line '\(line)'") }
                }
                XCTAssertFalse(arguments.isEmpty, "\(argsFile.lastPathComponent) has no 'args:' line")
            } else {
                let local = "Tests/CLITests/good-specs/\(name).dsl"
                let path = FileManager.default.fileExists(atPath: DSL.packageRoot.appendingPathComponent(local).path) ? local : "specs/\(name).dsl"
                arguments = ["check", path]
            }
            let r = try DSL.run(arguments, stdin: stdin)
            XCTAssertEqual(r.status, status, "\(name): \(r.summary)")
            if status == 0 && !anyStderr { XCTAssertEqual(r.stderr, "", "\(name) printed diagnostics") }
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
