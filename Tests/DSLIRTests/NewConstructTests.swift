import XCTest
import DSLSyntax
@testable import DSLIR

/// Issue #13: rectangular, dilated, grouped and depthwise convolutions, the new activations,
/// `mul`, adaptive pooling and `add zeropad`. Every figure below is computed by hand from the
/// rules of Grammar.md (sections 3 and 5) and the README's "Counting rules".
final class NewConstructTests: XCTestCase {
    private func conv(_ g: Graph, _ name: String) throws -> ConvAttributes {
        guard case .conv(let c) = try XCTUnwrap(g.node(name), name).op else { throw XCTSkip("\(name) is not a conv") }
        return c
    }

    func testRectangularKernelsStridesAndPaddings() throws {
        let (g, c) = try build("""
        input 17x17x8
        a: conv 1x7 1 16
        b: conv 7x1 1 16 pad=3x0
        d: conv 3 2x1 16 pad=1x2x0x1
        e: conv 3 2 16 pad=0x0x1x1
        """)
        let a = try conv(g, "a")
        XCTAssertEqual([a.kernelHeight, a.kernelWidth, a.padTop, a.padLeft, a.padBottom, a.padRight], [1, 7, 0, 3, 0, 3], "default padding (K-1)/2 per axis")
        XCTAssertNil(a.square)
        XCTAssertEqual(g.node("a")?.shape, Shape(17, 17, 16))
        XCTAssertEqual(g.node("b")?.shape, Shape(17, 17, 16))
        // d: rows (17 + 1 + 0 - 3) / 2 + 1 = 8, columns (17 + 2 + 1 - 3) / 1 + 1 = 18.
        XCTAssertEqual(g.node("d")?.shape, Shape(8, 18, 16))
        // e: (8 + 0 + 1 - 3) / 2 + 1 = 4 rows, (18 + 0 + 1 - 3) / 2 + 1 = 9 columns.
        XCTAssertEqual(g.node("e")?.shape, Shape(4, 9, 16))
        func cost(_ n: String) -> NodeCost { c.nodes[g.node(n)!.id] }
        // a: 1*7*8*16 weights + 16 biases; 17*17*16 outputs of 7*8 MACs.
        XCTAssertEqual(cost("a").weights, 896)
        XCTAssertEqual(cost("a").params, 912)
        XCTAssertEqual(cost("a").macs, 17 * 17 * 16 * 7 * 8)
        // Receptive field per axis: a is 1 row x 7 columns, b adds 6 rows.
        XCTAssertEqual([cost("a").receptiveFieldHeight, cost("a").receptiveFieldWidth], [1, 7])
        XCTAssertEqual([cost("b").receptiveFieldHeight, cost("b").receptiveFieldWidth], [7, 7])
        XCTAssertEqual([cost("d").receptiveFieldHeight, cost("d").receptiveFieldWidth], [9, 9])
        XCTAssertEqual([cost("d").cumulativeStrideHeight, cost("d").cumulativeStrideWidth], [2, 1])
        // e: 3x3 on a 2x1 grid adds 2*2 rows, 2*1 columns; stride 4x2.
        XCTAssertEqual([cost("e").receptiveFieldHeight, cost("e").receptiveFieldWidth], [13, 11])
        XCTAssertEqual([cost("e").cumulativeStrideHeight, cost("e").cumulativeStrideWidth], [4, 2])
        XCTAssertEqual(cost("e").receptiveField, 13, "the single figure is the larger axis")
    }

    func testDilation() throws {
        let (g, c) = try build("""
        input 16x16x4
        a: conv 3 1 8 dilation=2
        b: conv 3 1 8 dilation=2x3 pad=valid
        d: conv 5 1 8 dilation=3 pad=same
        """)
        let a = try conv(g, "a")
        XCTAssertEqual([a.padTop, a.padLeft, a.dilationHeight, a.dilationWidth], [2, 2, 2, 2], "default padding d(K-1)/2 keeps the size")
        XCTAssertEqual(g.node("a")?.shape, Shape(16, 16, 8))
        // b: spans 5 rows and 7 columns without padding: 12x10.
        XCTAssertEqual(g.node("b")?.shape, Shape(12, 10, 8))
        XCTAssertEqual(g.node("d")?.shape, Shape(12, 10, 8), "same with dilation 3: pads 6")
        func cost(_ n: String) -> NodeCost { c.nodes[g.node(n)!.id] }
        // Dilation changes neither parameters nor MACs per output.
        XCTAssertEqual(cost("a").params, 3 * 3 * 4 * 8 + 8)
        XCTAssertEqual(cost("a").macs, 16 * 16 * 8 * 9 * 4)
        XCTAssertEqual(cost("a").receptiveField, 5)
        XCTAssertEqual([cost("b").receptiveFieldHeight, cost("b").receptiveFieldWidth], [9, 11])
        // d spans 13: +12 on each axis.
        XCTAssertEqual([cost("d").receptiveFieldHeight, cost("d").receptiveFieldWidth], [21, 23])
    }

