import XCTest
import DSLSyntax
@testable import DSLIR

final class ExpansionTests: XCTestCase {
    func testGeneratedNamesCountPerKind() throws {
        let (g, _) = try build("input 8x8x3\nconv 3 1 8\nrelu\nconv 3 1 8\npool\nbn\npool avg 2\nfc 10\n")
        XCTAssertEqual(g.nodes.map(\.name), ["input", "conv1", "relu1", "conv2", "maxpool1", "bn1", "avgpool1", "fc1"])
    }

    func testLabelsInRepeatsGetIterationSuffixes() throws {
        let (g, _) = try build("input 8x8x3\nrepeat 2 {\n  x: conv 3 1 8\n  relu\n  repeat 2 {\n    y: bn\n  }\n}\nrepeat 1 {\n  z: bn\n}\n")
        XCTAssertEqual(g.nodes.map(\.name), ["input", "x.1", "relu1", "y.1.1", "y.1.2", "x.2", "relu2", "y.2.1", "y.2.2", "z"])
    }

    func testBlockInstancesPrefixNames() throws {
        let (g, _) = try build("input 8x8x3\nblock stage(c) {\n  conv 3 1 c\n  out: bn\n}\nstage(8)\nfirst: stage(4 * 2)\nstage(16)\n")
        XCTAssertEqual(g.nodes.map(\.name), ["input", "stage1.conv1", "stage1.out", "first.conv1", "first.out", "stage2.conv1", "stage2.out"])
        XCTAssertEqual(g.modules.map(\.name), ["stage1", "first", "stage2"])
        XCTAssertEqual(g.modules.map(\.summary), ["stage(8)", "stage(4 * 2)", "stage(16)"])
        XCTAssertEqual(g.node("stage2.conv1")?.shape.channels, 16)
    }

    func testDuplicateGeneratedNamesGetSuffixes() throws {
        let (g, _) = try build("input 8x8x3\nconv1: relu\nconv 3 1 8\nconv 3 1 8\n")
        XCTAssertEqual(g.nodes.map(\.name), ["input", "conv1", "conv1_2", "conv2"])
        XCTAssertEqual(errors("input 8x8x3\nconv 3 1 8\nconv1: bn\n"), ["layer name 'conv1' is already used"])
    }

    func testInceptionExpansion() throws {
        let (g, c) = try build("input 28x28x192\n3a: inception<64, 96, 128, 16, 32, 32>\ninception<8, 0, 0, 0, 0, 0>\n")
        let names = g.nodes.map(\.name)
        XCTAssertEqual(Array(names[1...8]), ["3a.b1.conv", "3a.b2.reduce", "3a.b2.conv", "3a.b3.reduce", "3a.b3.conv", "3a.b4.pool", "3a.b4.proj", "3a.concat"])
        XCTAssertEqual(Array(names[9...]), ["inception1.b1.conv", "inception1.b4.pool", "inception1.concat"], "empty columns are left out; the pool column stays")
        XCTAssertEqual(g.node("3a.concat")?.inputs.map { g.nodes[$0].name }, ["3a.b1.conv", "3a.b2.conv", "3a.b3.conv", "3a.b4.proj"])
        XCTAssertEqual(g.node("3a.concat")?.shape, Shape(28, 28, 256))
        XCTAssertEqual(g.node("inception1.concat")?.shape, Shape(28, 28, 8 + 256))
        guard case .conv(let b3) = g.node("3a.b3.conv")!.op, case .pool(let p) = g.node("3a.b4.pool")!.op else { return XCTFail() }
        XCTAssertEqual(b3.square?.kernel, 5)
        XCTAssertEqual(b3.square?.stride, 1)
        XCTAssertEqual(b3.square?.pad, 2)
        XCTAssertEqual([p.kernel, p.stride, p.pad], [3, 1, 1])
        XCTAssertTrue(b3.bias)
        XCTAssertEqual(c.nodes[g.node("3a.b2.conv")!.id].weights, 3 * 3 * 96 * 128)
        let bn = try build("input 8x8x16\ninception<4, 4, 4, 4, 4, 4> bn\n")
        guard case .conv(let bnc) = bn.0.node("inception1.b1.conv")!.op else { return XCTFail() }
        XCTAssertTrue(bnc.batchNorm)
        XCTAssertFalse(bnc.bias, "bias defaults to off with bn")
    }

