import DSLIR
@testable import DSLPasses
import DSLSyntax
import Foundation
import XCTest

extension RewriteStep {
    /// A stand-in so a failed rewrite fails assertions instead of crashing the test run.
    static let empty = RewriteStep(pass: "", input: SourceFile(path: "", text: ""), changes: [], diagnostics: [], summary: [])
}

/// Rewrites spec text with passes.
func rewrite(_ text: String, _ passes: [RewritePass], strict: Bool = false, path: String = "test.dsl") -> RewriteOutcome {
    Rewriter.run(SourceFile(path: path, text: text), passes: passes, strict: strict)
}

func rewriteSpec(_ name: String, _ passes: [RewritePass]) throws -> RewriteOutcome {
    Rewriter.run(try SourceFile.read(path: specPath(name)), passes: passes)
}

/// Acceptance 1 and 2: the papers' networks from their base models.
final class PaperAcceptanceTests: XCTestCase {
    /// Rewrites model-M with a pass and compares the elaborated graph with the target spec:
    /// same ops, attributes, connections and shapes, in order.
    func assertRewrite(_ model: String, _ pass: RewritePass, equals target: String, file: StaticString = #filePath, line: UInt = #line) throws -> (Graph, NetworkCost)? {
        let outcome = try rewriteSpec(model, [pass])
        XCTAssertFalse(outcome.failed, "\(outcome.steps.flatMap(\.diagnostics).map(\.message))", file: file, line: line)
        XCTAssertTrue(outcome.steps.flatMap(\.diagnostics).filter { $0.severity != .note }.isEmpty, file: file, line: line)
        guard let (got, cost) = graph(outcome.text, file: file, line: line), let (want, _) = graph(try specText(target), file: file, line: line) else { return nil }
        XCTAssertEqual(layerSignature(got), layerSignature(want), "\(model) + \(pass.name) is not \(target)", file: file, line: line)
        return (got, cost)
    }

    func testModelCAllConvIsAllCNNC() throws {
        let r = try assertRewrite("model-c.dsl", AllConvPass(), equals: "all-cnn-c.dsl")
        XCTAssertEqual(r?.1.params, 1_369_738)
        XCTAssertEqual(r?.1.macs, 270_798_336)
        XCTAssertEqual(r?.1.ptflopsMACs, 271_490_616)   // 271.5 M in the ptflops convention
    }
    func testModelCStridedIsStridedCNNC() throws {
        let r = try assertRewrite("model-c.dsl", StridedPass(), equals: "strided-cnn-c.dsl")
        XCTAssertEqual(r?.1.params, 954_730)
    }
    func testModelCConvPoolIsConvPoolCNNC() throws { _ = try assertRewrite("model-c.dsl", ConvPoolPass(), equals: "convpool-cnn-c.dsl") }
    func testModelAAllConv() throws { _ = try assertRewrite("model-a.dsl", AllConvPass(), equals: "all-cnn-a.dsl") }
    func testModelAStrided() throws { _ = try assertRewrite("model-a.dsl", StridedPass(), equals: "strided-cnn-a.dsl") }
    func testModelAConvPool() throws { _ = try assertRewrite("model-a.dsl", ConvPoolPass(), equals: "convpool-cnn-a.dsl") }
    func testModelBAllConv() throws { _ = try assertRewrite("model-b.dsl", AllConvPass(), equals: "all-cnn-b.dsl") }
    func testModelBStrided() throws { _ = try assertRewrite("model-b.dsl", StridedPass(), equals: "strided-cnn-b.dsl") }
    func testModelBConvPool() throws { _ = try assertRewrite("model-b.dsl", ConvPoolPass(), equals: "convpool-cnn-b.dsl") }

    func testTheComparisonCanFail() throws {
        // Guard against a vacuous comparison: model C is not All-CNN-C.
        let (a, _) = graph(try specText("model-c.dsl"))!
        let (b, _) = graph(try specText("all-cnn-c.dsl"))!
        XCTAssertNotEqual(layerSignature(a), layerSignature(b))
    }

