import DSLIR
@testable import DSLPasses
import DSLSyntax
import Foundation
import XCTest

/// Issue #11: specs found by generating small random networks and running every pass on them
/// (a local fuzzer; the cases it found are kept here). A pass applies correctly or skips the
/// place with a located warning (an error with --strict); its output always passes the verifier.
final class PassRobustnessTests: XCTestCase {
    let half = ReducePass(policy: .ratio(ReductionRatios(r3: 0.5)))

    /// Every error of a rewrite, for messages.
    func errors(_ o: RewriteOutcome) -> [String] { o.steps.flatMap(\.diagnostics).filter { $0.severity == .error }.map(\.message) }

    /// Asserts the rewrite succeeded, its text elaborates with the input's output shape, and
    /// returns its diagnostics.
    @discardableResult
    func assertApplies(_ text: String, _ passes: [RewritePass], file: StaticString = #filePath, line: UInt = #line) -> (RewriteOutcome, [Diagnostic]) {
        let o = rewrite(text, passes)
        XCTAssertFalse(o.failed, "\(errors(o))\n\(text)", file: file, line: line)
        let before = Frontend.check(text: text), after = Frontend.check(text: o.text)
        XCTAssertFalse(after.diagnostics.hasErrors, o.text, file: file, line: line)
        if let g0 = before.graph, let g1 = after.graph {
            XCTAssertEqual(g1.nodes[g1.output].shape, g0.nodes[g0.output].shape, o.text, file: file, line: line)
        }
        return (o, o.steps.flatMap(\.diagnostics))
    }

    // MARK: reduce: pool projection widths in one pass

    /// The pool projections' widths come from one pass over the graph (each module's input
    /// width after the projections before it); elaborating the result gives the same widths.
    /// Before, the spec was re-elaborated once per module of a chain until the widths settled
    /// (200 chained modules: 15 s; found by dsl-fuzz, seed 2026, input 718394).
    func testProjectionWidthsAreSettledInOnePass() throws {
        let text = "input 5x5x2\n" + String(repeating: "inception<3, 0, 12, 15, 4, 0>\n", count: 40) + "gap\nfc 3\nsoftmax\n"
        let spec = Parser.parse(SourceFile(path: "chain.dsl", text: text)).0
        let a = Analysis(spec)
        let g = try XCTUnwrap(a.graph)
        let modules = spec.statements.filter { if case .layer("inception", _, _, _) = $0.kind { return true }; return false }
        let trial = Dictionary(uniqueKeysWithValues: modules.map { ($0.location, 1) })
        guard case .settled(let widths, let outputChannels) = ReducePass.propagatedWidths(g, a, trial, 0.5) else {
            return XCTFail("the widths of a chain settle in one pass")
        }
        XCTAssertEqual(outputChannels, 3)
        let after = Analysis(ReducePass.withProjections(spec, widths))
        XCTAssertNotNil(after.graph)
        for m in modules {
            XCTAssertEqual(widths[m.location], ReducePass.width(0.5, try XCTUnwrap(ReducePass.commonInputChannels(after, m.location))))
        }
        // Each module passes one more width on: the widths grow along the chain.
        XCTAssertLessThan(widths[modules[0].location]!, widths[modules[39].location]!)
        // A statement used at two different input widths has no single projection width.
        let twice = "input 5x5x2\nblock b() {\n  inception<3, 0, 12, 15, 4, 0>\n}\nb()\nconv 1 1 7\nb()\ngap\nfc 3\nsoftmax\n"
        let spec2 = Parser.parse(SourceFile(path: "twice.dsl", text: twice)).0
        let a2 = Analysis(spec2)
        let inner = try XCTUnwrap(spec2.statements.compactMap { s -> SourceLocation? in
            if case .block(let b) = s.kind { return b.body.first?.location }; return nil }.first)
        guard case .conflict = ReducePass.propagatedWidths(try XCTUnwrap(a2.graph), a2, [inner: 1], 0.5) else {
            return XCTFail("two uses at different widths are a conflict")
        }
    }

