import XCTest
import DSLSyntax
@testable import DSLIR

/// Every figure of /work/shared/reference/figures.md, from the repository's specs.
final class FigureTests: XCTestCase {
    /// All-CNN family: params (exact) and MACs in the ptflops convention (to 0.1 M).
    /// The B family is not in the table: its params are model A's plus the two 1x1 layers,
    /// 96*96+96 + 192*192+192 = 46,368 (computed by hand).
    func testAllCNNFamily() throws {
        let rows: [(String, Int, Double?)] = [
            ("model-a", 839_242, 139.1), ("strided-cnn-a", 839_242, 44.8), ("convpool-cnn-a", 1_254_250, 309.3), ("all-cnn-a", 1_254_250, 181.5),
            ("model-b", 839_242 + 46_368, nil), ("strided-cnn-b", 839_242 + 46_368, nil),
            ("convpool-cnn-b", 1_254_250 + 46_368, nil), ("all-cnn-b", 1_254_250 + 46_368, nil),
            ("model-c", 954_730, 229.1), ("strided-cnn-c", 954_730, 101.3), ("convpool-cnn-c", 1_369_738, 399.3), ("all-cnn-c", 1_369_738, 271.5),
        ]
        for (name, params, macs) in rows {
            let (g, c) = try buildSpec(name)
            XCTAssertEqual(c.params, params, name)
            if let macs { XCTAssertEqual((Double(c.ptflopsMACs) / 1e5).rounded() / 10, macs, name) }
            XCTAssertEqual(g.nodes[g.output].shape, Shape(1, 1, 10), name)
        }
    }

    /// Pure MACs of All-CNN-C by hand: per conv, H*W*k*k*Cin*Cout.
    func testAllCNNCMACsByHand() throws {
        let layers: [(hw: Int, k: Int, cin: Int, cout: Int)] = [
            (32, 3, 3, 96), (32, 3, 96, 96), (16, 3, 96, 96),
            (16, 3, 96, 192), (16, 3, 192, 192), (8, 3, 192, 192),
            (6, 3, 192, 192), (6, 1, 192, 192), (6, 1, 192, 10),
        ]
        let byHand = layers.reduce(0) { $0 + $1.hw * $1.hw * $1.k * $1.k * $1.cin * $1.cout }
        XCTAssertEqual(byHand, 270_798_336)
        let (_, c) = try buildSpec("all-cnn-c")
        XCTAssertEqual(c.macs, byHand)
        XCTAssertEqual(c.ptflopsMACs, 271_490_616)
    }

    /// GoogLeNet Table 1: each inception module at its input size (weights and MACs).
    func testGoogLeNetModules() throws {
        let rows: [(String, [Int], Int, Int, Int, Int, Int)] = [
            ("3a", [64, 96, 128, 16, 32, 32], 28, 192, 256, 163_328, 128_049_152),
            ("3b", [128, 128, 192, 32, 96, 64], 28, 256, 480, 388_096, 304_267_264),
            ("4a", [192, 96, 208, 16, 48, 64], 14, 480, 512, 375_552, 73_608_192),
            ("4b", [160, 112, 224, 24, 64, 64], 14, 512, 512, 448_512, 87_908_352),
            ("4c", [128, 128, 256, 24, 64, 64], 14, 512, 512, 509_440, 99_850_240),
            ("4d", [112, 144, 288, 32, 64, 64], 14, 512, 528, 604_672, 118_515_712),
            ("4e", [256, 160, 320, 32, 128, 128], 14, 528, 832, 867_328, 169_996_288),
            ("5a", [256, 160, 320, 32, 128, 128], 7, 832, 832, 1_042_432, 51_079_168),
            ("5b", [384, 192, 384, 48, 128, 128], 7, 832, 1024, 1_442_816, 70_697_984),
        ]
        let (whole, wholeCost) = try buildSpec("googlenet")
        for (name, cols, hw, cin, cout, weights, macs) in rows {
            let spec = "input \(hw)x\(hw)x\(cin)\n\(name): inception<\(cols.map(String.init).joined(separator: ", "))>\n"
            let (g, c) = try build(spec)
            XCTAssertEqual(g.nodes[g.output].shape, Shape(hw, hw, cout), name)
            XCTAssertEqual(c.weights, weights, name)
            XCTAssertEqual(c.macs, macs, name)
            // The same module inside the whole network.
            let m = try XCTUnwrap(whole.modules.first { $0.name == name })
            let s = wholeCost.sum(CostModel.members(of: m.id, in: whole))
            XCTAssertEqual(s.weights, weights, name)
            XCTAssertEqual(s.macs, macs, name)
            XCTAssertEqual(whole.node("\(name).concat")?.shape, Shape(hw, hw, cout), name)
        }
    }

    func testGoogLeNetWhole() throws {
        let (g, c) = try buildSpec("googlenet")
        XCTAssertEqual(c.weights, 6_990_272)
        XCTAssertEqual(c.macs, 1_582_671_872)
        XCTAssertEqual(c.params, 6_998_552)
        XCTAssertEqual(g.nodes[g.output].shape, Shape(1, 1, 1000))
        XCTAssertEqual(g.nodes[1].shape, Shape(112, 112, 64))
        // The first convolution: 7*7*3*64 weights at 112x112 = 118 M MACs (not the paper's 34 M).
        XCTAssertEqual(c.nodes[1].macs, 118_013_952)
    }

    func testInception3aWorkedExample() throws {
        let naive = 1 * 1 * 192 * 64 + 3 * 3 * 192 * 128 + 5 * 5 * 192 * 32
        let reduced = 1 * 1 * 192 * 64 + (1 * 1 * 192 * 96 + 3 * 3 * 96 * 128) + (1 * 1 * 192 * 16 + 5 * 5 * 16 * 32)
        let poolProj = 192 * 32
        XCTAssertEqual(naive, 387_072)
        XCTAssertEqual(reduced, 157_184)
        XCTAssertEqual(poolProj, 6_144)
        let (_, n) = try buildSpec("inception-3a-naive")
        XCTAssertEqual(n.weights, naive + poolProj)
        let (_, r) = try buildSpec("inception-3a")
        XCTAssertEqual(r.weights, reduced + poolProj)
        XCTAssertEqual(r.params, 163_696)
        XCTAssertEqual(r.params - r.weights, 368, "64+96+128+16+32+32 biases")
    }

    func testPyramidNets() throws {
        let (g110, c110) = try buildSpec("pyramidnet-110-a48")
        XCTAssertEqual(c110.params, 1_772_706)
        XCTAssertEqual(g110.modules.filter { $0.kind == "unit" }.count, 54)
        XCTAssertEqual(g110.nodes[g110.output].shape, Shape(1, 1, 10))
        // The last unit's width: 16 + 48 = 64.
        XCTAssertEqual(g110.node("pyramid1.s3.u18.add")?.shape, Shape(8, 8, 64))
        let (g164, c164) = try buildSpec("pyramidnet-164-a48-bottleneck")
        XCTAssertEqual(c164.params, 1_715_442)
        XCTAssertEqual(g164.node("pyramid1.s3.u18.add")?.shape, Shape(8, 8, 256))
    }
}