    func testInceptionReduceWithPaperRatios() throws {
        let outcome = try rewriteSpec("inception-3a-naive.dsl", [ReducePass(policy: .ratio(ReductionRatios(r3: 0.5, r5: 0.0833)))])
        XCTAssertFalse(outcome.failed)
        let (g, cost) = graph(outcome.text)!
        XCTAssertEqual(cost.weights, 163_328)
        let projection = g.nodes.filter { $0.name.hasSuffix("b4.proj") }.map { cost.nodes[$0.id].weights }.reduce(0, +)
        XCTAssertEqual(projection, 192 * 32)
        XCTAssertEqual(cost.weights - projection, 157_184)
        XCTAssertEqual(cost.macs, 128_049_152)
        XCTAssertTrue(outcome.text.contains("3a: inception<64, 96, 128, 16, 32, 32>"), outcome.text)
        // Same layers as the paper's module.
        XCTAssertEqual(layerSignature(g), layerSignature(graph(try specText("inception-3a.dsl"))!.0))
        XCTAssertEqual((outcome.steps.first ?? RewriteStep.empty).changes.count, 1)
        XCTAssertEqual((outcome.steps.first ?? RewriteStep.empty).changes[0].deltaParams, 163_696 - 393_472)
    }

    func testInceptionReduceWithinBudget() throws {
        let budget = 128_049_152
        let outcome = try rewriteSpec("inception-3a-naive.dsl", [ReducePass(policy: .budget(budget, nil))])
        XCTAssertFalse(outcome.failed)
        let (_, cost) = graph(outcome.text)!
        XCTAssertLessThanOrEqual(cost.macs, budget)
        // The widest common width that fits: 62 (63 would need 129,830,400 MACs).
        XCTAssertTrue(outcome.text.contains("inception<64, 62, 128, 62, 32, 32>"), outcome.text)
        let why = (outcome.steps.first ?? RewriteStep.empty).summary.joined()
        XCTAssertTrue(why.contains("127,998,976") && why.contains("129,830,400"), why)
        XCTAssertGreaterThan(try rewriteSpec("inception-3a-naive.dsl", [ReducePass(policy: .budget(budget + 2_000_000, nil))]).costAfter!.macs, cost.macs)
    }

    func testBudgetWithGivenRatiosKeepsTheirProportion() throws {
        let outcome = try rewriteSpec("inception-3a-naive.dsl", [ReducePass(policy: .budget(128_049_152, ReductionRatios(r3: 0.5, r5: 0.0833)))])
        XCTAssertFalse(outcome.failed)
        XCTAssertLessThanOrEqual(outcome.costAfter!.macs, 128_049_152)
        XCTAssertTrue(outcome.text.contains("inception<64, 96, 128, 16, 32, 32>"), outcome.text)
    }

    func testBudgetNothingFitsIsAnError() throws {
        let outcome = try rewriteSpec("inception-3a-naive.dsl", [ReducePass(policy: .budget(1_000_000, nil))])
        XCTAssertTrue(outcome.failed)
        let d = (outcome.steps.first ?? RewriteStep.empty).diagnostics.first { $0.severity == .error }
        XCTAssertTrue(d?.message.contains("the budget of 1,000,000 MACs cannot be met: the narrowest reductions") ?? false, "\(String(describing: d))")
        XCTAssertTrue(d?.message.contains("still need 16,282,112 MACs, the least it can reach (308,281,344 without reductions)") ?? false, "\(String(describing: d))")
    }

    func testBudgetWithNothingToReduce() throws {
        let over = try rewriteSpec("googlenet.dsl", [ReducePass(policy: .budget(1_000_000_000, nil))])
        XCTAssertTrue(over.failed)
        XCTAssertTrue(over.steps.flatMap(\.diagnostics).contains { $0.severity == .error && $0.message.contains("nothing in the network can be reduced, and it needs 1,582,671,872 MACs") })
        let within = try rewriteSpec("googlenet.dsl", [ReducePass(policy: .budget(2_000_000_000, nil))])
        XCTAssertFalse(within.failed)
        XCTAssertEqual(within.steps.first?.changes.count, 0)
        XCTAssertTrue(within.steps.first?.summary.joined().contains("nothing to reduce; the network needs 1,582,671,872 MACs, within the budget of 2,000,000,000") ?? false)
    }

    func testGapHeadOnGoogLeNet() throws {
        let outcome = try rewriteSpec("googlenet.dsl", [GapHeadPass()])
        XCTAssertFalse(outcome.failed)
        XCTAssertTrue(outcome.text.contains("dropout 0.4\nconv 1 1 1000 act=linear      # gap-head: replaces fc at line 32\ngap\nsoftmax\n"), outcome.text)
        XCTAssertEqual(outcome.costAfter?.params, outcome.costBefore?.params)
    }
}

