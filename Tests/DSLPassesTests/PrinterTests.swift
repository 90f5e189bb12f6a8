import DSLIR
import DSLPasses
@testable import DSLSyntax
import Foundation
import XCTest

/// A deterministic pseudo-random generator (SplitMix64) so generated networks are reproducible.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    mutating func chance(_ p: Double) -> Bool { Double(next() % 10_000) / 10_000 < p }
    mutating func pick<T>(_ xs: [T]) -> T { xs[int(0...(xs.count - 1))] }
}

/// Builds random ASTs: stacks with blocks, repeats, concat/add branches, inception, pyramid,
/// labels, options (in random order), expressions and comments.
struct NetworkGenerator {
    var rng: SplitMix
    var labelCount = 0
    let loc = SourceLocation.start

    init(seed: UInt64) { rng = SplitMix(state: seed) }

    mutating func number() -> Expr {
        let texts = ["1", "2", "3", "5", "16", "32", "96", "0.5", "0.25", "1e-3", "2.50", "007"]
        let t = rng.pick(texts)
        return .number(Double(t)!, text: t, loc)
    }

    mutating func expr(_ depth: Int, names: [String]) -> Expr {
        if depth <= 0 || rng.chance(0.5) {
            if !names.isEmpty && rng.chance(0.4) { return .name(rng.pick(names), loc) }
            return number()
        }
        if rng.chance(0.15) { return .negate(expr(depth - 1, names: names), loc) }
        return .binary(rng.pick(["+", "-", "*", "/"]), expr(depth - 1, names: names), expr(depth - 1, names: names), loc)
    }

    /// A size such as `1x7` (written with `x` or `X`).
    mutating func dims(_ n: Int) -> Expr {
        let v = (0..<n).map { _ in rng.int(0...9) }
        return .dims(v, text: v.map(String.init).joined(separator: rng.chance(0.9) ? "x" : "X"), loc)
    }

    mutating func comment() -> String { rng.pick([" a comment", " 3x3 max-pooling, stride 2", "", "#double", " x = y { }"]) }

    mutating func options(_ pool: [(String, Bool)], names: [String]) -> [LayerOption] {
        var chosen: [LayerOption] = []
        for (name, takesValue) in pool where rng.chance(0.3) {
            var value: Expr? = takesValue ? (rng.chance(0.5) ? .name(rng.pick(["valid", "same", "linear", "relu", "gelu", "hardswish"]), loc) : expr(1, names: names)) : nil
            // Sizes as values: `pad=0x3`, `pad=0x0x1x1`, `dilation=2x1`.
            if takesValue && (name == "pad" || name == "dilation") && rng.chance(0.3) { value = dims(name == "pad" && rng.chance(0.5) ? 4 : 2) }
            chosen.append(LayerOption(name: name, nameLocation: loc, value: value))
        }
        // Written order is random; the printer sorts, equality ignores order.
        for i in stride(from: chosen.count - 1, to: 0, by: -1) { chosen.swapAt(i, rng.int(0...i)) }
        return chosen
    }

    mutating func decorate(_ kind: StatementKind, label allowed: Bool = true) -> Statement {
        var label: String?
        if allowed && rng.chance(0.2) { labelCount += 1; label = rng.pick(["l", "stage", "3a", "x_"]) + "\(labelCount)" }
        var s = Statement(label: label, labelLocation: nil, kind: kind, keywordLocation: loc, location: loc)
        if rng.chance(0.2) { s.leadingComments = (0..<rng.int(1...2)).map { _ in comment() } }
        if rng.chance(0.2) { s.trailingComment = comment() }
        // Comments inside braces: after an opening brace, and lines before a closing one.
        let bodies: Int
        switch kind {
        case .repeatLoop, .block: bodies = 1
        case .merge(_, let branches, _): bodies = branches.count
        default: bodies = 0
        }
        if bodies > 0 && rng.chance(0.4) {
            s.bodyComments = (0..<bodies).map { _ in
                BodyComments(opening: rng.chance(0.4) ? comment() : nil, closing: rng.chance(0.4) ? (0..<rng.int(1...2)).map { _ in comment() } : [])
            }
            if s.bodyComments.allSatisfy(\.isEmpty) { s.bodyComments = [] }
        }
        return s
    }

