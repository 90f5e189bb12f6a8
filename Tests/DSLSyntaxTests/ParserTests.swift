import XCTest
@testable import DSLSyntax

/// Prints an expression fully parenthesised, to compare trees without locations.
func show(_ e: Expr) -> String {
    switch e {
    case .number(_, let text, _): return text
    case .name(let n, _): return n
    case .negate(let x, _): return "(-\(show(x)))"
    case .binary(let op, let a, let b, _): return "(\(show(a)) \(op) \(show(b)))"
    case .dims(let v, _, _): return v.map(String.init).joined(separator: "x")
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
        guard case .merge(let k, let branches, _) = spec.statements[3].kind else { return XCTFail("not a merge") }
        XCTAssertEqual(k, "add")
        XCTAssertEqual(branches.map(\.count), [1, 0])
        guard case .merge(let k2, let branches2, _) = spec.statements[4].kind else { return XCTFail("not a merge") }
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
        XCTAssertEqual(d.items[0].message, "the repeat body is not closed: expected '}'")
        XCTAssertEqual(d.items[0].location.line, 2)
        XCTAssertEqual(d.items[0].location.column, 10)
        XCTAssertEqual(d.items[0].notes.first?.message, "the file ends here")
    }

    /// Issue #15: a branch left open is reported at its '{', found by indentation, not at the
    /// end of the file (where the block around it ends).
    func testUnclosedBranchIsReportedAtItsBrace() {
        let text = "input 8x8x3\nblock r(c) {\n  add {\n    conv 3 1 c\n  } {\n    conv 1 1 c\n  relu\n}\nr(8)\n"
        let (_, d) = parse(text)
        XCTAssertEqual(d.items.count, 1)
        XCTAssertEqual(d.items[0].message, "branch 2 of 'add' is not closed: expected '}'")
        XCTAssertEqual("\(d.items[0].location)", "5:5")
        XCTAssertEqual(d.items[0].notes.map { "\($0.location)" }, ["7:3", "8:1"])
    }

    /// Other frameworks' layer names: `maxpool 2` is `pool max 2`, arguments kept.
    func testLayerAliasesSuggestTheLayerAsWrittenHere() {
        XCTAssertEqual(Parser.layerAlias(for: "MaxPool2d"), "pool max")
        XCTAssertEqual(Parser.layerAlias(for: "Dense"), "fc")
        XCTAssertEqual(Parser.layerAlias(for: "flatten"), "")
        XCTAssertNil(Parser.layerAlias(for: "conv"))
        let (_, d) = parse("input 8x8x3\nmaxpool 2 pad=1\n")
        XCTAssertEqual(d.items.first?.message, "unknown layer 'maxpool'; did you mean 'pool max 2 pad=1'?")
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

    // MARK: - Issue #11: limits that keep hostile input from crashing or exhausting memory

    func testExpressionsHaveAtMostMaxOperators() throws {
        // 1,000 operators are fine, counted across parentheses and unary minus.
        let ok = "input 8x8x3\nconv 3 1 (1" + String(repeating: "+1", count: Parser.maxOperators - 2) + ")*-1\n"
        XCTAssertTrue(parse(ok).1.items.isEmpty, "\(parse(ok).1.items.map(\.message))")
        // One more is an error at the operator that crosses the limit; the statement is dropped.
        let tooMany = "input 8x8x3\nconv 3 1 1" + String(repeating: "+1", count: Parser.maxOperators + 1) + "\nrelu\n"
        let (spec, d) = parse(tooMany)
        XCTAssertEqual(d.items.map(\.message), ["expression is too long (more than 1000 operators)"])
        XCTAssertEqual(d.items.first?.location.line, 2)
        XCTAssertEqual(d.items.first?.location.column, 11 + 2 * Parser.maxOperators, "the 1001st '+'")
        XCTAssertEqual(spec.statements.map { $0.kind == .invalid }, [false, true, false])
        // 60,000 terms on one line (this overflowed the stack when elaborated).
        let long = "input 8x8x3\nconv 3 1 1" + String(repeating: "+1", count: 60_000) + "\n"
        XCTAssertEqual(parse(long).1.items.count, 1)
        // The operators of one argument do not count against the next.
        let args = "input 8x8x3\nconv 1" + String(repeating: "+0", count: 900) + " 1" + String(repeating: "*1", count: 900) + " 8\n"
        XCTAssertTrue(parse(args).1.items.isEmpty)
    }

    func testLongExpressionsCompareAndDeallocateWithoutRecursion() {
        // Equality is iterative; a chain of the maximum length compares (and is freed) fine.
        let text = "input 8x8x3\nconv 3 1 1" + String(repeating: "-1", count: Parser.maxOperators) + "\n"
        let a = parse(text).0, b = parse(text).0
        XCTAssertEqual(a.statements, b.statements)
        let c = parse(text.replacingOccurrences(of: "-1\n", with: "+1\n")).0
        XCTAssertNotEqual(a.statements, c.statements)
    }

    func testNamesAreAtMostMaxNameLength() throws {
        let ok = String(repeating: "a", count: Lexer.maxNameLength)
        XCTAssertTrue(parse("input 8x8x3\n\(ok): relu\n").1.items.isEmpty)
        let long = String(repeating: "b", count: 100_000)
        let (spec, d) = parse("input 8x8x3\n\(long): relu\nblock \(long)() {\n}\nconv 3 1 8 \(long)=1\nnetwork \(long)\n")
        XCTAssertEqual(d.items.map(\.message), Array(repeating: "name 'bbbbbbbbbbbbbbbbbbbbbbbb...' is too long (100000 characters; at most 128)", count: 4))
        XCTAssertEqual(d.items.map(\.location.line), [2, 3, 5, 6])
        XCTAssertEqual(d.items.map(\.location.column), [1, 7, 12, 9])
        // The text is cut, so later stages never see the long name.
        XCTAssertEqual(spec.statements[1].label?.count, Lexer.maxNameLength)
    }

    func testDuplicateParametersAmongManyAreReportedOnce() {
        let params = (0..<100_000).map { "p\($0)" } + ["p7"]
        let (_, d) = parse("input 8x8x3\nblock b(\(params.joined(separator: ", "))) {\n  relu\n}\n")
        XCTAssertEqual(d.items.map(\.message), ["duplicate parameter 'p7'"])
    }

    // MARK: - Comments in every position the grammar allows

    /// Every comment is attached somewhere, exactly once and in order.
    private func assertAllCommentsKept(_ text: String, file: StaticString = #filePath, line: UInt = #line) {
        let (spec, d) = parse(text)
        XCTAssertTrue(d.items.isEmpty, "\(d.items.map(\.message))", file: file, line: line)
        var lexer = Lexer(file: SourceFile(path: "t.dsl", text: text))
        _ = lexer.tokenize()
        XCTAssertEqual(spec.comments, lexer.comments.map(\.text), file: file, line: line)
    }

    func testCommentAfterAClosingBraceBelongsToTheStatement() throws {
        let text = "input 8x8x3\nrepeat 2 {\n  conv 3 1 8\n} # end\n"
        let (spec, _) = parse(text)
        XCTAssertEqual(spec.statements[1].trailingComment, " end")
        assertAllCommentsKept(text)
    }

    func testCommentsInsideBraces() throws {
        let text = """
        input 8x8x3
        repeat 2 {  # opening
          conv 3 1 8  # layer
          # last line of the body
        }  # closing
        concat {  # first branch
        } {  # second branch
          relu
          # end of the second branch
        } {
          # inside an empty branch
        }
        block b() { # block opening
        } # after the block
        add { } { } # after empty branches
        conv 3 1 8 ; # after a semicolon
        repeat 1 { ; # after a brace and a semicolon
          relu
        }

        """
        let (spec, d) = parse(text)
        XCTAssertTrue(d.items.isEmpty, "\(d.items.map(\.message))")
        let r = spec.statements[1], m = spec.statements[2], b = spec.statements[3], a = spec.statements[4]
        XCTAssertEqual(r.bodyComments, [BodyComments(opening: " opening", closing: [" last line of the body"])])
        XCTAssertEqual(r.trailingComment, " closing")
        XCTAssertEqual(m.bodyComments, [BodyComments(opening: " first branch"), BodyComments(opening: " second branch", closing: [" end of the second branch"]), BodyComments(closing: [" inside an empty branch"])])
        XCTAssertNil(m.trailingComment)
        XCTAssertEqual(b.bodyComments, [BodyComments(opening: " block opening")])
        XCTAssertEqual(b.trailingComment, " after the block")
        XCTAssertEqual(a.bodyComments, [])
        XCTAssertEqual(a.trailingComment, " after empty branches")
        XCTAssertEqual(spec.statements[5].trailingComment, " after a semicolon")
        XCTAssertEqual(spec.statements[6].bodyComments.first?.opening, " after a brace and a semicolon")
        assertAllCommentsKept(text)
    }

    func testATrailingCommentBelongsToTheLastStatementOnItsLine() {
        let (spec, _) = parse("input 8x8x3\ngap ; softmax  # c\nrepeat 2 { relu }  # r\nconcat { relu } {  # b\n}\n")
        XCTAssertNil(spec.statements[1].trailingComment)
        XCTAssertEqual(spec.statements[2].trailingComment, " c")
        XCTAssertEqual(spec.statements[3].trailingComment, " r")
        guard case .repeatLoop(_, let body) = spec.statements[3].kind else { return XCTFail() }
        XCTAssertNil(body[0].trailingComment)
        guard case .merge(_, let branches, _) = spec.statements[4].kind else { return XCTFail() }
        XCTAssertNil(branches[0][0].trailingComment)
        XCTAssertEqual(spec.statements[4].bodyComments.map(\.opening), [nil, " b"])
    }

    func testManyBranchesKeepTheirComments() {
        // Each branch's comments used to copy those of the branches before it (quadratic).
        let text = "input 8x8x3\nconcat" + String(repeating: " { # c\n}", count: 50_000) + "\n"
        let (spec, d) = parse(text)
        XCTAssertTrue(d.items.isEmpty)
        XCTAssertEqual(spec.statements[1].bodyComments.count, 50_000)
        XCTAssertEqual(spec.statements[1].bodyComments.last?.opening, " c")
    }

    func testCommentsAtTheEndOfTheFileAndHeader() {
        let text = "# header\n\ninput 8x8x3\nrelu\n# end 1\n\n# end 2\n"
        let (spec, _) = parse(text)
        XCTAssertEqual(spec.headerComments, [" header"])
        XCTAssertEqual(spec.trailingComments, [" end 1", " end 2"])
        assertAllCommentsKept(text)
        // A file of comments only: all header.
        XCTAssertEqual(parse("# a\n# b\n").0.headerComments, [" a", " b"])
        assertAllCommentsKept("# a\n# b\n")
    }

    func testCommentTextLosesTrailingBlanksOnly() {
        let (spec, _) = parse("input 8x8x3  #  spaced \t \r\r\nrelu #x\r\n")
        XCTAssertEqual(spec.statements[0].trailingComment, "  spaced")
        XCTAssertEqual(spec.statements[1].trailingComment, "x")
    }

    /// Issue #13: sizes as arguments and option values, `pool avg to`, activation layers and
    /// flags, merge options and `mul`.
    func testSizesActivationsAndMergeOptions() throws {
        let (spec, d) = parse("""
        input 17x17x8
        conv 1x7 2X1 16 pad=0x0x1x1 dilation=2 groups=2 relu6
        dwconv 3 1 bn act=hardswish
        pool avg to 7x7
        gelu
        add zeropad { conv 1 1 16 } {}
        mul {} { gap }
        """)
        XCTAssertTrue(d.items.isEmpty, "\(d.items.map(\.message))")
        let c = try XCTUnwrap(layer(spec.statements[1]))
        XCTAssertEqual(c.args, ["1x7", "2x1", "16"])
        XCTAssertEqual(c.options, ["pad=0x0x1x1", "dilation=2", "groups=2", "relu6"], "relu6 is a flag")
        guard case .layer(_, _, let args, _) = spec.statements[1].kind, case .dims(let v, let text, let l) = args[1] else { return XCTFail() }
        XCTAssertEqual(v, [2, 1])
        XCTAssertEqual(text, "2X1", "the text is kept for the printer")
        XCTAssertEqual(l.column, 10)
        XCTAssertEqual(try XCTUnwrap(layer(spec.statements[2])).kind, "dwconv")
        let p = try XCTUnwrap(layer(spec.statements[3]))
        XCTAssertEqual(p.words, ["avg", "to"])
        XCTAssertEqual(p.args, ["7x7"])
        XCTAssertEqual(try XCTUnwrap(layer(spec.statements[4])).kind, "gelu")
        guard case .merge(let k, let branches, let options) = spec.statements[5].kind else { return XCTFail("not a merge") }
        XCTAssertEqual(k, "add")
        XCTAssertEqual(branches.count, 2)
        XCTAssertEqual(options.map(\.name), ["zeropad"])
        guard case .merge(let k2, _, let o2) = spec.statements[6].kind else { return XCTFail("not a merge") }
        XCTAssertEqual(k2, "mul")
        XCTAssertTrue(o2.isEmpty)
    }

    func testSizesAreNotNumbers() {
        for (text, message, column) in [("conv 1x7*2 1 8", "'1x7' is a size, not a number; '*' cannot apply to it", 6),
                                        ("conv 3 1 2+1x1", "'1x1' is a size, not a number; '+' cannot apply to it", 12),
                                        ("conv -3x3 1 8", "'3x3' is a size, not a number; '-' cannot apply to it", 7),
                                        ("mul: relu", "'mul' is a keyword and cannot name a layer", 1),
                                        ("gelu: relu", "'gelu' is a keyword and cannot name a layer", 1)] {
            let (_, d) = parse("input 8x8x3\n\(text)\n")
            XCTAssertEqual(d.items.map(\.message), [message], text)
            XCTAssertEqual(d.items.first?.location.line, 2, text)
            XCTAssertEqual(d.items.first?.location.column, column, text)
        }
    }
}