    func testGroupsAndDepthwise() throws {
        let (g, c) = try build("""
        input 56x56x64
        a: conv 3 1 128 groups=32 bn
        b: dwconv 3 2 bn act=relu6
        p: conv 1 1 64 bn act=linear
        m: dwconv 5 1 2 nobias
        """)
        let a = try conv(g, "a"), b = try conv(g, "b"), m = try conv(g, "m")
        XCTAssertEqual(a.groups, 32)
        XCTAssertEqual([b.groups, b.filters], [128, 128], "dwconv: one group per input channel")
        XCTAssertEqual([m.groups, m.filters], [64, 128], "multiplier 2")
        XCTAssertEqual(b.activation, .relu6)
        func cost(_ n: String) -> NodeCost { c.nodes[g.node(n)!.id] }
        // a: 3*3*(64/32)*128 weights, batch norm 2*128; MACs 56*56*128*9*2.
        XCTAssertEqual(cost("a").weights, 2_304)
        XCTAssertEqual(cost("a").params, 2_304 + 256)
        XCTAssertEqual(cost("a").macs, 7_225_344)
        // b: 3*3*1*128, 28*28*128*9 MACs.
        XCTAssertEqual(g.node("b")?.shape, Shape(28, 28, 128))
        XCTAssertEqual(cost("b").weights, 1_152)
        XCTAssertEqual(cost("b").macs, 903_168)
        // m: 5*5*1*128 weights on 64 inputs, no bias.
        XCTAssertEqual(cost("m").params, 3_200)
        XCTAssertEqual(cost("m").macs, 28 * 28 * 128 * 25)
    }

    func testActivationsEverywhere() throws {
        let (g, c) = try build("""
        input 8x8x4
        a: conv 3 1 8 act=gelu
        b: conv 3 1 8 silu
        s: swish
        r: relu6
        h: hardswish
        k: hardsigmoid
        q: sigmoid
        t: tanh
        f: fc 3 act=tanh
        """)
        XCTAssertEqual(try conv(g, "a").activation, .gelu)
        XCTAssertEqual(try conv(g, "b").activation, .silu)
        let standalone: [(String, Activation)] = [("s", .silu), ("r", .relu6), ("h", .hardswish), ("k", .hardsigmoid), ("q", .sigmoid), ("t", .tanh)]
        for (name, a) in standalone {
            XCTAssertEqual(g.node(name)?.op, .activation(a), name)
            XCTAssertEqual(c.nodes[g.node(name)!.id].macs, 0, "activations have no MACs")
            XCTAssertEqual(c.nodes[g.node(name)!.id].otherOps, 8 * 8 * 8, name)
        }
        guard case .linear(let l) = g.node("f")!.op else { return XCTFail() }
        XCTAssertEqual(l.activation, .tanh)
        // ptflops counts ReLU6 (a ReLU-family module), not GELU, SiLU, the sigmoids or tanh.
        XCTAssertEqual(c.nodes[g.node("r")!.id].ptflopsMACs, 512)
        XCTAssertEqual(c.nodes[g.node("q")!.id].ptflopsMACs, 0)
        XCTAssertEqual(c.nodes[g.node("a")!.id].ptflopsMACs, c.nodes[g.node("a")!.id].macs + 8 * 8 * 8, "bias only")
        // Generated names are the activation's keyword (swish is silu).
        let (g2, _) = try build("input 4x4x2\nswish\ngelu\nrelu6\n")
        XCTAssertEqual(g2.nodes.map(\.name), ["input", "silu1", "gelu1", "relu61"])
    }

