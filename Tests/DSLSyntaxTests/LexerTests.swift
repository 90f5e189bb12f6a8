import XCTest
@testable import DSLSyntax

final class LexerTests: XCTestCase {
    private func lex(_ text: String) -> ([Token], Lexer) {
        var l = Lexer(file: SourceFile(path: "t.dsl", text: text))
        let tokens = l.tokenize()
        return (tokens, l)
    }

    private func kinds(_ text: String) -> [TokenKind] { lex(text).0.map(\.kind) }
    private func texts(_ text: String) -> [String] { lex(text).0.filter { $0.kind != .end }.map(\.text) }

    func testLayerLine() {
        let (t, l) = lex("conv 3 1 96 pad=valid\n")
        XCTAssertEqual(t.map(\.kind), [.word, .number, .number, .number, .word, .symbol, .word, .newline, .end])
        XCTAssertEqual(t.map(\.text).prefix(7), ["conv", "3", "1", "96", "pad", "=", "valid"])
        XCTAssertTrue(l.diagnostics.items.isEmpty)
    }

    /// A stray byte in a file that is not UTF-8 (read as ISO-8859-1) is named with its byte
    /// value and the file's encoding, once per line; the same letter in a comment is fine.
    func testLatin1ByteOutsideCommentsNamesTheByte() {
        var l = Lexer(file: SourceFile(path: "t.dsl", bytes: Array("conv 3 1 8 ".utf8) + [0xE9, 0xE9] + Array(" # caf".utf8) + [0xE9, 0x0A]))
        _ = l.tokenize()
        XCTAssertEqual(l.diagnostics.items.map(\.message),
                       ["unexpected character 'é' (byte 0xE9 of a file that is not UTF-8, read as ISO-8859-1; specs are plain ASCII outside comments)"])
        XCTAssertEqual(l.diagnostics.items.first?.location.column, 12)
        XCTAssertEqual(l.comments.map(\.text), [" caf\u{E9}"])
    }

    func testDims() {
        XCTAssertEqual(kinds("32x32x3"), [.dims, .end])
        XCTAssertEqual(kinds("224X224X3"), [.dims, .end])
        XCTAssertEqual(kinds("3x3"), [.dims, .end])
        XCTAssertEqual(kinds("x3"), [.word, .end], "a dims token starts with a digit")
        XCTAssertEqual(kinds("3x"), [.word, .end], "and ends with one")
        XCTAssertEqual(kinds("3xx3"), [.word, .end])
    }

    func testNumbersWithFractionsAndExponents() {
        for n in ["0", "96", "0.5", "1e-3", "2.5E+2", "1e5", "6.02e23"] {
            let (t, l) = lex(n)
            XCTAssertEqual(t.map(\.kind), [.number, .end], n)
            XCTAssertEqual(t.first?.text, n)
            XCTAssertTrue(l.diagnostics.items.isEmpty, n)
        }
        // `1e` and `1.5.2` are not numbers; `e` alone is a word.
        XCTAssertEqual(kinds("1e"), [.word, .end])
        XCTAssertEqual(texts("1.5.2"), ["1.5", "", "2"], "the second dot is not ASCII word text")
        XCTAssertEqual(kinds("e-3"), [.word, .symbol, .number, .end])
        // A minus after a number is a symbol, not part of it.
        XCTAssertEqual(texts("8-1"), ["8", "-", "1"])
    }

    func testLabelsStartingWithDigits() {
        let (t, _) = lex("3a: inception<64, 96>")
        XCTAssertEqual(t[0].kind, .word)
        XCTAssertEqual(t[0].text, "3a")
        XCTAssertTrue(t[1].isSymbol(":"))
        XCTAssertTrue(t[3].isSymbol("<"))
        XCTAssertEqual(t.filter { $0.kind == .number }.map(\.text), ["64", "96"])
    }

    func testCommentsAreSkippedAndKept() {
        let (t, l) = lex("# header\nconv 3 1 8 # trailing\n  # indented whole line\n")
        XCTAssertEqual(t.map(\.kind), [.newline, .word, .number, .number, .number, .newline, .newline, .end])
        XCTAssertEqual(l.comments.map(\.text), [" header", " trailing", " indented whole line"])
        XCTAssertEqual(l.comments.map(\.wholeLine), [true, false, true])
        XCTAssertEqual(l.comments.map(\.line), [1, 2, 3])
    }

    func testNonASCIIIsAnErrorOutsideCommentsOnly() {
        let (_, ok) = lex("# 3×3 — α\nconv 3 1 8\n")
        XCTAssertTrue(ok.diagnostics.items.isEmpty)
        let (t, bad) = lex("conv 3 1 8 × 2\n")
        XCTAssertEqual(bad.diagnostics.items.count, 1)
        XCTAssertEqual(bad.diagnostics.items.first?.message, "unexpected character '×' (specs are plain ASCII outside comments)")
        XCTAssertEqual(bad.diagnostics.items.first?.location.column, 12)
        XCTAssertTrue(t.contains { $0.kind == .invalid })
        let (_, ctl) = lex("conv\u{1}\n")
        XCTAssertEqual(ctl.diagnostics.items.first?.message, "unexpected byte 0x01 (specs are plain ASCII outside comments)")
    }

    func testLocationsCountCharacters() {
        let (t, _) = lex("# é\nconv 3 1 8 é x\n  relu")
        let x = t.first { $0.text == "x" }!
        XCTAssertEqual(x.location.line, 2)
        XCTAssertEqual(x.location.column, 14, "é is one column")
        XCTAssertEqual(x.location.offset, 19, "offsets count bytes")
        let relu = t.first { $0.text == "relu" }!
        XCTAssertEqual(relu.location.line, 3)
        XCTAssertEqual(relu.location.column, 3)
        // The lexer's incremental columns agree with SourceFile's own computation everywhere.
        let file = SourceFile(path: "t.dsl", text: "# é\nconv 3 1 8 é x\n  relu")
        for tok in t where tok.kind != .end {
            XCTAssertEqual(file.location(offset: tok.location.offset, length: 1).column, tok.location.column, tok.text)
        }
    }

    func testSymbolsAndSeparators() {
        XCTAssertEqual(texts("(){}<>,=:;+-*/"), ["(", ")", "{", "}", "<", ">", ",", "=", ":", ";", "+", "-", "*", "/"])
        XCTAssertEqual(kinds("a;b\r\nc"), [.word, .symbol, .word, .newline, .word, .end])
    }

    func testLongLineIsLinear() {
        // 200,000 tokens on one line: columns used to be counted from the line start each time.
        let text = String(repeating: "conv 3 1 8 ", count: 50_000)
        let start = Date()
        let (t, _) = lex(text)
        XCTAssertEqual(t.count, 200_001)
        XCTAssertEqual(t[t.count - 2].location.column, 50_000 * 11 - 1)
        XCTAssertLessThan(Date().timeIntervalSince(start), 20, "generous bound: quadratic took minutes")
    }
}