    mutating func layer(names: [String]) -> Statement {
        let kind = rng.pick(["conv", "conv", "dwconv", "pool", "gap", "bn", "relu", "leaky", "dropout", "fc", "softmax", "inception", "pyramid",
                             "gelu", "swish", "relu6", "hardsigmoid", "tanh"])
        var words: [(String, SourceLocation)] = []
        var args: [Expr] = []
        var opts: [LayerOption] = []
        switch kind {
        case "conv", "dwconv":
            args = (0..<(kind == "conv" ? 3 : rng.int(2...3))).map { i in i < 2 && rng.chance(0.3) ? dims(2) : expr(2, names: names) }
            opts = options([("pad", true), ("same", false), ("bn", false), ("act", true), ("nobias", false), ("slope", true), ("bias", true),
                            ("dilation", true), ("groups", true), ("relu6", false), ("silu", false)], names: names)
        case "pool":
            if rng.chance(0.2) {
                words = [("avg", loc), ("to", loc)]
                args = [rng.chance(0.7) ? dims(2) : expr(1, names: names)]
                break
            }
            if rng.chance(0.5) { words = [(rng.pick(["max", "avg"]), loc)] }
            args = (0..<rng.int(0...2)).map { _ in expr(1, names: names) }
            opts = options([("ceil", false), ("pad", true), ("floor", false)], names: names)
        case "leaky", "dropout":
            args = (0..<rng.int(0...1)).map { _ in expr(1, names: names) }
        case "fc":
            args = [expr(1, names: names)]
            opts = options([("act", true), ("nobias", false), ("relu", false)], names: names)
        case "inception":
            args = (0..<6).map { _ in expr(1, names: names) }
            opts = options([("bn", false), ("act", true)], names: names)
        case "pyramid":
            args = [expr(1, names: names), expr(1, names: names)]
            opts = options([("bottleneck", false), ("widen", true)], names: names)
        default: break
        }
        return decorate(.layer(kind: kind, words: words, arguments: args, options: opts))
    }

    mutating func list(depth: Int, names: [String], blocks: [(String, Int)], length: ClosedRange<Int>) -> [Statement] {
        var out: [Statement] = []
        for _ in 0..<rng.int(length) {
            let r = rng.int(0...9)
            if depth > 0 && r == 0 {
                out.append(decorate(.repeatLoop(count: expr(1, names: names), body: list(depth: depth - 1, names: names, blocks: blocks, length: 1...3)), label: false))
            } else if depth > 0 && r == 1 {
                let branches = (0..<rng.int(1...3)).map { _ in list(depth: depth - 1, names: names, blocks: blocks, length: 0...3) }
                let kind = rng.pick(["concat", "add", "mul"])
                let options = kind == "add" && rng.chance(0.4) ? [LayerOption(name: "zeropad", nameLocation: loc, value: nil)] : []
                out.append(decorate(.merge(kind: kind, branches: branches, options: options)))
            } else if r == 2, let b = blocks.isEmpty ? nil : rng.pick(blocks) {
                out.append(decorate(.call(name: b.0, arguments: (0..<b.1).map { _ in expr(2, names: names) }, options: [])))
            } else {
                out.append(layer(names: names))
            }
        }
        return out
    }

    /// Comments after the last statement.
    mutating func trailing() -> [String] { rng.chance(0.3) ? (0..<rng.int(1...2)).map { _ in comment() } : [] }

    /// A whole spec: header, network, input, blocks, a body.
    mutating func spec() -> ([String], [Statement]) {
        var statements: [Statement] = []
        let header = rng.chance(0.5) ? (0..<rng.int(1...3)).map { _ in comment() } : []
        if rng.chance(0.8) { statements.append(decorate(.network("net-\(rng.int(0...99))_v1"), label: false)) }
        statements.append(decorate(.input(height: rng.int(1...64), width: rng.int(1...64), channels: rng.int(1...8)), label: false))
        var blocks: [(String, Int)] = []
        for i in 0..<rng.int(0...2) {
            let params = ["c", "k", "s"].prefix(rng.int(0...3)).map { $0 }
            let body = list(depth: 2, names: params, blocks: blocks, length: 0...4)
            let name = "blk\(i)"
            statements.append(decorate(.block(BlockDefinition(name: name, nameLocation: loc, parameters: params.map { ($0, loc) }, body: body)), label: false))
            blocks.append((name, params.count))
        }
        statements += list(depth: 3, names: [], blocks: blocks, length: 1...8)
        // Comments above the first statement are the file's header, by definition.
        statements[0].leadingComments = []
        return (header, statements)
    }
}

