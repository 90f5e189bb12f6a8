import Foundation
import XCTest

/// Hostile inputs through the binary: each must end with exit 1 (or 2 for usage) and a clear
/// message, never a crash or a hang. The helper's timeout only fails a hung run; it does not
/// assert speed.
final class RobustnessTests: XCTestCase {
    /// Runs `dsl check` on `data` and asserts a clean failure whose stderr contains `message`.
    @discardableResult
    private func assertRejected(_ data: Data, _ message: String, name: String = "spec.dsl", status: Int32 = 1,
                                file: StaticString = #filePath, line: UInt = #line) throws -> DSLRun {
        let path = try DSL.temporaryFile(name, data)
        let r = try DSL.run(["check", path])
        XCTAssertFalse(r.signaled, "crashed: \(r.summary)", file: file, line: line)
        XCTAssertFalse(r.timedOut, "hung", file: file, line: line)
        XCTAssertEqual(r.status, status, r.summary, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(message), "expected '\(message)' in:\n\(r.stderr.prefix(2000))", file: file, line: line)
        XCTAssertEqual(r.stdout, "", file: file, line: line)
        // Output stays readable: snippets are cut, errors are capped.
        XCTAssertLessThan(r.stderr.utf8.count, 100_000, "stderr is \(r.stderr.utf8.count) bytes", file: file, line: line)
        return r
    }

    func testEmptyFile() throws {
        try assertRejected(Data(), "1:1: error: missing 'input' declaration")
    }

    func testOnlyComments() throws {
        try assertRejected(Data("# nothing here\n   # still nothing\n\n".utf8), "missing 'input' declaration")
    }

    func testTenMegabyteLineOfJunk() throws {
        let r = try assertRejected(Data(repeating: UInt8(ascii: "x"), count: 10_000_000), "1:1: error: unknown layer 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'")
        XCTAssertTrue(r.stderr.contains("1 | xxxx"), "the snippet is shown, cut")
    }

    func testTenMegabyteValidLookingLine() throws {
        var s = "input 32x32x3\n"
        s += String(repeating: "conv 3 1 8 ", count: 900_000)
        let r = try assertRejected(Data(s.utf8), "2:12: error: too many arguments to 'conv'")
        XCTAssertTrue(r.stderr.hasSuffix("1 error in \(r.stderr.split(separator: " ").last ?? "")"))
    }

    func testTenMegabytesOfParentheses() throws {
        try assertRejected(Data(String(repeating: "( ", count: 5_000_000).utf8), "1:1: error: expected a layer or statement, found '('")
    }

    func testFiveThousandNestedBraces() throws {
        let s = "input 8x8x3\n" + String(repeating: "repeat 1 {\n", count: 5000) + "relu\n" + String(repeating: "}\n", count: 5000)
        try assertRejected(Data(s.utf8), "nesting is too deep (more than 64 levels)")
        // Bare braces inside a branch are not statements: one error, the rest skipped.
        let bare = "input 8x8x3\nconcat " + String(repeating: "{ ", count: 5000)
        try assertRejected(Data(bare.utf8), "2:10: error: expected a layer or statement, found '{'")
        let branches = "input 8x8x3\n" + String(repeating: "concat {\n", count: 5000)
        try assertRejected(Data(branches.utf8), "nesting is too deep")
    }

    func testDeepParentheses() throws {
        let s = "input 8x8x3\nconv " + String(repeating: "(", count: 5000) + "3" + String(repeating: ")", count: 5000) + " 1 8\n"
        try assertRejected(Data(s.utf8), "nesting is too deep")
        let minus = "input 8x8x3\nconv 3 1 " + String(repeating: "-", count: 5000) + "8\n"
        try assertRejected(Data(minus.utf8), "nesting is too deep")
    }