/// Acceptance 4: idempotence and composition.
final class CompositionTests: XCTestCase {
    func testIdempotentPasses() throws {
        for m in ["model-a.dsl", "model-b.dsl", "model-c.dsl", "googlenet.dsl"] {
            for pass in [AllConvPass(), StridedPass(), ConvPoolPass()] as [RewritePass] {
                let once = try rewriteSpec(m, [pass])
                let twice = try rewriteSpec(m, [pass, pass])
                XCTAssertFalse(twice.failed, "\(m) \(pass.name)")
                XCTAssertEqual(twice.text, once.text, "\(pass.name) twice differs from once on \(m)")
                XCTAssertEqual(twice.steps.count, 2)
                XCTAssertEqual(twice.steps.last?.changes.count, 0, "\(pass.name) changed its own output on \(m)")
            }
        }
    }

    func testReduceIsNotIdempotentButSkipsReducedConvs() throws {
        let text = "input 8x8x64\nconv 3 1 64\nconv 3 1 64\n"
        let once = rewrite(text, [ReducePass(policy: .ratio(ReductionRatios(r3: 0.5)))])
        let twice = rewrite(text, [ReducePass(policy: .ratio(ReductionRatios(r3: 0.5))), ReducePass(policy: .ratio(ReductionRatios(r3: 0.5)))])
        XCTAssertEqual(once.text, twice.text)
        XCTAssertTrue((twice.steps.count == 2 ? twice.steps[1].diagnostics : []).contains { $0.severity == .note && $0.message.contains("already preceded by a 1x1") })
    }

    func testOrderMatters() throws {
        // convpool then strided: the inserted convolution takes the stride, which is All-CNN-C.
        let a = try rewriteSpec("model-c.dsl", [ConvPoolPass(), StridedPass()])
        XCTAssertFalse(a.failed)
        XCTAssertEqual(layerSignature(graph(a.text)!.0), layerSignature(graph(try specText("all-cnn-c.dsl"))!.0))
        // strided then convpool: no pooling is left for convpool, which is Strided-CNN-C.
        let b = try rewriteSpec("model-c.dsl", [StridedPass(), ConvPoolPass()])
        XCTAssertFalse(b.failed)
        XCTAssertEqual(b.steps.count, 2)
        XCTAssertEqual(b.steps.last?.changes.count, 0)
        XCTAssertEqual(layerSignature(graph(b.text)!.0), layerSignature(graph(try specText("strided-cnn-c.dsl"))!.0))
        XCTAssertNotEqual(a.text, b.text)
    }

    func testThreePassesCompose() throws {
        let o = try rewriteSpec("googlenet.dsl", [AllConvPass(), GapHeadPass(), ReducePass(policy: .ratio(ReductionRatios(r3: 0.5)))])
        XCTAssertFalse(o.failed, "\(o.steps.flatMap(\.diagnostics).filter { $0.severity == .error }.map(\.message))")
        XCTAssertEqual(o.steps.map(\.pass), ["all-conv", "gap-head", "reduce"])
        XCTAssertEqual(o.graphAfter?.nodes.last?.shape, Shape(1, 1, 1000))
        // Later passes report locations in the text they read.
        XCTAssertTrue(o.steps.count == 3 && o.steps[1].input.path.hasSuffix("(after all-conv)"))
    }

    func testChangesCarryDeltas() throws {
        let o = try rewriteSpec("model-c.dsl", [StridedPass()])
        XCTAssertEqual((o.steps.first ?? RewriteStep.empty).changes.map(\.location.line), [15, 21])
        XCTAssertEqual((o.steps.first ?? RewriteStep.empty).changes[0].before, "conv 3 1 96; pool")
        XCTAssertEqual((o.steps.first ?? RewriteStep.empty).changes[0].after, "conv 3 2 96")
        XCTAssertEqual((o.steps.first ?? RewriteStep.empty).changes[0].deltaParams, 0)
        XCTAssertEqual((o.steps.first ?? RewriteStep.empty).changes[0].deltaMACs, -63_700_992)
        XCTAssertEqual((o.steps.first ?? RewriteStep.empty).changes[0].deltaReceptiveField, -2)
        XCTAssertEqual(o.costAfter!.macs - o.costBefore!.macs, (o.steps.first ?? RewriteStep.empty).changes.map(\.deltaMACs).reduce(0, +))
    }

