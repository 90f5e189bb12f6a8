import DSLIR
import DSLPasses
import DSLSyntax
import Foundation
import XCTest

/// The rewritten text keeps every statement a pass did not touch as written (issue #15): a
/// diff of input and output shows only the rewrites.
final class SpliceTests: XCTestCase {
    /// Written the way people write: blank lines, a comment column, odd spacing, four-space
    /// indentation, two statements on one line.
    let untidy = """
    # header

    network untidy
    input 32x32x3


    conv 3 1 32      # first
    conv   3 1 32          # oddly spaced
    pool max 2             # 16x16

    block b(c) {
        conv 3 1 c     # four-space indentation
        pool max 2
    }
    b(64)   # a call

    gap ; softmax

    """

    private func rewrite(_ text: String, _ passes: [RewritePass]) -> RewriteOutcome {
        Rewriter.run(SourceFile(path: "untidy.dsl", text: text), passes: passes)
    }

    private func changedLines(_ a: String, _ b: String) -> (removed: [String], added: [String]) {
        let x = a.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let y = b.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(x.count, y.count, "a one-for-one rewrite keeps the line count:\n\(b)")
        var removed: [String] = [], added: [String] = []
        for (p, q) in zip(x, y) where p != q { removed.append(p); added.append(q) }
        return (removed, added)
    }

    func testAllConvChangesOnlyThePoolingLines() {
        let o = rewrite(untidy, [AllConvPass()])
        XCTAssertFalse(o.failed)
        let (removed, added) = changedLines(untidy, o.text)
        XCTAssertEqual(removed, ["pool max 2             # 16x16", "    pool max 2"])
        XCTAssertEqual(added, [
            "conv 2 2 32            # all-conv: replaces pool at line 9 (old comment: \"16x16\")",
            "    conv 2 2 64    # all-conv: replaces pool at line 13",
        ])
    }

    func testNothingToRewriteLeavesTheTextAsItIs() {
        let o = rewrite(untidy, [GapHeadPass()])   // no fc: nothing to do
        XCTAssertFalse(o.failed)
        XCTAssertEqual(o.text, untidy)
    }

    func testInsertionsKeepTheirNeighbours() {
        // Odd windows: convpool can insert its 'same' convolutions.
        let text = untidy.replacingOccurrences(of: "pool max 2", with: "pool max 3 2 pad=1")
        let o = rewrite(text, [ConvPoolPass()])
        XCTAssertFalse(o.failed)
        XCTAssertEqual(o.steps.first?.changes.count, 2)
        let old = text.split(separator: "\n", omittingEmptySubsequences: false)
        let new = o.text.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(new.count, old.count + 2)
        // Every old line is still there, in order.
        var i = new.startIndex
        for line in old {
            guard let j = new[i...].firstIndex(of: line) else { return XCTFail("line '\(line)' is gone:\n\(o.text)") }
            i = j + 1
        }
    }

    func testNoCleanCutFallsBackToTheCanonicalPrint() {
        // The pooling shares its line with a convolution: the whole spec is printed canonically.
        let text = "input 32x32x3\nconv 3 1 8 ; pool max 2   # c\ngap\n"
        let o = rewrite(text, [AllConvPass()])
        XCTAssertFalse(o.failed)
        let (spec, d) = Parser.parse(SourceFile(path: "x.dsl", text: o.text))
        XCTAssertFalse(d.hasErrors)
        XCTAssertEqual(SpecPrinter.print(spec), o.text)
        XCTAssertTrue(o.text.contains("conv 2 2 8"), o.text)
    }

    func testEveryShippedSpecRewritesToWhatTheCanonicalPrintSays() throws {
        let specs = try FileManager.default.contentsOfDirectory(atPath: repoRoot.appendingPathComponent("specs").path).filter { $0.hasSuffix(".dsl") }.sorted()
        XCTAssertGreaterThan(specs.count, 5)
        let passes: [RewritePass] = [StridedPass(), AllConvPass(), ConvPoolPass(), GapHeadPass(), ReducePass(policy: .ratio(ReductionRatios(r3: 0.5)))]
        for name in specs {
            let source = try SourceFile.read(path: specPath(name))
            for pass in passes {
                let o = Rewriter.run(source, passes: [pass])
                guard !o.failed else { continue }
                let (spec, d) = Parser.parse(SourceFile(path: name, text: o.text))
                XCTAssertFalse(d.hasErrors, "\(name) \(pass.name)")
                // The original's lines that the pass did not touch are all still there.
                let kept = Set(o.text.split(separator: "\n").map(String.init))
                let untouched = String(decoding: source.bytes, as: UTF8.self).split(separator: "\n").map(String.init).filter { !kept.contains($0) }
                let changes = o.steps.first?.changes.count ?? 0
                XCTAssertLessThanOrEqual(untouched.count, 3 * max(changes, 0), "\(name) \(pass.name): lines lost beyond the \(changes) changes: \(untouched.prefix(5))")
                _ = spec
            }
        }
    }
}
