import XCTest
import Foundation
import DSLSyntax
@testable import DSLIR

/// Issue #11: hostile specs are refused with a located error before anything is built, and the
/// front end neither traps, overflows its stack nor allocates without bound.
final class LimitTests: XCTestCase {
    /// Blocks b1...bN, each calling the one before `calls` times; b1 is empty.
    private func callTree(levels: Int, calls: Int, name: String = "b") -> String {
        var lines = ["input 8x8x3", "block \(name)1() {", "}"]
        for i in 2...levels {
            lines.append("block \(name)\(i)() {")
            lines += Array(repeating: "  \(name)\(i - 1)()", count: calls)
            lines.append("}")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func errorDiagnostics(_ text: String) -> [Diagnostic] {
        Frontend.check(text: text).diagnostics.items.filter { $0.severity == .error }
    }

    func testExponentialCallTreeIsRefusedBeforeItIsBuilt() throws {
        // 3^41 module instances: this took 3 GB and 20 s, then aborted.
        let text = callTree(levels: 42, calls: 3) + "b42()\n"
        let c = Frontend.check(text: text)
        let errors = c.diagnostics.items.filter { $0.severity == .error }
        XCTAssertEqual(errors.count, 1, "\(errors.map(\.message))")
        let e = try XCTUnwrap(errors.first)
        XCTAssertTrue(e.message.hasPrefix("the network expands to more than 2000000") || e.message.hasPrefix("the layer and module names take more than"), e.message)
        XCTAssertNil(c.graph)
        // Reported inside the call tree, with a note per call that leads there.
        XCTAssertEqual(e.notes.last?.message, "in block 'b42' called here")
        XCTAssertEqual(e.notes.last?.location.line, text.split(separator: "\n").count)
        XCTAssertGreaterThan(e.notes.count, 1)
    }

    func testTooManyModuleInstancesAreReportedAtTheCallThatCrossesTheLimit() throws {
        // 10^6 + 10^5 + ... calls per b7; two of them cross 2,000,000 module instances.
        var text = callTree(levels: 7, calls: 10)
        text += "block b8() {\n  b7()\n  b7()\n}\nb8()\n"
        let errors = errorDiagnostics(text)
        XCTAssertEqual(errors.map(\.message), ["the network expands to more than 2000000 module instances"])
        let e = try XCTUnwrap(errors.first)
        // The innermost call that crosses the limit is an empty b1 call inside the second b7.
        XCTAssertEqual(e.notes.map(\.message), ["in block 'b2' called here", "in block 'b3' called here", "in block 'b4' called here",
                                               "in block 'b5' called here", "in block 'b6' called here", "in block 'b7' called here",
                                               "in block 'b8' called here"])
        XCTAssertEqual(e.notes[5].location.line, text.split(separator: "\n").count - 2, "the second call of b7")
    }

    func testLongNamesInNestedRepeatsHitTheNameLimit() throws {
        let label = String(repeating: "x", count: Lexer.maxNameLength)
        let text = """
        input 8x8x3
        block a() {
          repeat 1000 {
            \(label): relu
          }
        }
        block b() {
          repeat 1000 {
            \(label): a()
          }
        }
        b()

        """
        let errors = errorDiagnostics(text)
        XCTAssertEqual(errors.count, 1)
        XCTAssertTrue(errors.first?.message.hasPrefix("the layer and module names take more than 268435456 bytes (this repeat alone would make ") ?? false, "\(errors.map(\.message))")
        XCTAssertEqual(errors.first?.location.line, 8, "the repeat of b whose later iterations cross the limit")
        XCTAssertEqual(errors.first?.notes.map(\.message), ["in block 'b' called here"])
    }

    func testWorkThatBuildsNothingIsCountedToo() throws {
        // Every call evaluates a repeat count of 1,000 operators and builds nothing: 2 * 10^9 steps.
        let text = "input 8x8x3\nblock b() {\n  repeat 0" + String(repeating: "+0", count: 999) + " {\n  }\n}\n"
            + "repeat 100 {\n  repeat 100 {\n    repeat 100 {\n      b()\n    }\n  }\n}\nrelu\n"
        let errors = errorDiagnostics(text)
        XCTAssertEqual(errors.count, 1)
        XCTAssertTrue(errors.first?.message.hasPrefix("the spec takes more than 50000000 steps to expand (this repeat alone would take ") ?? false, "\(errors.map(\.message))")
        XCTAssertEqual(errors.first?.location.line, 6)
    }

    func testMergeBranchesAreStepsToo() throws {
        // 100,000 repeats of an `add` of 100,000 empty branches: one node each, 10^10 branches.
        let text = "input 8x8x3\nrepeat 100000 {\n  add " + String(repeating: "{} ", count: 100_000) + "\n}\n"
        let errors = errorDiagnostics(text)
        XCTAssertEqual(errors.map(\.message), ["the spec takes more than 50000000 steps to expand (this repeat alone would take 10000100002 steps)"])
    }

    func testManyCallsWithTheSameLabelGetSuffixesInLinearTime() throws {
        // Every call's layer is named x.relu1, taken by the first: the n-th probed n suffixes.
        let (g, _) = try build("input 8x8x3\nblock b() {\n  relu\n}\n" + String(repeating: "x: b()\n", count: 20_000))
        XCTAssertEqual(g.nodes[1].name, "x.relu1")
        XCTAssertEqual(g.nodes[2].name, "x.relu1_2")
        XCTAssertEqual(g.nodes.last?.name, "x.relu1_20000")
        XCTAssertEqual(Set(g.nodes.map(\.name)).count, g.nodes.count)
    }

    func testHugeTokensGiveShortMessages() {
        let dims = String(repeating: "1x", count: 100_000) + "1"
        let number = String(repeating: "9", count: 100_000)
        let messages = errors("input 8x8x3\nconv 3 1 \(dims)\nconv 3 1 \(number)\n") + errors("input 0\(dims)\n") + errors("input 0000000000000000000000000000000000000000001x2x" + number + "\n")
        XCTAssertEqual(messages.count, 4, "\(messages)")
        for m in messages { XCTAssertLessThan(m.count, 200, m) }
    }

    func testAfterAnErrorEachCallIsCheckedOnce() throws {
        // After an error nothing is built; a block called 2^19 times through a tree of calls is
        // checked once per argument values and call chain; its error, the same message at the
        // same place for both argument values, is reported once (with the first call's notes).
        var text = "input 8x8x3\nconv 3 1 0\nblock b1(c) {\n  conv 3 1 q\n}\n"
        for i in 2...20 { text += "block b\(i)(c) {\n  b\(i - 1)(c)\n  b\(i - 1)(c)\n}\n" }
        text += "b20(1)\nb20(2)\n"
        let errors = errorDiagnostics(text)
        XCTAssertEqual(errors.map(\.message), ["number of filters must be at least 1 (and at most 1048576), got 0",
                                               "unknown name 'q' (block parameters here: c)"])
        XCTAssertEqual(errors[1].notes.count, 20)
    }

    func testASpecTooLargeAcrossStatementsIsRefusedBeforeAnythingIsBuilt() throws {
        // Each call makes 1,045,000 layers: the second crosses the limit. The statements before
        // it are checked (their errors come first), but nothing is built.
        let text = "input 8x8x3\nblock b() {\n  repeat 55000 {\n" + String(repeating: "    bn\n", count: 19) + "  }\n}\nb() pad=1\nb()\n"
        let errors = errorDiagnostics(text)
        XCTAssertEqual(errors.map(\.message), ["a block call takes no options; pass values as arguments",
                                               "the network expands to more than 2000000 layers (this repeat alone would make 1045000 layers)"])
        XCTAssertEqual(errors.map(\.location.line), [25, 3])
        XCTAssertEqual(errors.last?.notes.map(\.location.line), [26])
    }

    func testPoisonedPathsAreBoundedToo() throws {
        // After an error nothing is built, but the calls are still checked: that work is bounded
        // by the same limits.
        let text = callTree(levels: 42, calls: 3) + "conv 3 1 0\nb42()\n"
        let errors = errorDiagnostics(text)
        XCTAssertEqual(errors.first?.message, "number of filters must be at least 1 (and at most 1048576), got 0")
        XCTAssertEqual(errors.count, 2)
    }

    func testNestingCountsThroughBlockCalls() throws {
        // 64 blocks, each calling the next inside 62 repeats: 4,000 levels overflowed the stack.
        var lines = ["input 8x8x3"]
        for i in 1...64 {
            lines.append("block b\(i)() {")
            lines += Array(repeating: "repeat 1 {", count: 62)
            lines.append(i < 64 ? "b\(i + 1)()" : "relu")
            lines += Array(repeating: "}", count: 62)
            lines.append("}")
        }
        lines.append("b1()")
        let errors = errorDiagnostics(lines.joined(separator: "\n") + "\n")
        XCTAssertEqual(errors.map(\.message), ["nesting is too deep (more than \(Elaborator.maxDepth) levels, counting the bodies of the blocks called)"])
        XCTAssertEqual(errors.first?.notes.map(\.message), ["in block 'b2' called here", "in block 'b1' called here"])
    }

    func testTheDeepestAcceptedSpecFitsInASmallThreadStack() throws {
        // Nesting at the limit through 16 calls, with an expression of the maximum length at the
        // bottom: checked on a thread with a 512 KB stack (debug build).
        var lines = ["input 8x8x3"]
        for i in 1...16 {
            lines.append("block b\(i)() {")
            lines += Array(repeating: "repeat 1 {", count: 3)
            lines.append(i < 16 ? "b\(i + 1)()" : "conv 3 1 " + String(repeating: "(", count: 20) + "1" + String(repeating: "+1", count: Parser.maxOperators - 30) + String(repeating: ")", count: 20))
            lines += Array(repeating: "}", count: 3)
            lines.append("}")
        }
        lines.append("b1()")
        let text = lines.joined(separator: "\n") + "\n"
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var errors: [String] = ["not run"]
        let t = Thread {
            errors = Frontend.check(text: text).diagnostics.items.filter { $0.severity == .error }.map(\.message)
            done.signal()
        }
        t.stackSize = 512 * 1024
        t.start()
        done.wait()
        XCTAssertEqual(errors, [])
    }

    func testSizingBoundsWhatElaborationBuilds() throws {
        let dir = packageRoot.appendingPathComponent("specs")
        var texts = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".dsl") }.sorted()
            .map { try String(contentsOf: dir.appendingPathComponent($0), encoding: .utf8) }
        texts.append("input 16x16x8\nblock u(c, n) {\n  repeat n {\n    x: conv 3 1 c\n  }\n  concat { relu } { pool max 3 1 pad=1 }\n}\nrepeat 3 {\n  u(8, 2)\n  s: u(4, 1)\n}\nq: pyramid 6 2 bottleneck\ninception<4, 2, 4, 0, 0, 3>\n")
        XCTAssertGreaterThan(texts.count, 10)
        for text in texts {
            let c = Frontend.check(text: text)
            let g = try XCTUnwrap(c.graph, "\(c.diagnostics.items.map(\.message))")
            let size = Elaborator.estimatedSize(of: c.spec)
            XCTAssertEqual(size.nodes + 1, g.nodes.count, "sizes are exact for a spec without errors")
            XCTAssertEqual(size.modules, g.modules.count)
            let names = g.nodes.reduce(0) { $0 + $1.name.utf8.count } + g.modules.reduce(0) { $0 + $1.name.utf8.count + $1.summary.utf8.count }
            XCTAssertGreaterThanOrEqual(size.names + 5, names, "names are bounded")
        }
    }

