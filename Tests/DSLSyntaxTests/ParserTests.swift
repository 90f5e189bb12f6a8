import XCTest
@testable import DSLSyntax

/// Prints an expression fully parenthesised, to compare trees without locations.
func show(_ e: Expr) -> String {
    switch e {
    case .number(_, let text, _): return text
    case .name(let n, _): return n
    case .negate(let x, _): return "(-\(show(x)))"
    case .binary(let op, let a, let b, _): return "(\(show(a)) \(op) \(show(b)))"
    }
}

final class ParserTests: XCTestCase {
    private func parse(_ text: String) -> (SpecFile, DiagnosticBag) { Parser.parse(SourceFile(path: "t.dsl", text: text)) }

    private func layer(_ s: Statement) -> (kind: String, words: [String], args: [String], options: [String])? {
        guard case .layer(let k, let w, let a, let o) = s.kind else { return nil }
        return (k, w.map(\.0), a.map(show), o.map { $0.name + ($0.value.map { "=" + show($0) } ?? "") })
    }

    func testHeaderNetworkInputAndLayers() throws {
        let (spec, d) = parse("# title\n# more\n\nnetwork all-cnn-c\ninput 32x32x3\nconv 3 1 96 pad=valid bn # note\n")
        XCTAssertTrue(d.items.isEmpty, "\(d.items)")
        XCTAssertEqual(spec.headerComments, [" title", " more"])
        XCTAssertEqual(spec.statements.count, 3)
        XCTAssertEqual(spec.statements[0].kind, .network("all-cnn-c"))
        XCTAssertEqual(spec.statements[1].kind, .input(height: 32, width: 32, channels: 3))
        let l = try XCTUnwrap(layer(spec.statements[2]))
        XCTAssertEqual(l.kind, "conv")
        XCTAssertEqual(l.args, ["3", "1", "96"])
        XCTAssertEqual(l.options, ["pad=valid", "bn"])
        XCTAssertEqual(spec.statements[2].trailingComment, " note")
    }

    func testPoolKeywordArgumentsAndFlags() throws {
        let (spec, d) = parse("input 8x8x3\npool max 3 2 ceil\npool avg\npool\n")
        XCTAssertTrue(d.items.isEmpty)
        let p = try XCTUnwrap(layer(spec.statements[1]))
        XCTAssertEqual(p.words, ["max"])
        XCTAssertEqual(p.args, ["3", "2"])
        XCTAssertEqual(p.options, ["ceil"])
        XCTAssertEqual(layer(spec.statements[2])?.words, ["avg"])
        XCTAssertEqual(layer(spec.statements[3])?.args, [])
    }

    func testExpressionPrecedence() throws {
        let (spec, d) = parse("input 8x8x3\nconv 3 1 c * 2 + 1 - -(4 / d)\n")
        XCTAssertTrue(d.items.isEmpty)
        XCTAssertEqual(layer(spec.statements[1])?.args, ["3", "1", "(((c * 2) + 1) - (-(4 / d)))"])
    }

    func testLabelsAndInception() throws {
        let (spec, d) = parse("input 28x28x192\n3a: inception<64, 96, 128, 16, 32, 32>\nstem: conv 7 2 64\n")
        XCTAssertTrue(d.items.isEmpty)
        XCTAssertEqual(spec.statements[1].label, "3a")
        XCTAssertEqual(layer(spec.statements[1])?.kind, "inception")
        XCTAssertEqual(layer(spec.statements[1])?.args, ["64", "96", "128", "16", "32", "32"])
        XCTAssertEqual(spec.statements[2].label, "stem")
        XCTAssertEqual(spec.statements[2].labelLocation?.column, 1)
        XCTAssertEqual(spec.statements[2].keywordLocation.column, 7)
    }

    func testBlocksRepeatMergeAndCalls() throws {
        let text = """
        input 32x32x3
        block stage(c, n) {
          repeat n { conv 3 1 c }
          pool
        }
        stage(96, 2)
        add {
          conv 3 1 96
        } {
        }
        concat { conv 1 1 8 } { pool max 3 1 pad=1 ; conv 1 1 8 }
        """
        let (spec, d) = parse(text)
        XCTAssertTrue(d.items.isEmpty, "\(d.items.map(\.message))")
        XCTAssertEqual(spec.statements.count, 5)
        guard case .block(let b) = spec.statements[1].kind else { return XCTFail("not a block") }
        XCTAssertEqual(b.name, "stage")
        XCTAssertEqual(b.parameters.map(\.0), ["c", "n"])
        XCTAssertEqual(b.body.count, 2)
        guard case .repeatLoop(let count, let body) = b.body[0].kind else { return XCTFail("not a repeat") }
        XCTAssertEqual(show(count), "n")
        XCTAssertEqual(body.count, 1)
        guard case .call(let name, let args, let opts) = spec.statements[2].kind else { return XCTFail("not a call") }
        XCTAssertEqual(name, "stage")
        XCTAssertEqual(args.map(show), ["96", "2"])
        XCTAssertTrue(opts.isEmpty)
        guard case .merge(let k, let branches) = spec.statements[3].kind else { return XCTFail("not a merge") }
        XCTAssertEqual(k, "add")
        XCTAssertEqual(branches.map(\.count), [1, 0])
        guard case .merge(let k2, let branches2) = spec.statements[4].kind else { return XCTFail("not a merge") }
        XCTAssertEqual(k2, "concat")
        XCTAssertEqual(branches2.map(\.count), [1, 2])
    }

