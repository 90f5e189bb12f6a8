import DSLIR
import DSLPasses
import DSLSyntax
import Foundation
import XCTest

/// Golden before/after tests: `golden/NAME.dsl` rewritten by a pass must equal
/// `golden/NAME.PASS.dsl` byte for byte. Set DSL_UPDATE_GOLDEN=1 to rewrite the expected files
/// (then review the diff).
final class GoldenTests: XCTestCase {
    let dir = repoRoot.appendingPathComponent("Tests/DSLPassesTests/golden")

    func check(_ input: String, _ passes: [RewritePass], expected: String, inputPath: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = inputPath ?? dir.appendingPathComponent(input).path
        let source = try SourceFile.read(path: path)
        let outcome = Rewriter.run(SourceFile(path: "golden/\(input)", bytes: source.bytes), passes: passes)
        XCTAssertFalse(outcome.failed, "\(outcome.steps.flatMap(\.diagnostics).map(\.message))", file: file, line: line)
        let expectedPath = dir.appendingPathComponent(expected).path
        if ProcessInfo.processInfo.environment["DSL_UPDATE_GOLDEN"] == "1" {
            try outcome.text.write(toFile: expectedPath, atomically: true, encoding: .utf8)
        }
        let want = try String(contentsOfFile: expectedPath, encoding: .utf8)
        XCTAssertEqual(outcome.text, want, "golden \(expected) differs", file: file, line: line)
        // The expected output is valid, and says what the canonical print of the pass's
        // result says (the rewrite keeps the untouched lines as written, so it is canonical
        // only where the input was).
        let (spec, d) = Parser.parse(SourceFile(path: expected, text: want))
        XCTAssertFalse(d.hasErrors, file: file, line: line)
        XCTAssertEqual(Splicer.normalized(SpecPrinter.print(spec)), Splicer.normalized(want), "golden output does not read back", file: file, line: line)
    }

    func testStridedGolden() throws { try check("pools.dsl", [StridedPass()], expected: "pools.strided.dsl") }
    func testAllConvGolden() throws { try check("pools.dsl", [AllConvPass()], expected: "pools.all-conv.dsl") }
    func testConvPoolGolden() throws { try check("pools.dsl", [ConvPoolPass()], expected: "pools.convpool.dsl") }
    func testReduceGolden() throws {
        try check("reduce.dsl", [ReducePass(policy: .ratio(ReductionRatios(r3: 0.5, r5: 0.25)))], expected: "reduce.reduce.dsl")
    }
    /// `dsl rewrite specs/all-cnn-c.dsl --pass reduce --budget 150M`: a plain stack (no inception
    /// module) reduced to the widest common ratio that fits (issue #11: it said "nothing in the
    /// network can be reduced").
    func testReduceBudgetOnAllCNNCGolden() throws {
        try check("all-cnn-c.dsl", [ReducePass(policy: .budget(150_000_000, nil))], expected: "all-cnn-c.reduce-budget-150M.dsl", inputPath: specPath("all-cnn-c.dsl"))
    }
    func testGapHeadGolden() throws { try check("gap-head.dsl", [GapHeadPass()], expected: "gap-head.gap-head.dsl") }
}