final class PrinterTests: XCTestCase {
    func testRoundTripEverySpec() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("specs").path).filter { $0.hasSuffix(".dsl") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 10)
        for f in files {
            let text = try specText(f)
            let (spec, d) = parse(text, path: f)
            XCTAssertFalse(d.hasErrors, f)
            let printed = SpecPrinter.print(spec)
            let (again, d2) = parse(printed, path: f)
            XCTAssertFalse(d2.hasErrors, "\(f): \(d2.items.map(\.message))")
            XCTAssertEqual(again.statements, spec.statements, f)
            XCTAssertEqual(again.headerComments, spec.headerComments, f)
            // Comments survive, and printing is a fixed point.
            XCTAssertEqual(allComments(again.statements), allComments(spec.statements), f)
            XCTAssertEqual(SpecPrinter.print(again), printed, f)
        }
    }

    func testRoundTripGeneratedNetworks() {
        var checked = 0
        for seed in 0..<1200 as Range<UInt64> {
            var gen = NetworkGenerator(seed: seed)
            let (header, statements) = gen.spec()
            let spec = SpecFile(source: SourceFile(path: "gen.dsl", text: ""), statements: statements, headerComments: header, trailingComments: gen.trailing())
            let text = SpecPrinter.print(spec)
            let (back, d) = parse(text, path: "gen.dsl")
            if d.hasErrors || back.statements != statements || back.headerComments != header || allComments(back.statements) != allComments(statements)
                || back.trailingComments != spec.trailingComments || back.comments != spec.comments {
                XCTFail("seed \(seed): round trip failed: \(d.items.map { "\($0.location): \($0.message)" })\n\(text)")
                return
            }
            XCTAssertEqual(SpecPrinter.print(back), text, "seed \(seed): printing is not a fixed point")
            checked += 1
        }
        XCTAssertEqual(checked, 1200)
    }

    func testCanonicalFormatting() {
        let text = """
        # header

        network  t
        input 8x8x3
        block b(c, k) {
        conv k 1 c*2   relu   pad=same   bn   # wide
          conv 3 1 (c+1)*2
        }
        conv 3 1 8 act=linear bn pad=valid
        add { conv 3 1 8 } { }
        b(4, 3)
        pool max 3 2 ceil # p
        conv 1X7 2x1 8 relu6  groups=2 dilation=1x2 pad=0x3
        dwconv 3 1 2 pad=0x0x1x1 act=gelu   bn
        add   zeropad { conv 1 1 16 } {}
        mul {} { gap ; conv 1 1 16 act=hardsigmoid }
        pool  avg  to 2x2
        swish
        """
        let (spec, d) = parse(text)
        XCTAssertFalse(d.hasErrors)
        XCTAssertEqual(SpecPrinter.print(spec), """
        # header

        network t
        input 8x8x3
        block b(c, k) {
          conv k 1 c*2 pad=same bn relu  # wide
          conv 3 1 (c+1)*2
        }
        conv 3 1 8 pad=valid bn act=linear
        add {
          conv 3 1 8
        } {}
        b(4, 3)
        pool max 3 2 ceil  # p
        conv 1X7 2x1 8 pad=0x3 dilation=1x2 groups=2 relu6
        dwconv 3 1 2 pad=0x0x1x1 bn act=gelu
        add zeropad {
          conv 1 1 16
        } {}
        mul {} {
          gap
          conv 1 1 16 act=hardsigmoid
        }
        pool avg to 2x2
        swish

        """)
    }

    func testEveryCommentSurvivesAwkwardPlaces() {
        let text = """
        # header
        network w   # name
        input 8x8x3   # the input
        block b(c) {   # opening comment
          conv 3 1 c  # inner
          # last in body
        }  # closing
        concat {
          conv 1 1 4
        } {  # second branch
          conv 3 1 4
        }
        # end comment
        gap ; softmax  # two on a line
        # footer

        """
        func comments(_ t: String) -> [String] {
            var l = Lexer(file: SourceFile(path: "t", text: t)); _ = l.tokenize(); return l.comments.map(\.text)
        }
        let (spec, d) = parse(text)
        XCTAssertFalse(d.hasErrors)
        let printed = SpecPrinter.print(spec)
        XCTAssertEqual(comments(printed).sorted(), comments(text).sorted(), printed)
        XCTAssertEqual(SpecPrinter.print(parse(printed).0), printed)
    }

    func testCommentsBelowTheLastStatementAreKept() {
        let (spec, _) = parse("input 8x8x3\ngap\n\n# the end\n")
        XCTAssertEqual(SpecPrinter.print(spec), "input 8x8x3\ngap\n\n# the end\n")
    }

    func testCommentAboveABlockStaysAboveIt() {
        let (spec, _) = parse("input 8x8x3\n# about b\nblock b() {\n  gap\n}\nb()\n")
        XCTAssertEqual(SpecPrinter.print(spec), "input 8x8x3\n# about b\nblock b() {\n  gap\n}\nb()\n")
    }

    func testCommentAfterAClosingBraceIsKept() {
        // `dsl fmt` refused this file: "internal error: formatting would lose comments".
        let (spec, d) = parse("input 8x8x3\nrepeat 2 {\nconv 3 1 8\n} # end\n")
        XCTAssertFalse(d.hasErrors)
        XCTAssertEqual(SpecPrinter.print(spec), "input 8x8x3\nrepeat 2 {\n  conv 3 1 8\n}  # end\n")
        assertRoundTrip("input 8x8x3\nrepeat 2 {\nconv 3 1 8\n} # end\n", "end")
    }

    func testEveryCommentPosition() {
        let text = """
        # header

        network n  # name
        input 8x8x3   # input
        block b(c) {  # block opening
          # above the first layer
          conv 3 1 c  # layer
          # last line of the block
        }  # after the block
        repeat 2 { # repeat opening
          repeat 1 {
            # inside an empty nested body
          } # after the nested repeat
        }
        concat { conv 1 1 4 } { # second branch
        } {
          # inside an empty third branch
        } # after the merge
        add {} {}   # after empty branches
        relu ; # after a semicolon
        b(4) # after a call
        # end of file 1

        # end of file 2
        """
        let (spec, d) = parse(text)
        XCTAssertFalse(d.hasErrors, "\(d.items.map(\.message))")
        let printed = SpecPrinter.print(spec)
        XCTAssertEqual(printed, """
        # header

        network n    # name
        input 8x8x3  # input
        block b(c) {  # block opening
          # above the first layer
          conv 3 1 c  # layer
          # last line of the block
        }  # after the block
        repeat 2 {  # repeat opening
          repeat 1 {
            # inside an empty nested body
          }  # after the nested repeat
        }
        concat {
          conv 1 1 4
        } {  # second branch
        } {
          # inside an empty third branch
        }  # after the merge
        add {} {}  # after empty branches
        relu  # after a semicolon
        b(4)  # after a call

        # end of file 1
        # end of file 2

        """)
        assertRoundTrip(text, "positions")
    }

    func testRoundTripOfEveryRepositoryFileThatParses() throws {
        var texts: [(String, String)] = []
        for dir in ["specs", "Tests/CLITests/good-specs", "Tests/CLITests/bad-specs"] {
            let url = repoRoot.appendingPathComponent(dir)
            for f in try FileManager.default.contentsOfDirectory(atPath: url.path).filter({ $0.hasSuffix(".dsl") }).sorted() {
                texts.append((dir + "/" + f, String(decoding: try Data(contentsOf: url.appendingPathComponent(f)), as: UTF8.self)))
            }
        }
        // The examples of Grammar.md.
        let grammar = try String(contentsOf: repoRoot.appendingPathComponent("Grammar.md"), encoding: .utf8)
        for (i, block) in grammar.components(separatedBy: "```dsl\n").dropFirst().enumerated() {
            texts.append(("Grammar.md example \(i + 1)", block.components(separatedBy: "```").first ?? ""))
        }
        var parsed = 0
        for (name, text) in texts {
            if !parse(text).1.hasErrors { parsed += 1 }
            assertRoundTrip(text, name)
        }
        XCTAssertGreaterThan(parsed, 40)
    }

    /// A valueless word that is not a flag is an option only after another option; the printer
    /// used to move `bias` in front of `act=linear`, where it read back as a positional argument
    /// (found by dsl-fuzz, seed 4, input 95774).
    func testValuelessNonFlagOptionStaysAnOption() {
        for text in ["input 9x9x49\nconv 1 1 64 act=linear bias\n", "input 8x8x3\nconv 3 1 8 bn foo pad=1\n",
                     "input 8x8x3\npool max 2 2 ceil zzz\n", "block b() {\n}\nb() x y=1\n"] {
            assertRoundTrip(text, "option.dsl")
        }
        XCTAssertEqual(SpecPrinter.print(parse("input 9x9x49\nconv 1 1 64 act=linear bias\n", path: "x.dsl").0), "input 9x9x49\nconv 1 1 64 act=linear bias\n")
    }

    /// A positional argument that starts with a flag word (`floor`, `bn`) is parenthesised, or
    /// it would read back as an option; so is `pool`'s first argument starting with `max` or
    /// `avg` (found by dsl-fuzz, seed 6, input 783988: `(floor-(-97))` printed as `floor-(-97)`).
    func testArgumentsThatStartWithAFlagWordStayArguments() {
        for text in ["input 8x8x3\nconv 2 / 2 1 * 2 (floor-(-97)) bn=off\n", "input 8x8x3\nconv 3 1 (bn)\n",
                     "input 8x8x3\nconv (valid + 1) 1 8\n", "input 8x8x3\npool (max) 2\n", "input 8x8x3\npool (avg * 2)\n",
                     "input 8x8x3\npool max (avg) 2\n", "block b(relu) {\n  conv 3 1 (relu)\n}\nb(4)\n"] {
            assertRoundTrip(text, "args.dsl")
        }
    }

    func testNegativeAndNestedExpressionsKeepTheirMeaning() {
        for t in ["conv 3 (-1) 4", "conv 3 1 -(a-b)", "conv a-(b-c) 1 a/(b*c)", "repeat -(-2) {\n  gap\n}"] {
            let (spec, d) = parse("input 4x4x1\n" + t + "\n")
            XCTAssertFalse(d.hasErrors, t)
            let (back, _) = parse(SpecPrinter.print(spec))
            XCTAssertEqual(back.statements, spec.statements, t)
        }
    }
}

