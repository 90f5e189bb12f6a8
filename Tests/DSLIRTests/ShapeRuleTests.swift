import XCTest
import DSLSyntax
@testable import DSLIR

final class ShapeRuleTests: XCTestCase {
    private func out(_ op: Op, _ inputs: [Shape]) -> Shape? {
        var e: [String] = [], w: [String] = []
        return ShapeRules.infer(op, inputs: inputs, errors: &e, warnings: &w)
    }
    private func conv(_ k: Int, _ s: Int, _ p: Int, _ f: Int = 8) -> Op {
        .conv(ConvAttributes(kernel: k, stride: s, pad: p, filters: f, bias: true, batchNorm: false, activation: .relu))
    }
    private func pool(_ k: Int, _ s: Int, _ p: Int, ceil: Bool) -> Op {
        .pool(PoolAttributes(kind: .max, kernel: k, stride: s, pad: p, ceil: ceil))
    }

    func testConvolutionFloorRule() {
        // floor((H + 2p - k) / s) + 1
        XCTAssertEqual(out(conv(3, 1, 1), [Shape(32, 32, 3)]), Shape(32, 32, 8))
        XCTAssertEqual(out(conv(3, 2, 1), [Shape(32, 32, 3)]), Shape(16, 16, 8))
        XCTAssertEqual(out(conv(3, 1, 0), [Shape(8, 8, 3)]), Shape(6, 6, 8))
        XCTAssertEqual(out(conv(7, 2, 3, 64), [Shape(224, 224, 3)]), Shape(112, 112, 64))
        XCTAssertEqual(out(conv(5, 3, 0), [Shape(17, 10, 3)]), Shape(5, 2, 8), "(17-5)/3+1 = 5, (10-5)/3+1 = 2")
    }

    func testPoolingFloorAndCeil() {
        XCTAssertEqual(out(pool(3, 2, 0, ceil: false), [Shape(112, 112, 64)]), Shape(55, 55, 64))
        XCTAssertEqual(out(pool(3, 2, 0, ceil: true), [Shape(112, 112, 64)]), Shape(56, 56, 64))
        XCTAssertEqual(out(pool(3, 2, 1, ceil: false), [Shape(32, 32, 96)]), Shape(16, 16, 96), "the All-CNN pooling")
        XCTAssertEqual(out(pool(3, 2, 0, ceil: true), [Shape(32, 32, 96)]), Shape(16, 16, 96), "Caffe's rounding up gives the same")
        // PyTorch: with ceil the last window may not start in the right padding.
        // H=5, k=2, s=2, p=1: span 7, floor 3, ceil would be 4 but window 4 starts at 6 >= 5+1.
        XCTAssertEqual(out(pool(2, 2, 1, ceil: true), [Shape(5, 5, 1)]), Shape(3, 3, 1))
        XCTAssertEqual(out(pool(2, 2, 0, ceil: true), [Shape(5, 5, 1)]), Shape(3, 3, 1))
        XCTAssertEqual(out(pool(2, 2, 0, ceil: false), [Shape(5, 5, 1)]), Shape(2, 2, 1))
        // PyTorch lets a ceil window overhang by up to s - 1: AvgPool2d(2, 2, ceil_mode=True)
        // maps 1x1 to 1x1, but a 3x3/2 window on 1x1 still does not fit.
        XCTAssertEqual(out(pool(2, 2, 0, ceil: true), [Shape(1, 1, 4)]), Shape(1, 1, 4))
        XCTAssertNil(out(pool(3, 2, 0, ceil: true), [Shape(1, 1, 4)]))
        XCTAssertNil(out(pool(2, 2, 0, ceil: false), [Shape(1, 1, 4)]))
        XCTAssertEqual(out(pool(3, 2, 0, ceil: true), [Shape(2, 2, 4)]), Shape(1, 1, 4))
    }

    func testTooLargeWindowIsAnError() {
        var e: [String] = [], w: [String] = []
        XCTAssertNil(ShapeRules.infer(conv(5, 1, 0), inputs: [Shape(4, 4, 3)], errors: &e, warnings: &w))
        XCTAssertEqual(e, ["kernel 5 is larger than its input 4x4"])
        e = []
        XCTAssertNil(ShapeRules.infer(conv(9, 1, 2), inputs: [Shape(4, 4, 3)], errors: &e, warnings: &w))
        XCTAssertEqual(e, ["kernel 9 is larger than its padded input 4x4 (padding 2)"])
    }