    func testPyramidWidthsByHand() throws {
        // 16 input channels, alpha 1.5 over 3 units: +0.5 per unit: 16.5, 17.0, 17.5, rounded
        // half to even: 16, 17, 18.
        let (g, c) = try build("input 32x32x16\npyramid 1.5 1\n")
        XCTAssertEqual(g.node("pyramid1.s1.u1.conv2")?.shape, Shape(32, 32, 16))
        XCTAssertEqual(g.node("pyramid1.s2.u1.conv2")?.shape, Shape(16, 16, 17))
        XCTAssertEqual(g.node("pyramid1.s3.u1.conv2")?.shape, Shape(8, 8, 18))
        XCTAssertEqual(g.node("pyramid1.s3.u1.shortcut")?.shape, Shape(8, 8, 17))
        XCTAssertEqual(g.node("pyramid1.s3.u1.add")?.shape, Shape(8, 8, 18), "the shortcut is zero-padded to 18")
        XCTAssertEqual(g.modules.map(\.name), ["pyramid1", "pyramid1.s1", "pyramid1.s1.u1", "pyramid1.s2", "pyramid1.s2.u1", "pyramid1.s3", "pyramid1.s3.u1"])
        // Unit 2: BN(16) + conv 3x3 16->17 + BN(17) + conv 3x3 17->17 + BN(17), no biases.
        let u2 = CostModel.members(of: g.modules.first { $0.name == "pyramid1.s2.u1" }!.id, in: g)
        XCTAssertEqual(c.sum(u2).params, 32 + (144 * 17 + 34) + (153 * 17 + 34))
        XCTAssertEqual(roundHalfEven(16.5), 16)
        XCTAssertEqual(roundHalfEven(17.5), 18)
        XCTAssertEqual(roundHalfEven(2.5), 2)
    }

    func testPyramidBottleneck() throws {
        // 8 channels, alpha 6 over 3 units: 10, 12, 14; bottleneck outputs 4x: 40, 48, 56.
        let (g, _) = try build("input 16x16x8\npyramid 6 1 bottleneck\n")
        XCTAssertEqual(g.node("pyramid1.s1.u1.conv1")?.shape, Shape(16, 16, 10))
        XCTAssertEqual(g.node("pyramid1.s1.u1.conv2")?.shape, Shape(16, 16, 10))
        XCTAssertEqual(g.node("pyramid1.s1.u1.conv3")?.shape, Shape(16, 16, 40))
        XCTAssertEqual(g.node("pyramid1.s2.u1.conv2")?.shape, Shape(8, 8, 12), "the stride is on the 3x3")
        XCTAssertEqual(g.node("pyramid1.s3.u1.conv3")?.shape, Shape(4, 4, 56))
        XCTAssertEqual(g.modules.first { $0.name == "pyramid1.s2.u1" }?.summary, "bottleneck 40→48")
    }

    func testCallNotesPointAtTheCallSite() {
        let c = Frontend.check(text: "input 8x8x3\nblock b(c) {\n  conv 3 1 c\n}\nblock a() {\n  b(0)\n}\na()\n")
        let e = c.diagnostics.items.filter { $0.severity == .error }
        XCTAssertEqual(e.count, 1)
        XCTAssertEqual(e.first?.location.line, 3)
        XCTAssertEqual(e.first?.notes.map(\.message), ["in block 'b' called here", "in block 'a' called here"])
        XCTAssertEqual(e.first?.notes.map(\.location.line), [6, 8])
    }

    func testRepeatShortcuts() {
        // Poisoned repeats report once; projected overflow is reported at the repeat.
        XCTAssertEqual(errors("input 8x8x3\nrepeat 100000 {\nrepeat 100000 {\nconv 3 1 0\n}\n}\n").count, 1)
        XCTAssertEqual(errors("input 8x8x3\nrepeat 3 {\nrepeat 1000 {\nrelu\n}\n}\n"), [])
        let big = errors("input 8x8x3\nrepeat 2001 {\nrepeat 1000 {\nbn\n}\n}\n")
        XCTAssertEqual(big, ["the network expands to more than 2000000 layers (this repeat alone would make 2001000 layers)"])
        // 2000 x 1000 layers plus the input node is one over the limit.
        XCTAssertEqual(errors("input 8x8x3\nrepeat 2000 {\nrepeat 1000 {\nbn\n}\n}\n").count, 1)
        XCTAssertEqual(errors("input 8x8x3\nblock e() {\n}\nrepeat 100000 {\nrepeat 100000 {\ne()\n}\n}\n"),
                       ["the network expands to more than 2000000 module instances (this repeat alone would make 10000000000 module instances)"])
    }
}