    func testSqueezeAndExcitationMul() throws {
        let (g, c) = try build("""
        input 14x14x32
        conv 3 2 32
        se: mul {} { gap ; conv 1 1 8 act=relu ; conv 1 1 32 act=hardsigmoid }
        both: mul {} { conv 1 1 32 } { relu }
        """)
        let se = try XCTUnwrap(g.node("se"))
        XCTAssertEqual(se.op, .mul)
        XCTAssertEqual(se.shape, Shape(7, 7, 32))
        XCTAssertEqual(g.node("both")?.shape, Shape(7, 7, 32))
        func cost(_ n: String) -> NodeCost { c.nodes[g.node(n)!.id] }
        XCTAssertEqual(cost("se").macs, 0)
        XCTAssertEqual(cost("se").otherOps, 7 * 7 * 32)
        XCTAssertEqual(cost("both").otherOps, 2 * 7 * 7 * 32, "one product per extra input")
        // The broadcast 1x1 branch does not set the grid: stride stays the conv's 2.
        XCTAssertEqual(cost("se").cumulativeStride, 2)
        XCTAssertEqual(cost("se").receptiveField, 3, "the convolution path's")
        XCTAssertFalse(cost("se").isGlobal, "the excitation's global view is left out")
        // SE parameters: 32*8 + 8 and 8*32 + 32.
        XCTAssertEqual(c.sum(g.nodes.filter { $0.name.hasPrefix("conv") && $0.id > 2 && $0.id < se.id }.map(\.id)).params, 264 + 288)
    }

    func testMulErrors() {
        XCTAssertEqual(errors("input 8x8x16\nmul {} { conv 1 2 16 }\n"),
                       ["cannot multiply branches of shapes 8x8x16 (branch 1) and 4x4x16 (branch 2): each branch must be 8x8x16 or 1x1x16 (broadcast over height and width)"])
        XCTAssertEqual(errors("input 8x8x16\nmul {} { gap ; conv 1 1 8 }\n"),
                       ["cannot multiply branches of shapes 8x8x16 (branch 1) and 1x1x8 (branch 2): each branch must be 8x8x16 or 1x1x16 (broadcast over height and width)"])
        XCTAssertEqual(errors("input 8x8x16\nmul { relu }\n"), ["'mul' needs at least two branches (use '{}' for the identity)"])
        XCTAssertEqual(errors("input 8x8x16\nmul zeropad {} {}\n").count, 1, "zeropad is add's")
    }

    func testAdaptiveAveragePooling() throws {
        let (g, c) = try build("""
        input 13x7x4
        a: pool avg to 6x3
        b: pool avg to 2
        d: pool avg to 1x1
        """)
        XCTAssertEqual(g.node("a")?.op, .adaptiveAvgPool(height: 6, width: 3))
        XCTAssertEqual(g.node("a")?.shape, Shape(6, 3, 4))
        XCTAssertEqual(g.node("b")?.shape, Shape(2, 2, 4))
        XCTAssertEqual(g.node("d")?.shape, Shape(1, 1, 4))
        XCTAssertEqual(g.node("a")?.name, "a")
        // PyTorch's bins: 13 rows to 6 are 3 rows each; 7 columns to 3 are 0-2, 2-4, 4-6.
        XCTAssertEqual(CostModel.adaptiveBins(13, 6), [3, 3, 3, 3, 3, 3])
        XCTAssertEqual(CostModel.adaptiveBins(7, 3), [3, 3, 3])
        XCTAssertEqual(CostModel.adaptiveBins(6, 4), [2, 2, 2, 2])
        XCTAssertEqual(CostModel.adaptiveBins(10, 3), [4, 4, 4])
        XCTAssertEqual(CostModel.adaptiveBins(5, 5), [1, 1, 1, 1, 1])
        func cost(_ n: String) -> NodeCost { c.nodes[g.node(n)!.id] }
        XCTAssertEqual(cost("a").macs, 0)
        XCTAssertEqual(cost("a").otherOps, 18 * 9 * 4, "every cell of every bin")
        XCTAssertEqual(cost("a").ptflopsMACs, 13 * 7 * 4)
        XCTAssertEqual([cost("a").receptiveFieldHeight, cost("a").receptiveFieldWidth], [3, 3])
        XCTAssertEqual([cost("a").cumulativeStrideHeight, cost("a").cumulativeStrideWidth], [3, 3])
        XCTAssertTrue(cost("d").isGlobal)
        // Larger than the input: PyTorch's repeating bins, with a warning.
        let larger = Frontend.check(text: "input 7x7x8\npool avg to 8x8\n")
        XCTAssertEqual(larger.graph?.nodes.last?.shape, Shape(8, 8, 8))
        XCTAssertEqual(larger.diagnostics.items.map(\.message), ["adaptive pooling to 8x8 is larger than its 7x7 input: its bins repeat input pixels (as PyTorch's AdaptiveAvgPool2d)"])
        XCTAssertEqual(errors("input 7x7x8\npool max to 2x2\n"), ["adaptive pooling is average pooling only: write 'pool avg to HEIGHTxWIDTH'"])
        XCTAssertEqual(errors("input 7x7x8\npool avg to 2x2 pad=1\n").count, 1)
    }