    // MARK: reduce: pool projections that would change the network's output

    /// A pool projection changes the module's width; when the module's output is the network's
    /// (8x8x20 -> 8x8x16 in the issue), the projection is skipped with a located warning.
    func testPoolProjectionThatWouldChangeTheOutputIsSkipped() {
        let text = "input 13x15x8\ninception<0, 0, 0, 0, 16, 0> bn\n"
        let (o, ds) = assertApplies(text, [half])
        let w = ds.filter { $0.severity == .warning && $0.message.contains("pool projection") }
        XCTAssertEqual(w.count, 1, "\(ds.map(\.message))")
        XCTAssertEqual(w.first?.location.line, 2)
        XCTAssertTrue(w.first?.message.contains("13x15x24 to 13x15x20") ?? false, "\(w.map(\.message))")
        // The reduction that keeps the width is still made.
        XCTAssertTrue(o.text.contains("inception<0, 0, 0, 4, 16, 0> bn"), o.text)
        // --strict: an error, nothing rewritten.
        XCTAssertTrue(rewrite(text, [half], strict: true).failed)
    }

    func testPoolProjectionBeforeTheHeadOfTheIssue() {
        // 8x8x20 -> 8x8x16: the module's width reaches the output through pooling and batch norm.
        let text = "input 8x8x16\nconv 3 1 16\ninception<4, 0, 0, 0, 0, 0>\npool max 3 1 pad=1\nbn\n"
        let (o, ds) = assertApplies(text, [half])
        XCTAssertTrue(ds.contains { $0.severity == .warning && $0.location.line == 3 && $0.message.contains("8x8x20 to 8x8x12") }, "\(ds.map(\.message))")
        XCTAssertTrue(o.text.contains("inception<4, 0, 0, 0, 0, 0>"), o.text)
        // Under a convolution the projection is fine: the module's width is absorbed.
        let (o2, _) = assertApplies("input 8x8x16\nconv 3 1 16\ninception<4, 0, 0, 0, 0, 0>\nconv 3 1 8\n", [half])
        XCTAssertTrue(o2.text.contains("inception<4, 0, 0, 0, 0, 8>"), o2.text)
    }

    /// A module behind another module's new pool projection sees the narrower width: its
    /// reductions are computed from that width (they were computed from the old one).
    func testWidthsFollowAnEarlierPoolProjection() {
        let text = "input 8x8x32\ninception<8, 0, 16, 0, 0, 0>\ninception<8, 0, 16, 0, 0, 0>\nconv 3 1 8\n"
        let (o, _) = assertApplies(text, [half])
        // First: input 32 -> projection 16, module width 8 + 16 + 16 = 40; second: 40 -> 20.
        XCTAssertTrue(o.text.contains("inception<8, 16, 16, 0, 0, 16>"), o.text)
        XCTAssertTrue(o.text.contains("inception<8, 20, 16, 0, 0, 20>"), o.text)
    }

    // MARK: rewrites the limits cannot take

    /// Replacing a pooling over 2^20 channels by a convolution needs 9 x 2^40 weights, more than
    /// the front end counts: the pass leaves it with a warning instead of failing verification.
    func testAllConvAndConvPoolOverTheParameterLimitAreSkipped() {
        let text = "input 8x8x1048576\npool\n"
        for pass in [AllConvPass(), ConvPoolPass()] as [RewritePass] {
            let (o, ds) = assertApplies(text, [pass])
            XCTAssertEqual(o.text, text)
            let w = ds.filter { $0.severity == .warning }
            XCTAssertEqual(w.count, 1, "\(ds.map(\.message))")
            XCTAssertEqual(w.first?.location.line, 2)
            XCTAssertTrue(w.first?.message.hasPrefix("\(pass.name): cannot apply:") ?? false, "\(w.map(\.message))")
            XCTAssertTrue(w.first?.message.contains("too large to count") ?? false, "\(w.map(\.message))")
            let strict = rewrite(text, [pass], strict: true)
            XCTAssertTrue(strict.failed)
        }
    }