    func testRecoveryReportsEveryErrorAndKeepsGoodStatements() {
        let text = "input 8x8x3\ncnov 3 1 8\nconv 3 1 8\nconv (3 1 8\nrepeat { relu }\nrelu\n= 3\n"
        let (spec, d) = parse(text)
        XCTAssertEqual(d.items.map { "\($0.location.line):\($0.location.column)" }, ["2:1", "4:9", "5:8", "7:1"])
        XCTAssertEqual(d.items[0].message, "unknown layer 'cnov'; did you mean 'conv'?")
        XCTAssertEqual(spec.statements.map { $0.kind == .invalid }, [false, true, false, true, true, false, true])
        XCTAssertEqual(layer(spec.statements[5])?.kind, "relu")
    }

    func testUnclosedBraceHasANoteAtTheOpening() {
        let (_, d) = parse("input 8x8x3\nrepeat 2 {\n  relu\n")
        XCTAssertEqual(d.items.count, 1)
        XCTAssertEqual(d.items[0].message, "expected '}' to close the repeat body")
        XCTAssertEqual(d.items[0].notes.first?.location.line, 2)
        XCTAssertEqual(d.items[0].notes.first?.location.column, 10)
    }

    func testNestingLimit() {
        let deep = String(repeating: "repeat 1 {\n", count: Parser.maxNesting + 1) + String(repeating: "}\n", count: Parser.maxNesting + 1)
        XCTAssertTrue(parse("input 8x8x3\n" + deep).1.items.contains { $0.message.contains("nesting is too deep") })
        let ok = String(repeating: "repeat 1 {\n", count: Parser.maxNesting - 1) + "relu\n" + String(repeating: "}\n", count: Parser.maxNesting - 1)
        XCTAssertTrue(parse("input 8x8x3\n" + ok).1.items.isEmpty)
    }

    func testEditDistanceCountsSwapsAsOne() {
        XCTAssertEqual(editDistance("cnov", "conv"), 1)
        XCTAssertEqual(editDistance("sofmax", "softmax"), 1)
        XCTAssertEqual(editDistance("pool", "pool"), 0)
        XCTAssertEqual(editDistance("", "gap"), 3)
        XCTAssertEqual(editDistance("kitten", "sitting"), 3)
    }

    func testDiagnosticBagCapsErrorsAndWarningsSeparately() {
        var bag = DiagnosticBag(limit: 3)
        for _ in 0..<10 { bag.warning("w", at: .start) }
        XCTAssertFalse(bag.hasErrors, "warnings alone never make an error")
        XCTAssertEqual(bag.warningCount, 4)
        for _ in 0..<10 { bag.error("e", at: .start) }
        XCTAssertEqual(bag.errorCount, 4)
        XCTAssertTrue(bag.truncated)
        XCTAssertEqual(bag.items.last?.message, "too many errors (3); stopping here")
    }

    func testRendererCutsLongLinesAroundTheCaret() {
        let line = String(repeating: "a ", count: 5000) + "BAD" + String(repeating: " b", count: 5000)
        let file = SourceFile(path: "t.dsl", text: "input 8x8x3\n" + line + "\n")
        let offset = 12 + 10_000
        let d = Diagnostic.error("here", at: file.location(offset: offset, length: 3))
        let out = DiagnosticRenderer(file: file).render(d)
        let lines = out.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines[0], "t.dsl:2:10001: error: here")
        XCTAssertTrue(lines[2].hasPrefix("2 | ..."))
        XCTAssertLessThan(lines[2].count, 120)
        let caret = lines[3]
        let at = caret.distance(from: caret.startIndex, to: caret.firstIndex(of: "^")!)
        let src = lines[2]
        XCTAssertEqual(String(src[src.index(src.startIndex, offsetBy: at)...].prefix(3)), "BAD", "the caret is under the text")
        XCTAssertEqual(caret.filter { $0 == "^" }.count, 3)
    }
}