    func testBinaryJunk() throws {
        // A fixed-seed generator (SplitMix64) so the bytes are the same on every run.
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state &+= 0x9E3779B97F4A7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
            z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
            return z ^ (z >> 31)
        }
        for size in [1, 17, 4096, 200_000] {
            let bytes = (0..<size).map { _ in UInt8(truncatingIfNeeded: next()) }
            let path = try DSL.temporaryFile("junk\(size).dsl", Data(bytes))
            let r = try DSL.run(["check", path])
            XCTAssertFalse(r.signaled, "size \(size) crashed: \(r.summary)")
            XCTAssertEqual(r.status, 1, "size \(size): \(r.summary)")
            XCTAssertTrue(r.stderr.contains("error"), "size \(size)")
            XCTAssertLessThanOrEqual(r.stderr.components(separatedBy: ": error: ").count - 1, 101, "errors are capped at 100")
        }
        try assertRejected(Data([0, 0, 0, 10, 0]), "unexpected byte 0x00")
    }

    func testDirectoryInsteadOfFile() throws {
        let dir = DSL.scratch.appendingPathComponent("dir-\(UUID().uuidString).dsl")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let r = try DSL.run(["check", dir.path])
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("is a directory"), r.stderr)
    }

    func testMissingFile() throws {
        let r = try DSL.run(["check", "/nonexistent/dir/no-such-spec.dsl"])
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("no-such-spec.dsl: no such file"), r.stderr)
    }

    func testHugeNumbers() throws {
        try assertRejected(Data("input 8x8x3\nconv 3 1 99999999999999999999999\n".utf8), "2:10: error: number '99999999999999999999999' is too large")
        try assertRejected(Data("input 99999999999999999999999x8x3\n".utf8), "must be a whole number from 1 to 1048576")
        try assertRejected(Data("input 8x8x3\nrepeat 99999999999999999999999 {\nrelu\n}\n".utf8), "is too large")
        try assertRejected(Data("input 8x8x3\nblock f(c) {\nconv 3 1 c * c * c * c\n}\nf(100000)\n".utf8), "value is too large")
    }

    func testHugeButCountableNetworksDoNotOverflow() throws {
        // Just under the counting limits, at the largest batch: the memory figures (bytes =
        // elements x 3 x batch x 4) still fit in 64 bits. These used to trap on overflow.
        let path = try DSL.temporaryFile("huge.dsl", Data("input 92681x92681x4\nconv 1 1 4 bn\n".utf8))
        for format in ["table", "json"] {
            let r = try DSL.run(["check", path, "--batch", "1000000", "--format", format])
            XCTAssertFalse(r.signaled, r.summary)
            XCTAssertEqual(r.status, 0, r.summary)
        }
        try assertRejected(Data("input 1048576x1048576x1048576\nrelu\n".utf8), "the input has 1152921504606846976 elements")
    }

    func testExpansionLimitIsReportedWithoutBuildingTheNetwork() throws {
        // Three nested repeats of 100,000: 10^15 layers. Must be reported, not attempted.
        let s = "input 8x8x3\nrepeat 100000 {\nrepeat 100000 {\nrepeat 100000 {\nrelu\n}\n}\n}\n"
        try assertRejected(Data(s.utf8), "the network expands to more than 2000000 layers")
        // The same with an error inside: the error once, no expansion at all.
        let poisoned = "input 8x8x3\nrepeat 100000 {\nrepeat 100000 {\nconv 3 1 0\n}\n}\n"
        let r = try assertRejected(Data(poisoned.utf8), "number of filters must be at least 1")
        XCTAssertEqual(r.stderr.components(separatedBy: ": error: ").count - 1, 1, r.stderr)
        // Empty bodies and empty blocks do nothing, however often.
        let empty = "input 8x8x3\nblock e() {\n}\nrepeat 100000 {\nrepeat 100000 {\nrepeat 100000 {\n}\n}\n}\nconv 3 1 8\n"
        let ok = try DSL.run(["check", try DSL.temporaryFile("empty.dsl", Data(empty.utf8))])
        XCTAssertEqual(ok.status, 0, ok.summary)
    }

    func testLineEndingsAndNoFinalNewline() throws {
        let crlf = "network crlf\r\ninput 8x8x3\r\nconv 3 1 8 # comment\r\ngap\r\n"
        let r = try DSL.run(["check", try DSL.temporaryFile("crlf.dsl", Data(crlf.utf8))])
        XCTAssertEqual(r.status, 0, r.summary)
        let noNewline = "input 8x8x3\nconv 3 1 8"
        let r2 = try DSL.run(["check", try DSL.temporaryFile("nonl.dsl", Data(noNewline.utf8))])
        XCTAssertEqual(r2.status, 0, r2.summary)
        try assertRejected(Data("input 8x8x3\nconv 3 1".utf8), "2:8: error: 'conv' expects 3 arguments")
    }
}