    func testStrideWarnings() {
        var e: [String] = [], w: [String] = []
        _ = ShapeRules.infer(conv(3, 2, 0), inputs: [Shape(32, 32, 3)], errors: &e, warnings: &w)
        XCTAssertEqual(w, ["stride 2 drops the last 1 row of the 32x32 input"], "square input: warned once")
        w = []
        _ = ShapeRules.infer(conv(3, 2, 1), inputs: [Shape(32, 32, 3)], errors: &e, warnings: &w)
        XCTAssertEqual(w, [], "padding covers the remainder")
        _ = ShapeRules.infer(pool(2, 3, 0, ceil: false), inputs: [Shape(8, 8, 3)], errors: &e, warnings: &w)
        XCTAssertTrue(w.contains("pooling stride 3 is larger than its window 2; pixels between windows are never seen"), "\(w)")
    }

    func testConcatAndAdd() {
        XCTAssertEqual(out(.concat, [Shape(28, 28, 64), Shape(28, 28, 128), Shape(28, 28, 32)]), Shape(28, 28, 224))
        XCTAssertEqual(out(.add(zeroPad: true), [Shape(16, 16, 17), Shape(16, 16, 16)]), Shape(16, 16, 17), "narrower inputs are zero-padded when stated")
        XCTAssertNil(out(.add(zeroPad: false), [Shape(16, 16, 17), Shape(16, 16, 16)]), "unequal widths are an error unless zero-padding is stated")
        var e: [String] = [], w: [String] = []
        XCTAssertNil(ShapeRules.infer(.concat, inputs: [Shape(16, 16, 8), Shape(15, 16, 8)], errors: &e, warnings: &w))
        XCTAssertEqual(e, ["cannot concatenate branches of different sizes: branch 1 is 16x16, branch 2 is 15x16"])
        e = []
        XCTAssertNil(ShapeRules.infer(.add(zeroPad: false), inputs: [Shape(16, 16, 8), Shape(16, 16, 8), Shape(8, 8, 8)], errors: &e, warnings: &w))
        XCTAssertEqual(e, ["cannot add branches of different sizes: branch 1 is 16x16, branch 3 is 8x8"])
    }

    func testOtherOps() {
        XCTAssertEqual(out(.globalAvgPool, [Shape(6, 6, 10)]), Shape(1, 1, 10))
        XCTAssertEqual(out(.linear(LinearAttributes(units: 1000, bias: true, activation: .none)), [Shape(7, 7, 1024)]), Shape(1, 1, 1000))
        for op: Op in [.batchNorm, .softmax, .dropout(0.5), .activation(.relu)] {
            XCTAssertEqual(out(op, [Shape(5, 7, 3)]), Shape(5, 7, 3))
        }
    }

    func testPaddingDefaultsThroughTheLanguage() throws {
        let (g, _) = try build("""
        input 32x32x3
        a: conv 3 1 8
        b: conv 3 1 8 pad=valid
        c: conv 4 1 8
        d: conv 5 1 8 pad=1
        e: conv 5 1 8 same
        f: pool
        g: pool 2
        h: pool avg 3 1 pad=1
        i: pool max 3 2 ceil
        """)
        XCTAssertEqual(g.node("a")?.shape, Shape(32, 32, 8), "same by default")
        XCTAssertEqual(g.node("b")?.shape, Shape(30, 30, 8))
        XCTAssertEqual(g.node("c")?.shape, Shape(29, 29, 8), "even kernel: pad floor((4-1)/2) = 1, 30+2-4+1")
        XCTAssertEqual(g.node("d")?.shape, Shape(27, 27, 8))
        XCTAssertEqual(g.node("e")?.shape, Shape(27, 27, 8))
        XCTAssertEqual(g.node("f")?.shape, Shape(14, 14, 8), "bare pool: 3x3 stride 2 pad 1")
        guard case .pool(let f) = g.node("f")!.op, case .pool(let gp) = g.node("g")!.op else { return XCTFail() }
        XCTAssertEqual([f.kernel, f.stride, f.pad], [3, 2, 1])
        XCTAssertEqual([gp.kernel, gp.stride, gp.pad], [2, 2, 0], "with K only the stride is K")
        XCTAssertEqual(g.node("g")?.shape, Shape(7, 7, 8))
        XCTAssertEqual(g.node("h")?.shape, Shape(7, 7, 8))
        XCTAssertEqual(g.node("i")?.shape, Shape(3, 3, 8), "(7-3)/2+1 = 3 exactly")
    }

    func testSemanticErrors() {
        XCTAssertEqual(errors("input 8x8x3\nconv 4 1 8 pad=same\n"), ["'same' padding needs an odd kernel size (got 4); give pad=N explicitly"])
        XCTAssertEqual(errors("input 8x8x3\npool 2 2 pad=2\n"), ["pooling padding 2 is more than half the window 2"])
        XCTAssertEqual(errors("input 8x8x3\ndropout 1\n").count, 1)
        XCTAssertEqual(errors("input 8x8x3\nconcat { conv 3 2 8 } { }\n"), ["cannot concatenate branches of different sizes: branch 1 is 4x4, branch 2 is 8x8"])
        XCTAssertEqual(errors("input 8x8x3\na: relu\na: bn\n"), ["layer name 'a' is already used"])
    }
}