    func testPrintedRewriteNamesThePass() throws {
        let o = try rewriteSpec("model-c.dsl", [AllConvPass()])
        XCTAssertTrue(o.text.contains("conv 3 2 96  # all-conv: replaces pool at line 15 (old comment: \"3x3 max-pooling, stride 2\")"), o.text)
        XCTAssertTrue(o.text.hasPrefix("# Model C (base)"))   // header kept
        XCTAssertTrue(o.text.contains("# Stage 2\n"))          // leading comments kept
    }
}

/// Acceptance 5: every "cannot apply" case, located; errors under --strict; verification.
final class CannotApplyTests: XCTestCase {
    func diagnostics(_ text: String, _ pass: RewritePass, strict: Bool = false) -> (RewriteOutcome, [Diagnostic]) {
        let o = rewrite(text, [pass], strict: strict)
        XCTAssertTrue(o.inputDiagnostics.filter { $0.severity == .error }.isEmpty, "\(o.inputDiagnostics.map(\.message))")
        return (o, o.steps.flatMap(\.diagnostics))
    }

    func assertOne(_ ds: [Diagnostic], _ severity: Severity, _ fragment: String, line: Int, column: Int = 1, file: StaticString = #filePath, _ l: UInt = #line) {
        let hits = ds.filter { $0.message.contains(fragment) }
        XCTAssertEqual(hits.count, 1, "expected one diagnostic containing '\(fragment)', got \(ds.map { "\($0.location.line): \($0.message)" })", file: file, line: l)
        guard let d = hits.first else { return }
        XCTAssertEqual(d.severity, severity, file: file, line: l)
        XCTAssertEqual(d.location.line, line, "\(d.message)", file: file, line: l)
        XCTAssertEqual(d.location.column, column, "\(d.message)", file: file, line: l)
    }

    func testStridedPoolingWithNoConvolutionBefore() {
        let (o, ds) = diagnostics("input 32x32x3\ndropout 0.2\npool\nconv 3 1 8\n", StridedPass())
        assertOne(ds, .warning, "strided: cannot apply: no convolution directly before the max-pooling to take its stride; found 'dropout'", line: 3)
        XCTAssertFalse(o.failed)
        XCTAssertTrue(o.text.contains("\npool\n"))   // left alone
    }

    func testStridedPoolingFirstInABranch() {
        let (_, ds) = diagnostics("input 32x32x3\nconv 3 1 8\nconcat {\n  pool max 3 1 pad=1\n} {\n  conv 3 1 8\n}\n", StridedPass())
        assertOne(ds, .warning, "found nothing (it is the first statement inside a 'concat' branch)", line: 4, column: 3)
    }

    /// Issue #13: the passes rewrite square, ungrouped convolutions only; a rectangular,
    /// dilated or grouped one is left alone with a located warning, never read along one axis.
    func testStridedSkipsConvolutionsItCannotRewrite() {
        let (o, ds) = diagnostics("input 32x32x8\nconv 3 1 8 groups=2\npool\n", StridedPass())
        assertOne(ds, .warning, "is rectangular, dilated, grouped or asymmetrically padded", line: 3)
        XCTAssertTrue(o.text.contains("conv 3 1 8 groups=2\npool\n"), o.text)
        let (o2, ds2) = diagnostics("input 32x32x8\nconv 3 1x1 8\npool\n", StridedPass())
        assertOne(ds2, .warning, "writes its stride as a size ('1x1')", line: 3)
        XCTAssertTrue(o2.text.contains("conv 3 1x1 8\npool\n"), o2.text)
    }

    func testReduceSkipsConvolutionsItCannotRewrite() {
        for conv in ["conv 1x7 1 64", "conv 3 1 64 dilation=2", "conv 3 1 64 groups=4"] {
            let (o, ds) = diagnostics("input 16x16x3\nconv 3 1 256\n\(conv)\ngap\n", ReducePass(policy: .ratio(ReductionRatios(r3: 0.25))))
            assertOne(ds, .warning, "not reduced: the convolution is rectangular, dilated, grouped or asymmetrically padded", line: 3)
            XCTAssertTrue(o.text.contains("conv 3 1 256\n\(conv)\n"), "\(conv): \(o.text)")
        }
        // A square one next to them is still reduced.
        let (o, _) = diagnostics("input 16x16x3\nconv 3 1 256\nconv 3 1 64\ngap\n", ReducePass(policy: .ratio(ReductionRatios(r3: 0.25))))
        XCTAssertTrue(o.text.contains("conv 1 1 64"), o.text)
    }