    func testLargeLegitimateNetworksAreStillAccepted() throws {
        // 200,000 layers in nested repeats and calls.
        let text = "input 4x4x2\nblock unit(c) {\n  conv 1 1 c\n  bn\n  relu\n  add { conv 1 1 c } {}\n}\nrepeat 100 {\n  repeat 400 {\n    unit(2)\n  }\n}\n"
        let c = Frontend.check(text: text)
        XCTAssertEqual(c.diagnostics.items.filter { $0.severity == .error }.map(\.message), [])
        XCTAssertEqual(c.graph?.nodes.count, 1 + 200_000)
        XCTAssertEqual(c.graph?.modules.count, 40_000)
    }

    func testMessagesStayShortWithManyParameters() throws {
        let params = (0..<1000).map { "p\($0)" }
        let text = "input 8x8x3\nblock b(\(params.joined(separator: ", "))) {\n  conv 3 1 q\n}\nb(\(Array(repeating: "1", count: 1000).joined(separator: ", ")))\n"
        XCTAssertEqual(errors(text), ["unknown name 'q' (block parameters here: p0, p1, p2, p3, p4, p5, p6, p7, ... (1000 in all))"])
        // A module summary keeps at most 100 bytes of the arguments.
        let ok = "input 8x8x3\nblock b(\(params.joined(separator: ", "))) {\n  conv 3 1 p0\n}\nb(\(Array(repeating: "1", count: 1000).joined(separator: ", ")))\n"
        let (g, _) = try build(ok)
        XCTAssertLessThanOrEqual(g.modules[0].summary.utf8.count, 100)
        XCTAssertTrue(g.modules[0].summary.hasPrefix("b(1, 1, 1"))
    }

    func testUnknownBlocksAmongManyStillGetSuggestions() {
        let blocks = (0..<2000).map { "block blk\($0)() {\n  relu\n}\n" }.joined()
        XCTAssertEqual(errors("input 8x8x3\n" + blocks + "blk1999x()\n"), ["unknown block 'blk1999x'; did you mean 'blk1999'?"])
    }
}
