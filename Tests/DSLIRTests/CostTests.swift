import XCTest
import DSLSyntax
@testable import DSLIR

final class CostTests: XCTestCase {
    /// Issue #15: batch norm's running mean and variance are buffers (non-trainable), 2 per
    /// channel; past global pooling or fc the receptive field stays the spatial layers'.
    func testBuffersAndTheReceptiveFieldPastGlobalPooling() throws {
        let (g, c) = try build("""
        input 16x16x3
        a: conv 3 1 4 bn
        b: conv 3 1 6
        n: bn
        p: gap
        q: fc 5
        r: fc 3
        """)
        func cost(_ n: String) -> NodeCost { c.nodes[g.node(n)!.id] }
        XCTAssertEqual(cost("a").buffers, 8)
        XCTAssertEqual(cost("a").params, 3 * 3 * 3 * 4 + 8, "scale and shift stay trainable")
        XCTAssertEqual(cost("b").buffers, 0)
        XCTAssertEqual(cost("n").buffers, 12)
        XCTAssertEqual(c.buffers, 20)
        XCTAssertEqual(c.buffers(g.nodes.map(\.id)), 20)
        XCTAssertEqual(cost("b").receptiveField, 5)
        for name in ["p", "q", "r"] {
            XCTAssertEqual(cost(name).receptiveField, 5, name)
            XCTAssertTrue(cost(name).isGlobal, name)
        }
        XCTAssertFalse(cost("n").isGlobal)
    }

    /// A small network computed by hand, layer by layer.
    func testSmallNetworkByHand() throws {
        let (g, c) = try build("""
        input 8x8x3
        a: conv 3 1 4
        b: pool max 2
        d: conv 3 2 8
        e: conv 1 1 6 bn
        f: fc 10
        """)
        func cost(_ n: String) -> NodeCost { c.nodes[g.node(n)!.id] }
        // a: 3*3*3*4 weights + 4 biases; 8*8 outputs * 4 filters * 27 MACs each.
        XCTAssertEqual(cost("a").params, 112)
        XCTAssertEqual(cost("a").weights, 108)
        XCTAssertEqual(cost("a").macs, 6_912)
        XCTAssertEqual(cost("a").receptiveField, 3)
        XCTAssertEqual(cost("a").cumulativeStride, 1)
        // b: 2x2/2 pooling: 4x4x4, RF 3 + 1, stride 2.
        XCTAssertEqual(g.node("b")?.shape, Shape(4, 4, 4))
        XCTAssertEqual(cost("b").params, 0)
        XCTAssertEqual(cost("b").receptiveField, 4)
        XCTAssertEqual(cost("b").cumulativeStride, 2)
        // d: 3x3/2 pad 1 on 4x4: 2x2x8; 3*3*4*8 + 8; 2*2*8*36 MACs; RF 4 + 2*2 = 8, stride 4.
        XCTAssertEqual(g.node("d")?.shape, Shape(2, 2, 8))
        XCTAssertEqual(cost("d").params, 296)
        XCTAssertEqual(cost("d").macs, 1_152)
        XCTAssertEqual(cost("d").receptiveField, 8)
        XCTAssertEqual(cost("d").cumulativeStride, 4)
        // e: 1x1 with batch norm: no bias, scale and shift per channel.
        XCTAssertEqual(cost("e").params, 8 * 6 + 2 * 6)
        XCTAssertEqual(cost("e").weights, 48)
        XCTAssertEqual(cost("e").macs, 2 * 2 * 6 * 8)
        XCTAssertEqual(cost("e").receptiveField, 8, "1x1 does not grow the receptive field")
        // f: flattens 2x2x6 = 24 inputs.
        XCTAssertEqual(cost("f").params, 24 * 10 + 10)
        XCTAssertEqual(cost("f").macs, 240)
        XCTAssertEqual(c.params, 112 + 296 + 60 + 250)
        XCTAssertEqual(c.weights, 108 + 288 + 48 + 240)
        XCTAssertEqual(c.macs, 6_912 + 1_152 + 192 + 240)
        XCTAssertEqual(c.flops, 2 * c.macs)
    }