    func testStridedPoolingAfterAMerge() {
        let (_, ds) = diagnostics("input 32x32x3\nadd {\n  conv 3 1 3\n} {}\npool\n", StridedPass())
        assertOne(ds, .warning, "found 'add'", line: 5)
    }

    func testStridedPaddingWouldChangeTheOutputSize() {
        let (_, ds) = diagnostics("input 32x32x3\nconv 5 1 8 pad=valid\npool max 3 2\n", StridedPass())
        assertOne(ds, .warning, "with stride 2 and padding 0 would give 14x14 where the pooling gives 13x13; its padding would change the output size", line: 3)
    }

    func testStridedConvolutionAlreadyTookAStride() {
        let (o, ds) = diagnostics("input 32x32x3\nconv 3 1 8\npool\npool\n", StridedPass())
        assertOne(ds, .warning, "already took the stride of another pooling", line: 4)
        XCTAssertEqual((o.steps.first ?? RewriteStep.empty).changes.count, 1)
    }

    func testPoolingInsideInceptionForEachPoolingPass() {
        for pass in [StridedPass(), AllConvPass(), ConvPoolPass()] as [RewritePass] {
            let (_, ds) = diagnostics("input 28x28x192\nconv 1 1 192\n3a: inception<64, 96, 128, 16, 32, 32>\n", pass)
            assertOne(ds, .warning, "\(pass.name): cannot apply: the max-pooling inside inception module '3a' is part of the folded module", line: 3)
        }
    }

    func testAllConvBlockUsedWithDifferentWidths() {
        let text = "input 32x32x3\nblock down() {\n  pool max 2\n}\nconv 3 1 8\ndown()\nconv 3 1 16\ndown()\n"
        let (o, ds) = diagnostics(text, AllConvPass())
        assertOne(ds, .warning, "all-conv: cannot apply: the max-pooling inside block 'down' sees different inputs in its 2 uses (channels 8, 16)", line: 3, column: 3)
        XCTAssertEqual((o.steps.first ?? RewriteStep.empty).changes.count, 0)
        let (_, ds2) = diagnostics(text, ConvPoolPass())
        assertOne(ds2, .warning, "convpool: cannot apply: the max-pooling inside block 'down' sees different inputs", line: 3, column: 3)
    }

    func testAllConvNoPaddingFitsEveryUse() {
        // 14 -> 7 needs padding 0, 7 -> 4 (rounded up) needs padding 1.
        let text = "input 14x14x4\nblock d() {\n  pool max 2 2 ceil\n}\nd()\nd()\n"
        let (o, ds) = diagnostics(text, AllConvPass())
        assertOne(ds, .warning, "all-conv: cannot apply: no padding of a 2x2 stride-2 convolution gives the pooling's output sizes in all its uses (7x7 from 14x14, 4x4 from 7x7)", line: 3, column: 3)
        XCTAssertEqual(o.text, SpecPrinter.print(Parser.parse(SourceFile(path: "t", text: text)).0))
    }

    func testPoolingInABlockNeverCalled() {
        for pass in [StridedPass(), AllConvPass(), ConvPoolPass()] as [RewritePass] {
            let (_, ds) = diagnostics("input 32x32x3\nblock unused() {\n  conv 3 1 8\n  pool\n}\nconv 3 1 8\n", pass)
            assertOne(ds, .warning, "is never elaborated (its block is never called)", line: 4, column: 3)
        }
    }

    func testConvPoolEvenWindow() {
        let (_, ds) = diagnostics("input 32x32x3\nconv 3 1 8\npool max 2\n", ConvPoolPass())
        assertOne(ds, .warning, "convpool: cannot apply: the pooling window 2 is even", line: 3)
    }

    func testConvPoolAlreadyApplied() {
        let first = rewrite("input 32x32x3\nconv 3 1 8\npool\n", [ConvPoolPass()])
        let (_, ds) = diagnostics(first.text, ConvPoolPass())
        assertOne(ds, .note, "convpool: already applied here", line: 4)
    }

    func testGapHeadWithoutClassifier() {
        let (_, ds) = diagnostics("input 32x32x3\nconv 3 1 10\ngap\nsoftmax\n", GapHeadPass())
        assertOne(ds, .warning, "gap-head: cannot apply: the network does not end in a fully connected classifier at the top level (it ends in 'gap')", line: 3)
    }