    func testAddWidthsNeedZeroPad() throws {
        let e = errors("input 16x16x8\nadd { conv 3 2 16 } { pool avg 2 }\n")
        XCTAssertEqual(e.count, 1)
        XCTAssertTrue(e[0].hasPrefix("cannot add branches of different widths: branch 1 has 16 channels, branch 2 has 8; project branch 2 to 16 channels with a 1x1 convolution"), e[0])
        XCTAssertTrue(e[0].contains("'add zeropad'"), e[0])
        let (g, _) = try build("input 16x16x8\nx: add zeropad { conv 3 2 16 } { pool avg 2 }\n")
        XCTAssertEqual(g.node("x")?.op, .add(zeroPad: true))
        XCTAssertEqual(g.node("x")?.shape, Shape(8, 8, 16))
        let (g2, _) = try build("input 16x16x8\nx: add { conv 3 1 8 } {}\n")
        XCTAssertEqual(g2.node("x")?.op, .add(zeroPad: false))
        // pyramid states zero-padding itself.
        let (p, _) = try build("input 8x8x16\npyramid 6 1\n")
        XCTAssertTrue(p.nodes.filter { $0.name.hasSuffix(".add") }.allSatisfy { $0.op == .add(zeroPad: true) })
    }

    func testBadValuesAreLocatedErrors() {
        func one(_ text: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
            let d = Frontend.check(text: text).diagnostics.items.filter { $0.severity == .error }
            XCTAssertEqual(d.count, 1, "\(d.map(\.message))", file: file, line: line)
            XCTAssertTrue(d.first?.message.contains(message) ?? false, "\(d.map(\.message))", file: file, line: line)
            XCTAssertEqual(d.first?.location.line, 2, file: file, line: line)
        }
        one("input 8x8x6\nconv 3 1 8 groups=3\n", "groups=3 does not divide the 8 filters")
        one("input 8x8x6\nconv 3 1 8 groups=4\n", "groups=4 does not divide the input's 6 channels")
        one("input 8x8x6\nconv 3 1 8 groups=0\n", "'groups' must be a whole number from 1 to 1048576")
        one("input 8x8x6\nconv 3 1 8 dilation=0\n", "'dilation' must be a whole number from 1 to 1024")
        one("input 8x8x6\nconv 3 1 8 dilation=2x2x2\n", "'dilation' must be a whole number")
        one("input 8x8x6\nconv 3x3x3 1 8\n", "kernel size '3x3x3' has 3 numbers")
        one("input 8x8x6\nconv 3 0x1 8\n", "stride must be from 1 to 1024 on each axis, got 0")
        one("input 8x8x6\nconv 2x3 1 8 pad=same\n", "'same' padding needs an odd kernel size (got 2x3)")
        one("input 8x8x6\nconv 3 1 8 pad=1x2x3\n", "padding must be same, valid or a whole number")
        one("input 8x8x6\ndwconv 3 1 groups=2\n", "unknown option 'groups' for 'dwconv'")
        one("input 8x8x6\ndwconv 3 1 0\n", "channel multiplier must be from 1 to 1024")
        one("input 4x4x6\nconv 5 1 8 dilation=2 pad=valid\n", "kernel 5 (dilated to 9x9) is larger than its input 4x4")
        one("input 8x8x6\nconv 3 1 8 act=gleu\n", "unknown activation 'gleu'; did you mean 'gelu'?")
        one("input 8x8x6\ndropout 3x3\n", "unexpected size '3x3' here; write a single number")
        one("input 8x8x6\npool 3x3\n", "unexpected size '3x3' here")
        one("input 8x8x6\ngelu 2\n", "too many arguments to 'gelu'")
    }

    func testKerasOrderLintIgnoresRectangles() {
        XCTAssertFalse(warnings("input 64x64x3\nconv 1x32 3 1\n").contains { $0.contains("Keras") })
        XCTAssertTrue(warnings("input 64x64x3\nconv 32 3 1\n").contains { $0.contains("Keras") })
    }

    func testOutputSquashIsNotALogitsSlip() {
        XCTAssertFalse(warnings("input 4x4x3\nfc 5\nsigmoid\n").contains { $0.contains("logits") })
        XCTAssertTrue(warnings("input 4x4x3\nfc 5\nrelu6\n").contains { $0.contains("a ReLU6 on the logits") })
        XCTAssertTrue(warnings("input 4x4x3\nfc 5 act=gelu\nsoftmax\n").contains { $0.contains("a GELU on the logits right before softmax") })
    }
}
