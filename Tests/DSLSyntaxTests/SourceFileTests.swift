import Foundation
import XCTest
@testable import DSLSyntax

/// Issue #11: SourceFile reads any bytes without loss and says how to write text back.
final class SourceFileTests: XCTestCase {
    func testUTF8FileIsUnchanged() {
        let f = SourceFile(path: "a.dsl", bytes: Array("input 8x8x3  # 3×3, α\n".utf8))
        XCTAssertEqual(f.encoding, .utf8)
        XCTAssertEqual(f.bytes, f.rawBytes)
        XCTAssertEqual(f.lineEnding, .lf)
        XCTAssertEqual(f.encode("input 8x8x3  # 3×3, α\n"), f.rawBytes)
    }

    func testInvalidUTF8IsReadAsLatin1WithoutLoss() {
        let raw: [UInt8] = Array("input 8x8x3  # caf".utf8) + [0xE9, 0xFF, 0x80, 0x00] + Array("\n".utf8)
        let f = SourceFile(path: "a.dsl", bytes: raw)
        XCTAssertEqual(f.encoding, .latin1)
        XCTAssertEqual(f.rawBytes, raw)
        var lexer = Lexer(file: f)
        _ = lexer.tokenize()
        XCTAssertEqual(lexer.comments.map(\.text), [" café\u{FF}\u{80}\u{0}"])
        XCTAssertFalse(lexer.diagnostics.hasErrors)
        // Round trip: the text decoded is encoded back to the same bytes.
        XCTAssertEqual(f.encode(String(decoding: f.bytes, as: UTF8.self)), raw)
        // A character ISO-8859-1 cannot hold.
        XCTAssertNil(f.encode("# α\n"))
        // Columns count characters: 'x' after 'é' is column 3.
        let g = SourceFile(path: "b.dsl", bytes: [0xE9, 0x20, UInt8(ascii: "x")])
        XCTAssertEqual(g.location(offset: 3, length: 1).column, 3)
    }

    func testOverlongAndSurrogateSequencesAreNotUTF8() {
        XCTAssertFalse(SourceFile.isValidUTF8([0xC0, 0xAF]))
        XCTAssertFalse(SourceFile.isValidUTF8([0xED, 0xA0, 0x80]))
        XCTAssertFalse(SourceFile.isValidUTF8([0xE2, 0x82]))
        XCTAssertTrue(SourceFile.isValidUTF8(Array("×α🙂".utf8)))
    }

    func testLineEndingIsWhatMostLinesUse() {
        XCTAssertEqual(SourceFile(path: "", text: "a\r\nb\r\nc\n").lineEnding, .crlf)
        XCTAssertEqual(SourceFile(path: "", text: "a\r\nb\nc\n").lineEnding, .lf)
        XCTAssertEqual(SourceFile(path: "", text: "a\r\nb\n").lineEnding, .crlf)   // tie: the first line's
        XCTAssertEqual(SourceFile(path: "", text: "no newline").lineEnding, .lf)
        let f = SourceFile(path: "", text: "a\r\n")
        XCTAssertEqual(f.encode("x\ny\r\n"), Array("x\r\ny\r\n".utf8))
    }

    func testReadCapsTheSize() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let big = dir.appendingPathComponent("big.dsl")
        try Data(count: SourceFile.maxBytes + 1).write(to: big)
        XCTAssertThrowsError(try SourceFile.read(path: big.path)) { e in
            XCTAssertEqual((e as? SourceError)?.message, "\(big.path): the file is larger than 16 MiB (16777216 bytes), the most a spec file may have")
        }
        XCTAssertThrowsError(try SourceFile.read(path: dir.path)) { e in
            XCTAssertEqual((e as? SourceError)?.message, "\(dir.path): is a directory, not a spec file")
        }
        XCTAssertThrowsError(try SourceFile.read(path: dir.appendingPathComponent("none.dsl").path)) { e in
            XCTAssertTrue((e as? SourceError)?.message.hasSuffix("none.dsl: no such file") ?? false)
        }
    }

    func testWriteAtomicallyCreatesAndReplaces() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = dir.appendingPathComponent("new.dsl").path
        try SourceFile.writeAtomically(Array("one\n".utf8), to: p)
        XCTAssertEqual(try String(contentsOfFile: p, encoding: .utf8), "one\n")
        XCTAssertEqual(chmod(p, 0o604), 0)
        try SourceFile.writeAtomically(Array("two\n".utf8), to: p)
        XCTAssertEqual(try String(contentsOfFile: p, encoding: .utf8), "two\n")
        var st = stat()
        XCTAssertEqual(stat(p, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o604)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["new.dsl"])
        XCTAssertThrowsError(try SourceFile.writeAtomically([], to: dir.path))
        // A dangling link: the file it names is created, the link stays.
        let link = dir.appendingPathComponent("link.dsl").path
        XCTAssertEqual(symlink("made.dsl", link), 0)
        try SourceFile.writeAtomically(Array("three\n".utf8), to: link)
        XCTAssertEqual(try String(contentsOfFile: dir.appendingPathComponent("made.dsl").path, encoding: .utf8), "three\n")
        XCTAssertEqual(lstat(link, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK)
    }
}