    /// Two pools: the one that fits is rewritten, the other is left with a warning.
    func testOnlyTheRewriteThatFailsIsSkipped() {
        let text = "input 8x8x16\nconv 3 1 16\npool\nconv 1 1 1048576\npool\n"
        let (o, ds) = assertApplies(text, [AllConvPass()])
        XCTAssertTrue(o.text.contains("conv 3 2 16  # all-conv"), o.text)
        XCTAssertTrue(o.text.hasSuffix("conv 1 1 1048576\npool\n"), o.text)
        XCTAssertEqual(ds.filter { $0.severity == .warning }.map(\.location.line), [5])
    }

    /// A 1x1 reduction that costs more than it saves (a 5x5 with one filter over 2^20
    /// channels) is not made: here it would also exceed the parameter limit.
    func testReductionThatCostsMoreIsNotMade() {
        let text = "input 2x2x3\nrepeat 3 {\n  conv 1 1 1048576\n  dropout 0.1\n  conv 5 1 1\n}\n"
        let (o, ds) = assertApplies(text, [half])
        XCTAssertFalse(o.text.contains("conv 1 1 524288"), o.text)
        XCTAssertTrue(ds.contains { $0.severity == .note && $0.location.line == 5 && $0.message.contains("more MACs") }, "\(ds.map(\.message))")
    }

    // MARK: reduce --budget on plain convolution stacks

    func testBudgetReducesAPlainStack() throws {
        let outcome = try rewriteSpec("all-cnn-c.dsl", [ReducePass(policy: .budget(150_000_000, nil))])
        XCTAssertFalse(outcome.failed, "\(errors(outcome))")
        let after = try XCTUnwrap(outcome.costAfter)
        XCTAssertLessThanOrEqual(after.macs, 150_000_000)
        XCTAssertGreaterThan((outcome.steps.first ?? RewriteStep.empty).changes.count, 0)
        let why = (outcome.steps.first ?? RewriteStep.empty).summary.joined(separator: "\n")
        XCTAssertTrue(why.contains("are the widest that fit") && why.contains("the next step would need"), why)
        // The first convolution reads the image (through dropout): never reduced.
        XCTAssertTrue(outcome.text.contains("dropout 0.2\n\n# Stage 1\nconv 3 1 96\n"), outcome.text)
    }

    func testBudgetThatCannotBeMetNamesTheLeastReachable() throws {
        let outcome = try rewriteSpec("all-cnn-c.dsl", [ReducePass(policy: .budget(1_000_000, nil))])
        XCTAssertTrue(outcome.failed)
        let e = errors(outcome).joined(separator: "\n")
        XCTAssertTrue(e.contains("the budget of 1,000,000 MACs cannot be met"), e)
        XCTAssertTrue(e.contains("the least it can reach"), e)
    }

    func testBudgetAboveTheNetworkChangesNothing() throws {
        let outcome = try rewriteSpec("all-cnn-c.dsl", [ReducePass(policy: .budget(300_000_000, nil))])
        XCTAssertFalse(outcome.failed)
        XCTAssertEqual(outcome.steps.first?.changes.count, 0)
        XCTAssertTrue(outcome.steps.first?.summary.joined().contains("within the budget of 300,000,000") ?? false)
    }

    /// The reduce pass with a budget is monotone: a larger budget never gives a network with fewer MACs.
    func testBudgetIsMonotone() throws {
        var last = 0
        for budget in stride(from: 120_000_000, through: 270_000_000, by: 30_000_000) {
            let o = try rewriteSpec("all-cnn-c.dsl", [ReducePass(policy: .budget(budget, nil))])
            XCTAssertFalse(o.failed, "\(budget): \(errors(o))")
            let macs = o.costAfter?.macs ?? 0
            XCTAssertLessThanOrEqual(macs, budget)
            XCTAssertGreaterThanOrEqual(macs, last, "budget \(budget)")
            last = macs
        }
    }
}