    func testBiasAndBatchNormOptions() throws {
        let (g, c) = try build("input 4x4x2\na: conv 3 1 5 nobias\nb: conv 3 1 5 bias=off\nc: conv 3 1 5 bn bias=on\nd: bn\ne: fc 3 bias=off\n")
        func p(_ n: String) -> Int { c.nodes[g.node(n)!.id].params }
        XCTAssertEqual(p("a"), 90)
        XCTAssertEqual(p("b"), 3 * 3 * 5 * 5)
        XCTAssertEqual(p("c"), 225 + 5 + 10)
        XCTAssertEqual(p("d"), 10)
        XCTAssertEqual(p("e"), 4 * 4 * 5 * 3)
    }

    func testPtflopsConvention() throws {
        // conv 3x3 1->2 on 4x4 with bias and ReLU: MACs + one per output for the bias and one
        // for the ReLU; max-pooling counts its input elements; gap its input elements.
        let (_, c) = try build("input 4x4x1\nconv 3 1 2\npool max 2\ngap\n")
        let convMacs = 4 * 4 * 2 * 9
        XCTAssertEqual(c.macs, convMacs)
        XCTAssertEqual(c.ptflopsMACs, convMacs + 32 + 32 + 32 + 8)
    }

    func testReceptiveFieldAndStrideSaturateInsteadOfTrapping() throws {
        // A 1x1 input keeps its size through any number of stride-2 layers: the cumulative stride
        // overflowed 64 bits after 63 of them (arithmetic-overflow trap, exit 132).
        for layer in ["conv 1 2 1", "pool max 1 2", "pool avg 1 2 ceil"] {
            let (_, c) = try build("input 1x1x1\nrepeat 63 {\n\(layer)\n}\nconv 3 1 1\ngap\nfc 1\n")
            for n in c.nodes {
                XCTAssertLessThanOrEqual(n.receptiveField, CostModel.maxReceptiveField)
                XCTAssertLessThanOrEqual(n.cumulativeStride, CostModel.maxReceptiveField)
            }
            XCTAssertEqual(c.nodes.last?.cumulativeStride, CostModel.maxReceptiveField, layer)
            XCTAssertEqual(c.nodes.last?.receptiveField, CostModel.maxReceptiveField, layer)
            XCTAssertEqual(c.nodes.last?.isCapped, true)
        }
        // Below the cap the figures are exact: 40 strides of 2, then a 3x3 adds 2 * 2^40.
        let (_, c) = try build("input 1x1x1\nrepeat 40 {\nconv 1 2 1\n}\nconv 3 1 1\n")
        XCTAssertEqual(c.nodes.last?.cumulativeStride, 1 << 40)
        XCTAssertEqual(c.nodes.last?.receptiveField, 1 + (2 << 40))
        XCTAssertEqual(c.nodes.last?.isCapped, false)
    }

    func testMemoryFiguresSaturateForAnyBatch() throws {
        let (_, c) = try build("input 64x64x3\nconv 3 1 16 bn\ngap\nfc 10\n")
        // Exact for ordinary batches...
        let largest = c.nodes.map(\.activationElements).max()!
        XCTAssertEqual(c.trainingBytes(batch: 4096), 4 * (3 * c.params + 4096 * (c.activationElements + 2 * largest)))
        let two = c.nodes.map(\.activationElements).sorted(by: >).prefix(2).reduce(0, +)
        XCTAssertEqual(c.inferenceBytes(batch: 4096), 4 * (c.params + 4096 * two))
        // ...and saturating, not trapping, for absurd ones.
        XCTAssertEqual(c.trainingBytes(batch: Int.max), Int.max)
        XCTAssertEqual(c.inferenceBytes(batch: Int.max / 2), Int.max)
        let (_, huge) = try build("input 92681x92681x4\nconv 1 1 4 bn\n")
        XCTAssertGreaterThan(huge.trainingBytes(batch: 1_000_000), 0)
        XCTAssertLessThan(huge.trainingBytes(batch: 1_000_000), Int.max)
    }

