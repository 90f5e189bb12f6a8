import Foundation
import XCTest

/// What one run of the real `dsl` binary did.
struct DSLRun {
    /// Exit status (or the signal number when `signaled`).
    var status: Int32
    /// True when the process died of a signal (a crash: trap, segfault, abort).
    var signaled: Bool
    /// True when the helper had to kill it after the timeout.
    var timedOut: Bool
    /// Standard output.
    var stdout: String
    /// Standard error.
    var stderr: String
    /// Wall time of the run.
    var seconds: Double

    /// A one-line summary for failure messages.
    var summary: String {
        "status \(status)\(signaled ? " (signal)" : "")\(timedOut ? " (timed out)" : ""); stderr:\n\(stderr.prefix(3000))"
    }
}

/// Runs the real `dsl` executable that `swift build` / `swift test` produced.
enum DSL {
    /// The package root (three levels above this file).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// This test target's folder (`Tests/CLITests`).
    static let testsDirectory: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()

    /// The `dsl` binary: `DSL_BINARY` if set; else the sibling of the test bundle (on Linux the
    /// `.xctest` executable sits in `.build/<triple>/debug/` next to `dsl`; on macOS the bundle
    /// is a directory in the same products folder); else `.build/debug/dsl` under the package.
    static let binary: String? = {
        let fm = FileManager.default
        if let p = ProcessInfo.processInfo.environment["DSL_BINARY"], fm.isExecutableFile(atPath: p) { return p }
        var candidates: [URL] = []
        for b in Bundle.allBundles + [Bundle.main] where b.bundlePath.hasSuffix(".xctest") {
            candidates.append(URL(fileURLWithPath: b.bundlePath).deletingLastPathComponent().appendingPathComponent("dsl"))
        }
        if let a0 = CommandLine.arguments.first {
            var u = URL(fileURLWithPath: a0).resolvingSymlinksInPath()
            // macOS: .../debug/dslPackageTests.xctest/Contents/MacOS/dslPackageTests
            while u.pathComponents.count > 1 {
                if u.pathExtension == "xctest" { candidates.append(u.deletingLastPathComponent().appendingPathComponent("dsl")); break }
                u.deleteLastPathComponent()
            }
            candidates.append(URL(fileURLWithPath: a0).deletingLastPathComponent().appendingPathComponent("dsl"))
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/dsl"))
        return candidates.map(\.path).first { fm.isExecutableFile(atPath: $0) }
    }()

    /// Runs `dsl` with arguments; output goes to temporary files (no pipe can fill up). The
    /// timeout only turns a hang into a test failure instead of a stuck CI job; it does not
    /// assert speed.
    static func run(_ arguments: [String], cwd: URL? = nil, timeout: Double = 120, stdin: URL? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws -> DSLRun {
        guard let binary else {
            XCTFail("cannot find the dsl binary; run 'swift build' first or set DSL_BINARY", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let outURL = tmp.appendingPathComponent("out"), errURL = tmp.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outURL), errHandle = try FileHandle(forWritingTo: errURL)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        p.currentDirectoryURL = cwd ?? packageRoot
        p.standardOutput = outHandle
        p.standardError = errHandle
        p.standardInput = try stdin.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
        let done = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in done.signal() }
        let start = Date()
        try p.run()
        var timedOut = false
        if done.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(p.processIdentifier, SIGKILL)
            done.wait()
        }
        try outHandle.close(); try errHandle.close()
        let seconds = Date().timeIntervalSince(start)
        let stdout = String(decoding: (try? Data(contentsOf: outURL)) ?? Data(), as: UTF8.self)
        let stderr = String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self)
        return DSLRun(status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal,
                      timedOut: timedOut, stdout: stdout, stderr: stderr, seconds: seconds)
    }

    /// This test process's scratch directory (`dsl-cli-tests-PID` in the temporary directory),
    /// removed with everything in it when the process exits, so that the runs leave nothing behind.
    static let scratch: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-cli-tests-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        atexit {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-cli-tests-\(getpid())")
            try? FileManager.default.removeItem(at: dir)
        }
        return dir
    }()

    /// Writes `data` to a fresh temporary file named `name` (in a directory of its own under
    /// `scratch`) and returns its path.
    static func temporaryFile(_ name: String, _ data: Data) throws -> String {
        let dir = scratch.appendingPathComponent(UUID().uuidString)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let url = dir.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }
}

/// A diagnostic as the binary printed it: the header line and the two lines that follow.
struct PrintedDiagnostic {
    var line: Int
    var column: Int
    var severity: String
    var message: String
    /// The lines printed after the header (gutter, source line, caret line).
    var snippet: [String]
}

/// Finds every `PATH:LINE:COL: SEVERITY: MESSAGE` header in `stderr` with the lines after it.
func printedDiagnostics(_ stderr: String, path: String) -> [PrintedDiagnostic] {
    let lines = stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var result: [PrintedDiagnostic] = []
    for (i, l) in lines.enumerated() where l.hasPrefix(path + ":") {
        let rest = l.dropFirst(path.count + 1)
        let parts = rest.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count == 4, let ln = Int(parts[0]), let col = Int(parts[1]) else { continue }
        let severity = parts[2].trimmingCharacters(in: .whitespaces)
        let message = String(parts[3].dropFirst())
        result.append(PrintedDiagnostic(line: ln, column: col, severity: severity, message: message,
                                        snippet: Array(lines[(i + 1)..<min(lines.count, i + 4)])))
    }
    return result
}

/// Asserts that a printed diagnostic is followed by `  |`, `N | source`, and a caret line.
func assertSnippet(_ d: PrintedDiagnostic, sourceLines: [String], file: StaticString = #filePath, line: UInt = #line) {
    guard d.snippet.count == 3 else { return XCTFail("diagnostic \(d.line):\(d.column) has no source snippet", file: file, line: line) }
    XCTAssertTrue(d.snippet[0].hasSuffix(" |"), "expected gutter line, got '\(d.snippet[0])'", file: file, line: line)
    XCTAssertTrue(d.snippet[1].hasPrefix("\(d.line) | "), "expected source line \(d.line), got '\(d.snippet[1])'", file: file, line: line)
    let caret = d.snippet[2]
    XCTAssertTrue(caret.contains("^") && caret.drop { $0 != "|" }.dropFirst().allSatisfy { $0 == " " || $0 == "^" },
                  "expected caret line, got '\(caret)'", file: file, line: line)
    // The printed source is the file's line (ASCII specs print it unchanged, cut at 100 columns).
    if d.line >= 1 && d.line <= sourceLines.count {
        let src = sourceLines[d.line - 1]
        let shown = String(d.snippet[1].dropFirst("\(d.line) | ".count))
        if src.utf8.allSatisfy({ $0 >= 32 && $0 < 127 }) && src.count <= 100 {
            XCTAssertEqual(shown, src, "source line \(d.line) printed wrongly", file: file, line: line)
        }
        // The caret points at the reported column.
        if let first = caret.firstIndex(of: "^"), !shown.hasPrefix("..."), src.count <= 100 {
            let caretCol = caret.distance(from: caret.startIndex, to: first) - (d.snippet[1].count - shown.count) + 1
            XCTAssertEqual(caretCol, d.column, "caret is not under column \(d.column)", file: file, line: line)
        }
    }
}
