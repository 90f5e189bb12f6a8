@testable import DSLIR
import DSLSyntax
import DSLVisualize
import Foundation
import XCTest

/// The layout's promises on graphs nobody wrote by hand: random specs nesting merges (labelled
/// or not, with identity branches), repeats, block calls, inception and pyramid modules, at
/// random depths; a graph that is not series-parallel; and the README's figures being what
/// `dsl draw` makes now.
final class DrawLayoutPropertyTests: XCTestCase {
    /// SplitMix64: the same specs on every run.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
        mutating func chance(_ p: Double) -> Bool { Double(next() % 1_000_000) / 1_000_000 < p }
    }

    /// A random spec on a 16x16x8 input whose layers keep the spatial size (so any branches
    /// can be concatenated or added).
    struct SpecGenerator {
        var random: Random
        var labels = 0
        var blocks: [String] = []
        var budget = 0

        mutating func layer() -> String {
            switch random.int(0...4) {
            case 0: return "conv 1 1 \(random.int(1...24))"
            case 1: return "conv 3 1 \(random.int(1...24)) bn"
            case 2: return "relu"
            case 3: return "bn"
            default: return "pool max 3 1 pad=1"
            }
        }

        mutating func label() -> String { labels += 1; return "m\(labels)" }

        mutating func body(_ depth: Int, blocksAllowed: Int) -> [String] {
            var lines: [String] = []
            for _ in 0..<random.int(1...3) {
                budget -= 1
                let r = random.int(0...9)
                if depth >= 4 || budget <= 0 || r < 4 {
                    lines.append(layer())
                } else if r < 7 {
                    let kind = random.chance(0.5) ? "concat" : "add zeropad"   // branch widths differ
                    let head = (random.chance(0.5) ? label() + ": " : "") + kind
                    var branches: [String] = []
                    for _ in 0..<random.int(2...4) {
                        if random.chance(0.25) { branches.append("{ }"); continue }
                        branches.append("{\n" + body(depth + 1, blocksAllowed: blocksAllowed).joined(separator: "\n") + "\n}")
                    }
                    lines.append(head + " " + branches.joined(separator: " "))
                } else if r == 7 {
                    lines.append("repeat \(random.int(1...3)) {\n" + body(depth + 1, blocksAllowed: blocksAllowed).joined(separator: "\n") + "\n}")
                } else if r == 8 && blocksAllowed > 0 {
                    let b = random.int(0...(blocksAllowed - 1))
                    lines.append((random.chance(0.3) ? label() + ": " : "") + "blk\(b)(\(random.int(1...16)))")
                } else {
                    lines.append(random.chance(0.5) ? "inception<\(random.int(0...8)), \(random.int(1...8)), \(random.int(1...8)), \(random.int(1...8)), \(random.int(1...8)), \(random.int(0...8))>" : layer())
                }
            }
            return lines
        }

        mutating func spec() -> String {
            budget = random.int(4...40)
            var text = "input 16x16x8\n"
            let blockCount = random.int(0...2)
            for b in 0..<blockCount {
                let inner = body(1, blocksAllowed: b).map { $0.replacingOccurrences(of: "conv 1 1 ", with: "conv 1 1 c + ") }
                text += "block blk\(b)(c) {\n" + inner.joined(separator: "\n") + "\n}\n"
            }
            text += body(0, blocksAllowed: blockCount).joined(separator: "\n") + "\n"
            if random.chance(0.3) { text += "pyramid \(random.int(1...12)) \(random.int(1...2))\n" }
            text += "gap\nfc 10\n"
            return text
        }
    }

    func testRandomSpecsLayOutWithoutOverlapsOrCrossings() throws {
        var generator = SpecGenerator(random: Random(state: 14))
        var drawn = 0, merges = 0, collapsed = 0
        for i in 0..<150 {
            let text = generator.spec()
            let checked = Frontend.check(text: text, path: "random\(i).dsl")
            guard !checked.diagnostics.hasErrors else {
                XCTFail("random spec \(i) has errors:\n\(text)\n\(checked.diagnostics.items.map(\.message))")
                continue
            }
            for depth in [0, 1, 2, Int.max] {
                let model = try XCTUnwrap(DrawingModel(checked: checked, depth: depth))
                XCTAssertTrue(model.isSeriesParallel, "random spec \(i)")
                let problems = DrawGeometry.problems(model, DrawingLayout(model), limit: 5)
                XCTAssertEqual(problems, [], "random spec \(i) at depth \(depth):\n\(text)")
                drawn += 1
                merges += model.boxes.filter { $0.kind == "concat" || $0.kind == "add" }.count
                collapsed += model.boxes.filter { $0.kind == "module" }.count
            }
        }
        // The generator exercises what it is meant to.
        XCTAssertEqual(drawn, 600)
        XCTAssertGreaterThan(merges, 600)
        XCTAssertGreaterThan(collapsed, 300)
    }

    /// A graph no spec makes (a value read across a merge: not series-parallel) is drawn as a
    /// column of its layers with the other edges in lanes right of it: still no overlaps and no
    /// edge through a box.
    func testGraphThatIsNotSeriesParallel() throws {
        let s = Shape(8, 8, 4)
        let at = SourceLocation(offset: 0, length: 1, line: 1, column: 1)
        let conv = Op.conv(ConvAttributes(kernel: 3, stride: 1, pad: 1, filters: 4, bias: true, batchNorm: false, activation: .relu))
        func node(_ id: Int, _ name: String, _ op: Op, _ inputs: [Int]) -> Node {
            Node(id: id, name: name, op: op, inputs: inputs, shape: s, location: at, module: nil)
        }
        // a -> b, a -> c, (b, c) -> d, (b, d) -> e: b is read past the merge d.
        let g = Graph(name: "n-shape", nodes: [
            node(0, "input", .input, []), node(1, "a", conv, [0]), node(2, "b", conv, [1]), node(3, "c", conv, [1]),
            node(4, "d", .add(zeroPad: true), [2, 3]), node(5, "e", .add(zeroPad: true), [2, 4]), node(6, "f", conv, [5]),
        ], modules: [])
        let model = DrawingModel(graph: g, cost: CostModel.analyze(g))
        XCTAssertFalse(model.isSeriesParallel)
        XCTAssertEqual(model.boxes.map(\.name), ["input", "a", "b", "c", "d", "e", "f"])
        XCTAssertEqual(model.edges.count, 8)
        let layout = DrawingLayout(model)
        XCTAssertEqual(layout.edges.count, 8)
        XCTAssertEqual(DrawGeometry.problems(model, layout, crossings: false), [])
        XCTAssertNoThrow(try ParsedSVG(SVGWriter.svg(model, layout)))
    }

    /// The drawings README.md shows are what `dsl draw` makes now (regenerate them with
    /// `bash bench/figures.sh`).
    func testREADMEFiguresAreCurrent() throws {
        let readme = try String(contentsOf: DrawFixtures.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        for (spec, figure, depth) in [("specs/inception-3a.dsl", "inception-3a.svg", Int.max), ("specs/googlenet.dsl", "googlenet.svg", Int.max),
                                      ("specs/pyramidnet-110-a48.dsl", "pyramidnet-110-a48-depth2.svg", 2)] {
            let path = "bench/figures/" + figure
            XCTAssertTrue(readme.contains("(" + path + ")"), "README does not show \(path)")
            let committed = try String(contentsOf: DrawFixtures.packageRoot.appendingPathComponent(path), encoding: .utf8)
            let text = try XCTUnwrap(try NetworkDrawing.render(DrawFixtures.checked(spec: spec), format: .svg, depth: depth))
            XCTAssertTrue(text == committed, "\(path) is not what dsl draw makes now; run bash bench/figures.sh")
        }
    }
}