/// Every comment in a statement tree, in order, tagged with where it is attached: leading (L),
/// trailing (T), after an opening brace (O), at the end of a body (C), with the body's depth.
func allComments(_ list: [Statement], depth: Int = 0) -> [String] {
    var out: [String] = []
    for s in list {
        out += s.leadingComments.map { "\(depth)L" + $0 }
        let bodies: [[Statement]]
        switch s.kind {
        case .block(let b): bodies = [b.body]
        case .repeatLoop(_, let body): bodies = [body]
        case .merge(_, let branches, _): bodies = branches
        default: bodies = []
        }
        for (i, body) in bodies.enumerated() {
            let c = i < s.bodyComments.count ? s.bodyComments[i] : BodyComments()
            out.append("\(depth)B\(i)")
            if let o = c.opening { out.append("\(depth)O" + o) }
            out += allComments(body, depth: depth + 1)
            out += c.closing.map { "\(depth)C" + $0 }
        }
        if let t = s.trailingComment { out.append("\(depth)T" + t) }
    }
    return out
}

/// The comments the lexer finds in a text.
func lexedComments(_ text: String) -> [String] {
    var l = Lexer(file: SourceFile(path: "t", text: text))
    _ = l.tokenize()
    return l.comments.map(\.text)
}

/// The round-trip invariant of the printer for a text that parses without errors: printing
/// and parsing again gives the same statements with the same comments in the same places, no
/// comment is lost, and printing again gives the same text.
func assertRoundTrip(_ text: String, _ name: String, file: StaticString = #filePath, line: UInt = #line) {
    let (spec, d) = parse(text, path: name)
    guard !d.hasErrors else { return }
    XCTAssertEqual(spec.comments, lexedComments(text), "\(name): the parser dropped a comment", file: file, line: line)
    let printed = SpecPrinter.print(spec)
    let (again, d2) = parse(printed, path: name)
    XCTAssertFalse(d2.hasErrors, "\(name): \(d2.items.map(\.message))\n\(printed)", file: file, line: line)
    XCTAssertEqual(again.statements, spec.statements, name, file: file, line: line)
    XCTAssertEqual(again.headerComments, spec.headerComments, name, file: file, line: line)
    XCTAssertEqual(again.trailingComments, spec.trailingComments, name, file: file, line: line)
    XCTAssertEqual(allComments(again.statements), allComments(spec.statements), "\(name)\n\(printed)", file: file, line: line)
    XCTAssertEqual(lexedComments(printed), spec.comments, "\(name): printing lost a comment\n\(printed)", file: file, line: line)
    XCTAssertEqual(SpecPrinter.print(again), printed, "\(name): printing is not a fixed point", file: file, line: line)
}