    func testReduceBlockUsedWithDifferentWidths() {
        let text = "input 32x32x3\nblock b() {\n  conv 3 1 32\n}\nconv 1 1 64\nb()\nb()\n"
        let (_, ds) = diagnostics(text, ReducePass(policy: .ratio(ReductionRatios(r3: 0.25))))
        assertOne(ds, .warning, "reduce: cannot apply: the convolution inside block 'b' sees different inputs in its 2 uses (channels 32, 64)", line: 3, column: 3)
    }

    func testReduceInceptionColumnExpression() {
        let text = "input 28x28x64\nblock m(r) {\n  inception<16, r, 32, 0, 8, 8>\n}\nm(0)\n"
        let (o, ds) = diagnostics(text, ReducePass(policy: .ratio(ReductionRatios(r3: 0.5))))
        assertOne(ds, .warning, "reduce: cannot apply: the #3x3 reduce column of this inception module is an expression", line: 3, column: 17)
        XCTAssertTrue(o.text.contains("inception<16, r, 32, 32, 8, 8>"), o.text)
    }

    func testReducePyramidIsFolded() {
        let (_, ds) = diagnostics("input 32x32x3\nconv 3 1 16 bn act=linear\npyramid 48 1\ngap\n", ReducePass(policy: .ratio(ReductionRatios(r3: 0.5))))
        assertOne(ds, .warning, "reduce: cannot apply: the 3x3 convolutions inside the pyramid module are part of the folded module", line: 3)
        let (_, ds2) = diagnostics("input 32x32x3\nconv 3 1 16 bn act=linear\npyramid 48 1 bottleneck\ngap\n", ReducePass(policy: .ratio(ReductionRatios(r3: 0.5))))
        assertOne(ds2, .note, "reduce: not reduced: the pyramid's bottleneck units already put a 1x1", line: 3)
    }

    func testStridedNamesARemovedLabel() {
        let o = rewrite("input 32x32x3\nconv 3 1 8\np1: pool\n", [StridedPass()])
        XCTAssertTrue(o.text.contains("conv 3 2 8  # strided: stride 2, from the pool 'p1' at line 3 (removed)"), o.text)
    }

    func testReduceNarrowInputIsANote() {
        let (_, ds) = diagnostics("input 8x8x3\nconv 5 1 1\nconv 3 1 8\n", ReducePass(policy: .ratio(ReductionRatios(r3: 0.5))))
        assertOne(ds, .note, "not reduced: its input has 1 channels, no more than the reduction width 1", line: 3)
        let (_, ds2) = diagnostics("input 8x8x3\nconv 3 1 8\n", ReducePass(policy: .ratio(ReductionRatios(r3: 0.5))))
        assertOne(ds2, .note, "not reduced: the convolution reads the network input", line: 2)
    }

    func testStrictTurnsWarningsIntoErrors() {
        let text = "input 32x32x3\ndropout 0.2\npool\n"
        let (o, ds) = diagnostics(text, StridedPass(), strict: true)
        XCTAssertTrue(o.failed)
        assertOne(ds, .error, "strided: cannot apply: no convolution directly before", line: 3)
        XCTAssertFalse(rewrite(text, [StridedPass()]).failed)
    }

    func testInputWithErrorsIsNotRewritten() {
        let o = rewrite("input 32x32x3\nconv 3 1\n", [AllConvPass()])
        XCTAssertTrue(o.failed)
        XCTAssertTrue(o.steps.isEmpty)
        XCTAssertFalse(o.inputDiagnostics.isEmpty)
    }

    /// A deliberately wrong pass: the verifier must catch it, naming the pass and the layer.
    struct WideningPass: RewritePass {
        let name = "widen-bug"
        let summary = "test pass that changes a layer's width"
        func apply(_ spec: SpecFile) -> PassResult {
            var r = PassResult(spec: spec)
            guard let i = spec.statements.firstIndex(where: { if case .layer("conv", _, _, _) = $0.kind { return true }; return false }),
                  case .layer(let k, let w, var args, let o) = spec.statements[i].kind else { return r }
            let old = spec.statements[i]
            args[2] = .number(7, text: "7", old.location)
            r.spec.statements[i].kind = .layer(kind: k, words: w, arguments: args, options: o)
            r.changes.append(Change(pass: name, location: old.location, before: SpecPrinter.line(old), after: SpecPrinter.line(r.spec.statements[i]),
                                    beforeRegion: [old.location], afterRegion: [[i]]))
            return r
        }
    }