    func testMemberRangesHoldTheSameNodesAsMembersByModule() throws {
        let dir = packageRoot.appendingPathComponent("specs")
        var graphs: [Graph] = []
        for f in try FileManager.default.contentsOfDirectory(atPath: dir.path).filter({ $0.hasSuffix(".dsl") }).sorted() {
            graphs.append(try buildSpec(String(f.dropLast(4))).0)
        }
        graphs.append(try build("input 8x8x3\nblock e() {\n}\nblock b(c) {\n  e()\n  conv 3 1 c\n  concat { relu } { q: e() ; bn }\n}\nb(4)\nrelu\nb(8)\np: pyramid 2 1\n").0)
        for g in graphs {
            let ranges = CostModel.memberRanges(in: g)
            XCTAssertEqual(ranges.map(Array.init), CostModel.membersByModule(in: g), g.name)
        }
    }

    func testReceptiveFieldTakesTheLargestBranch() throws {
        let (_, c) = try build("input 16x16x3\ncat: concat { conv 1 1 4 } { conv 7 1 4 } { conv 3 1 4 ; conv 3 1 4 }\n")
        XCTAssertEqual(c.nodes.last?.receptiveField, 7)
        let (_, c2) = try build("input 16x16x4\nconv 3 2 4\nadd { conv 5 1 4 } { conv 3 1 4 ; conv 3 1 4 ; conv 3 1 4 }\n")
        XCTAssertEqual(c2.nodes.last?.receptiveField, 3 + 3 * 2 * 2, "after a stride 2, three 3x3 add 12 pixels, the 5x5 only 8")
        XCTAssertEqual(c2.nodes.last?.cumulativeStride, 2)
        XCTAssertEqual(errors("input 16x16x3\nconcat { conv 1 1 4 } { conv 3 2 4 }\n").count, 1)
    }

    func testMembersAndModulePaths() throws {
        let (g, c) = try buildSpec("inception-3a")
        XCTAssertEqual(g.modules.count, 1)
        let members = CostModel.members(of: 0, in: g)
        XCTAssertEqual(members.count, 8)
        XCTAssertEqual(members.map { g.nodes[$0].name }, ["3a.b1.conv", "3a.b2.reduce", "3a.b2.conv", "3a.b3.reduce", "3a.b3.conv", "3a.b4.pool", "3a.b4.proj", "3a.concat"])
        XCTAssertEqual(c.sum(members).weights, 163_328)
        XCTAssertEqual(g.modulePath(of: g.nodes[0]), [])
        XCTAssertEqual(g.modulePath(of: g.node("3a.b2.conv")!), [0])

        let (pg, _) = try build("input 8x8x4\npyramid 3 2\n")
        let unit = try XCTUnwrap(pg.modules.first { $0.name == "pyramid1.s2.u1" })
        let path = pg.modulePath(of: pg.node("pyramid1.s2.u1.conv1")!)
        XCTAssertEqual(path.map { pg.modules[$0].name }, ["pyramid1", "pyramid1.s2", "pyramid1.s2.u1"])
        XCTAssertEqual(CostModel.members(of: unit.id, in: pg).map { pg.nodes[$0].name },
                       ["bn", "conv1", "conv2", "shortcut", "add"].map { "pyramid1.s2.u1." + $0 }, "and nothing of other units")
        let stage = try XCTUnwrap(pg.modules.first { $0.name == "pyramid1.s2" })
        XCTAssertEqual(CostModel.members(of: stage.id, in: pg).count, 5 + 4, "nested modules' nodes count")
        XCTAssertEqual(CostModel.members(of: 0, in: pg).count, pg.nodes.count - 1)
    }

    func testMembersByModuleAgreesWithMembersOf() throws {
        for name in ["googlenet", "pyramidnet-164-a48-bottleneck"] {
            let (g, _) = try buildSpec(name)
            let all = CostModel.membersByModule(in: g)
            XCTAssertEqual(all.count, g.modules.count)
            for m in g.modules { XCTAssertEqual(all[m.id], CostModel.members(of: m.id, in: g), "\(name) \(m.name)") }
        }
        let (g, _) = try build("input 8x8x3\nblock b() {\n  relu\n}\nblock a() {\n  b()\n  bn\n}\na()\nb()\n")
        XCTAssertEqual(CostModel.membersByModule(in: g).map { $0.map { g.nodes[$0].name } }, [["a1.b1.relu1", "a1.bn1"], ["a1.b1.relu1"], ["b1.relu1"]])
    }
}