    func testVerifierRejectsAShapeChange() {
        let o = rewrite("input 8x8x3\nconv 3 1 16\nconv 3 1 16\n", [WideningPass()])
        XCTAssertTrue(o.failed)
        let errors = o.steps.flatMap(\.diagnostics).filter { $0.severity == .error }
        XCTAssertTrue(errors.contains { $0.message.contains("verification failed after pass 'widen-bug': 'conv 3 1 7' gives 8x8x7 where 'conv 3 1 16' gave 8x8x16") && $0.location.line == 2 }, "\(errors.map(\.message))")
        XCTAssertNil(o.costAfter)
    }

    func testVerifierRejectsAnOutputShapeChange() {
        let o = rewrite("input 8x8x3\nconv 3 1 16\n", [WideningPass()])
        XCTAssertTrue(o.steps.flatMap(\.diagnostics).contains { $0.message.contains("the network's output shape changed from 8x8x16 to 8x8x7") })
    }
}

final class DiffTests: XCTestCase {
    func testUnifiedDiff() {
        let a = "a\nb\nc\nd\ne\nf\ng\nh\n", b = "a\nb\nc\nD\ne\nf\ng\nh\ni\n"
        XCTAssertEqual(LineDiff.unified(a, b, oldName: "x", newName: "y", context: 1), """
        --- x
        +++ y
        @@ -3,3 +3,3 @@
         c
        -d
        +D
         e
        @@ -8,1 +8,2 @@
         h
        +i

        """)
        XCTAssertEqual(LineDiff.unified(a, a, oldName: "x", newName: "y"), "")
    }

    /// The old and new texts an edit script describes.
    func sides(_ e: [LineDiff.Edit]) -> ([String], [String]) {
        var a: [String] = [], b: [String] = []
        for x in e {
            switch x { case .same(let s): a.append(s); b.append(s); case .removed(let s): a.append(s); case .added(let s): b.append(s) }
        }
        return (a, b)
    }

    /// Issue #11: `--diff` of a 12,000-line spec built a 12,000 x 15,000 table (1.4 GB). Large
    /// inputs use Myers' algorithm (as few edits as the table), and past 3,000 edits one hunk.
    func testLargeDiffsStayBounded() {
        var rng = SplitMix(state: 11)
        for _ in 0..<20 {
            let a = (0..<rng.int(0...40)).map { _ in String(rng.int(0...4)) }
            let b = (0..<rng.int(0...40)).map { _ in String(rng.int(0...4)) }
            let t = LineDiff.table(a, b), m = LineDiff.myers(a, b, maxEdits: 1000)!
            XCTAssertTrue(sides(t) == (a, b) && sides(m) == (a, b))
            let changed = { (e: [LineDiff.Edit]) in e.filter { if case .same = $0 { return false }; return true }.count }
            XCTAssertEqual(changed(m), changed(t), "\(a) \(b)")
        }
        // 12,000 lines, a line inserted every 4: 3,000 edits, Myers.
        let old = (0..<12_000).map { "line \($0 % 4)" }
        var new: [String] = []
        for (i, l) in old.enumerated() { if i % 4 == 1 { new.append("inserted") }; new.append(l) }
        let e = LineDiff.edits(old, new)
        XCTAssertTrue(sides(e) == (old, new))
        XCTAssertEqual(e.filter { $0 == .added("inserted") }.count, 3000)
        XCTAssertEqual(e.count, 15_000)
        // Twice as many: one hunk replacing the middle, still a correct diff.
        let old2 = old + old, new2 = new + new
        let e2 = LineDiff.edits(old2, new2)
        XCTAssertTrue(sides(e2) == (old2, new2))
        let text = LineDiff.unified(old2.joined(separator: "\n") + "\n", new2.joined(separator: "\n") + "\n", oldName: "a", newName: "b")
        XCTAssertTrue(text.hasPrefix("--- a\n+++ b\n@@ -1,24000 +1,30000 @@\n"), String(text.prefix(120)).debugDescription)
    }

    func testEditsAreMinimal() {
        let e = LineDiff.edits(["a", "b", "c", "d"], ["b", "c", "x", "d"])
        XCTAssertEqual(e, [.removed("a"), .same("b"), .same("c"), .added("x"), .same("d")])
    }
}
