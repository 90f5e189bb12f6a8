import DSLIR
import DSLSyntax
import DSLVisualize
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

/// `dsl draw`: the SVG and dot of every shipped spec against `dsl check --format json`, the
/// layout's geometry (no overlapping boxes, no edge through a box, no crossing edges) for every
/// spec at several depths and for a generated DenseNet-121, and the command's errors.
final class DrawTests: XCTestCase {
    /// Depths tried for every spec (nil: everything expanded).
    static let depths: [Int?] = [0, 1, 2, 3, nil]

    // MARK: Counts against dsl check --format json

    /// What `dsl check --format json` says the drawing at a depth must hold, computed from its
    /// layers (inputs, innermost module) and modules (parents): a box per layer outside the
    /// collapsed modules and one per collapsed module (the ancestor at level `depth`); an edge
    /// per input of a drawn layer; an edge from each other box a collapsed module's layers read;
    /// a frame per expanded module holding layers.
    struct Expected {
        var boxes: [String] = []
        var edges: [String] = []
        var frames: [String] = []
    }

    static func expected(fromCheckJSON json: [String: Any], depth: Int?) throws -> Expected {
        let layers = try XCTUnwrap(json["layers"] as? [[String: Any]])
        let modules = try XCTUnwrap(json["modules"] as? [[String: Any]])
        var parent: [String: String] = [:]
        for m in modules {
            let name = try XCTUnwrap(m["name"] as? String)
            if let p = m["parent"] as? String { parent[name] = p }
        }
        func chain(_ layer: [String: Any]) -> [String] {
            var c: [String] = []
            var m = layer["module"] as? String
            while let x = m { c.append(x); m = parent[x] }
            return c.reversed()
        }
        let d = depth ?? Int.max
        var rep: [String: String] = [:]
        var members: [String: [[String: Any]]] = [:]
        var result = Expected()
        var frames = Set<String>()
        for l in layers {
            let name = try XCTUnwrap(l["name"] as? String)
            let c = chain(l)
            for m in c.prefix(min(d, c.count)) { frames.insert(m) }
            if c.count > d {
                rep[name] = c[d]
                if members[c[d]] == nil { result.boxes.append(c[d]) }
                members[c[d], default: []].append(l)
            } else {
                rep[name] = name
                result.boxes.append(name)
            }
        }
        for l in layers {
            let name = l["name"] as! String
            guard rep[name] == name else { continue }
            for i in try XCTUnwrap(l["inputs"] as? [String]) { result.edges.append("\(rep[i]!) -> \(name)") }
        }
        for (m, ls) in members {
            var seen = Set<String>()
            for l in ls {
                for i in l["inputs"] as! [String] where rep[i]! != m && seen.insert(rep[i]!).inserted { result.edges.append("\(rep[i]!) -> \(m)") }
            }
        }
        result.boxes.sort(); result.edges.sort(); result.frames = frames.sorted()
        return result
    }

    func testSVGOfEverySpecIsWellFormedAndMatchesCheckJSON() throws {
        let specs = try DrawFixtures.shippedSpecs()
        XCTAssertGreaterThanOrEqual(specs.count, 10)
        for spec in specs {
            let check = try DrawCLI.run(["check", spec, "--format", "json"])
            XCTAssertEqual(check.status, 0, "\(spec): \(check.stderr)")
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(check.stdout.utf8)) as? [String: Any])
            let layers = try XCTUnwrap(json["layers"] as? [[String: Any]])
            for depth in Self.depths {
                let what = "\(spec) --depth \(depth.map(String.init) ?? "all")"
                let r = try DrawCLI.run(["draw", spec] + (depth.map { ["--depth", String($0)] } ?? []))
                XCTAssertEqual(r.status, 0, "\(what): \(r.stderr)")
                XCTAssertEqual(r.stderr, "", what)
                let svg: ParsedSVG
                do { svg = try ParsedSVG(r.stdout) } catch { XCTFail("\(what): not well-formed XML: \(error)"); continue }
                XCTAssertEqual(svg.root, "svg", what)
                XCTAssertEqual(svg.rootAttributes["xmlns"], "http://www.w3.org/2000/svg", what)
                XCTAssertEqual(svg.externalReferences, [], "\(what) is not self-contained")
                let want = try Self.expected(fromCheckJSON: json, depth: depth)
                XCTAssertEqual(svg.boxes.sorted(), want.boxes, "\(what): boxes")
                XCTAssertEqual(svg.edges.map { "\($0.0) -> \($0.1)" }.sorted(), want.edges, "\(what): edges")
                XCTAssertEqual(svg.frames.sorted(), want.frames, "\(what): frames")
                // Each box says what it is: name, operation (as dsl check describes it), shape.
                for l in layers where svg.boxTexts[l["name"] as! String] != nil {
                    let name = l["name"] as! String, texts = svg.boxTexts[name]!
                    let shape = (l["output"] as! [Int]).map(String.init).joined(separator: "x")
                    XCTAssertEqual(texts.count, 3, "\(what): \(name)")
                    XCTAssertEqual(texts.first, name, what)
                    XCTAssertEqual(texts.dropFirst().first, l["description"] as? String, "\(what): \(name)")
                    let params = l["params"] as! Int
                    XCTAssertEqual(texts.last, shape + (params > 0 ? " · " + params.formatted(.number.grouping(.automatic).locale(Locale(identifier: "en_US"))) + " params" : ""), "\(what): \(name)")
                }
                if depth == nil {
                    // Full depth: a box per layer, an edge per input of every layer.
                    XCTAssertEqual(svg.boxes.count, layers.count, what)
                    XCTAssertEqual(svg.boxTexts.count, layers.count, "\(what): every layer's box has its texts checked")
                    XCTAssertEqual(svg.edges.count, layers.map { ($0["inputs"] as? [String])?.count ?? 0 }.reduce(0, +), what)
                    XCTAssertEqual(svg.elements["rect", default: 0], 1 + svg.boxes.count + svg.frames.count, "\(what): a rect per box and frame and the background")
                }
            }
        }
    }

    /// The expectation itself must be able to fail: a collapsed module changes the counts.
    func testExpectationFromJSONCollapsesModules() throws {
        let r = try DrawCLI.run(["check", "specs/googlenet.dsl", "--format", "json"])
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let full = try Self.expected(fromCheckJSON: json, depth: nil), top = try Self.expected(fromCheckJSON: json, depth: 0)
        // 9 inception modules of 8 layers each become 9 boxes; a concat's 4 inputs and the 4
        // reads of the value before it become one edge in.
        XCTAssertEqual(full.boxes.count - top.boxes.count, 9 * 7)
        XCTAssertEqual(full.edges.count - top.edges.count, 9 * 10)
        XCTAssertEqual(full.frames.count, 9)
        XCTAssertEqual(top.frames, [])
    }

    // MARK: Geometry

    func testEverySpecLaysOutWithoutOverlapsOrCrossings() throws {
        for spec in try DrawFixtures.shippedSpecs() {
            let checked = try DrawFixtures.checked(spec: spec)
            for depth in Self.depths {
                let model = try XCTUnwrap(DrawingModel(checked: checked, depth: depth ?? Int.max))
                XCTAssertTrue(model.isSeriesParallel, spec)
                let problems = DrawGeometry.problems(model, DrawingLayout(model))
                XCTAssertEqual(problems, [], "\(spec) --depth \(depth.map(String.init) ?? "all")")
            }
        }
    }

    func testDenseNet121LaysOutWithoutOverlapsOrCrossings() throws {
        let checked = try DrawFixtures.checked(DrawFixtures.denseNet121, path: "densenet-121.dsl")
        XCTAssertEqual(checked.cost?.params, 7_978_856)
        let g = try XCTUnwrap(checked.graph)
        for depth in Self.depths {
            let model = try XCTUnwrap(DrawingModel(checked: checked, depth: depth ?? Int.max))
            let layout = DrawingLayout(model)
            XCTAssertEqual(DrawGeometry.problems(model, layout), [], "densenet-121 --depth \(depth.map(String.init) ?? "all")")
            if depth == nil {
                XCTAssertEqual(model.boxes.count, g.nodes.count)
                XCTAssertEqual(model.edges.count, g.nodes.map(\.inputs.count).reduce(0, +))
                // 58 labelled dense layers and 7 block calls are framed.
                XCTAssertEqual(model.frames.count, 58 + 7)
            }
            if depth == 1 {
                // The block calls framed; each dense layer (a labelled merge, one level down)
                // one box: 3 stem layers + 58 dense layers + 3 transitions of 4 + 5 head layers,
                // a chain.
                XCTAssertEqual(model.boxes.count, 3 + 58 + 12 + 5)
                XCTAssertEqual(model.boxes.filter { if case .merge = $0.subject { return true }; return false }.count, 58)
                XCTAssertEqual(model.edges.count, model.boxes.count - 1)
                XCTAssertEqual(model.frames.count, 7)
                XCTAssertEqual(model.boxes.map(\.params).reduce(0, +), 7_978_856)
            }
            if depth == 0 {
                XCTAssertEqual(model.boxes.count, 3 + 7 + 5)
                XCTAssertEqual(model.frames.count, 0)
            }
        }
    }

    /// The checks find what they look for: a layout with a box moved onto another, or an edge
    /// rerouted through a box, is reported.
    func testGeometryChecksCanFail() throws {
        let checked = try DrawFixtures.checked(spec: "specs/inception-3a.dsl")
        let model = try XCTUnwrap(DrawingModel(checked: checked))
        var layout = DrawingLayout(model)
        XCTAssertEqual(DrawGeometry.problems(model, layout), [])
        var moved = layout
        moved.boxes[2].x = moved.boxes[1].x + 3
        moved.boxes[2].y = moved.boxes[1].y + 3
        XCTAssertTrue(DrawGeometry.problems(model, moved).contains { $0.contains("overlap") })
        // The frame's label moved onto the trunk of edges entering the frame.
        var relabelled = layout
        relabelled.labels[0].x = layout.boxes[0].midX - 5
        XCTAssertTrue(DrawGeometry.problems(model, relabelled).contains { $0.contains("crosses the label of 3a") })
        // The edge into the concat rerouted through the first branch's boxes.
        let e = try XCTUnwrap(layout.edges.firstIndex { model.boxes[$0.edge.to].kind == "concat" && model.boxes[$0.edge.from].name.hasPrefix("3a.b4") })
        let b1 = layout.boxes[try XCTUnwrap(model.boxes.firstIndex { $0.name == "3a.b1.conv" })]
        let p = layout.edges[e].points
        layout.edges[e].points = [p[0], DrawPoint(p[0].x, b1.y - 4), DrawPoint(b1.midX, b1.y + 10), DrawPoint(b1.midX, p.last!.y - 5), p.last!]
        let found = DrawGeometry.problems(model, layout)
        XCTAssertTrue(found.contains { $0.contains("crosses box 3a.b1.conv") }, "\(found)")
        XCTAssertTrue(found.contains { $0.contains("cross near") }, "\(found)")
    }

    /// GoogLeNet at full depth: each inception's four branches side by side in spec order, on
    /// one row, the concat below them all and centred under them.
    func testGoogLeNetBranchesSideBySideInSpecOrder() throws {
        let checked = try DrawFixtures.checked(spec: "specs/googlenet.dsl")
        let model = try XCTUnwrap(DrawingModel(checked: checked))
        let layout = DrawingLayout(model)
        let index = Dictionary(uniqueKeysWithValues: model.boxes.enumerated().map { ($0.element.name, $0.offset) })
        for m in ["3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"] {
            let firsts = ["\(m).b1.conv", "\(m).b2.reduce", "\(m).b3.reduce", "\(m).b4.pool"].map { layout.boxes[index[$0]!] }
            XCTAssertEqual(Set(firsts.map(\.y)).count, 1, "\(m): first layers of the branches on one row")
            XCTAssertEqual(firsts.map(\.x), firsts.map(\.x).sorted(), "\(m): branches in spec order")
            let concat = layout.boxes[index["\(m).concat"]!]
            let bottom = model.boxes.indices.filter { model.boxes[$0].name.hasPrefix("\(m).b") }.map { layout.boxes[$0].maxY }.max()!
            XCTAssertGreaterThan(concat.y, bottom, m)
            XCTAssertEqual(concat.midX, (firsts.first!.midX + firsts.last!.midX) / 2, accuracy: 1, m)
        }
        // The trunk is one vertical line: every layer outside the modules on the same axis.
        let trunk = model.boxes.indices.filter { !model.boxes[$0].name.contains(".") }.map { layout.boxes[$0].midX }
        XCTAssertEqual(trunk.max()! - trunk.min()!, 0, accuracy: 0.01)
    }

    // MARK: dot

    func testDotOfEverySpecHasTheModelsNodesEdgesAndClusters() throws {
        for spec in try DrawFixtures.shippedSpecs() + ["densenet-121"] {
            let checked = spec == "densenet-121" ? try DrawFixtures.checked(DrawFixtures.denseNet121, path: "densenet-121.dsl") : try DrawFixtures.checked(spec: spec)
            for depth in [0, 1, Int.max] {
                let model = try XCTUnwrap(DrawingModel(checked: checked, depth: depth))
                let dot = DotWriter.dot(model)
                let parsed = try DotStructure(dot)
                let what = "\(spec) --depth \(depth)"
                XCTAssertEqual(parsed.graphName, model.name, what)
                XCTAssertEqual(parsed.nodes, Array(0..<model.boxes.count), what)
                XCTAssertEqual(parsed.labels, model.boxes.map { $0.lines.joined(separator: "\n") }, what)
                XCTAssertEqual(parsed.edges, model.edges.map { [$0.from, $0.to] }, what)
                // The same edges as the SVG's, which the layout derives from the drawing tree
                // on its own (branch exits to merges, each item's exit to the next's entries).
                let placed = DrawingLayout(model).edges.map { [$0.edge.from, $0.edge.to] }
                XCTAssertEqual(parsed.edges.sorted { $0.lexicographicallyPrecedes($1) }, placed.sorted { $0.lexicographicallyPrecedes($1) }, what)
                if depth == Int.max, let g = checked.graph {
                    // Fully expanded: one edge per input of every layer, by name.
                    let names = parsed.edges.map { model.boxes[$0[0]].name + " -> " + model.boxes[$0[1]].name }.sorted()
                    XCTAssertEqual(names, g.nodes.flatMap { n in n.inputs.map { g.nodes[$0].name + " -> " + n.name } }.sorted(), what)
                }
                XCTAssertEqual(parsed.clusters.count, model.frames.count, what)
                let members = DrawGeometry.boxesInFrames(model)
                for (f, nodes) in parsed.clusters { XCTAssertEqual(nodes, members[f], "\(what): cluster_\(f)") }
            }
        }
    }

    /// When Graphviz happens to be installed, it accepts the dot (nothing depends on it).
    func testGraphvizAcceptsTheDotWhenInstalled() throws {
        guard let dotBinary = ["/usr/bin/dot", "/usr/local/bin/dot", "/opt/homebrew/bin/dot"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("Graphviz's dot is not installed")
        }
        for spec in ["specs/inception-3a.dsl", "specs/all-cnn-c.dsl"] {
            let dir = try DrawCLI.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: dir) }
            let out = dir.appendingPathComponent("net.dot").path
            let r = try DrawCLI.run(["draw", spec, "-o", out])
            XCTAssertEqual(r.status, 0, r.stderr)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: dotBinary)
            p.arguments = ["-Tsvg", out, "-o", dir.appendingPathComponent("net.svg").path]
            p.standardError = FileHandle.nullDevice
            try p.run(); p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "\(spec): dot rejected the output")
            XCTAssertNoThrow(try ParsedSVG(String(contentsOfFile: dir.appendingPathComponent("net.svg").path, encoding: .utf8)))
        }
    }

    // MARK: The command

    func testOutputFileFormatAndStandardOutput() throws {
        let dir = try DrawCLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = dir.appendingPathComponent("net.dsl")
        try FileManager.default.copyItem(at: DrawFixtures.packageRoot.appendingPathComponent("specs/inception-3a.dsl"), to: spec)
        // No -o: standard output, and no file appears.
        let plain = try DrawCLI.run(["draw", "net.dsl"], cwd: dir)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertTrue(plain.stdout.hasPrefix("<?xml"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["net.dsl"])
        // -o -: standard output too.
        XCTAssertEqual(try DrawCLI.run(["draw", "net.dsl", "-o", "-"], cwd: dir).stdout, plain.stdout)
        // -o FILE: the same bytes in the file, nothing on standard output, no temporary left.
        let w = try DrawCLI.run(["draw", "net.dsl", "-o", "net.svg"], cwd: dir)
        XCTAssertEqual(w.status, 0, w.stderr)
        XCTAssertEqual(w.stdout, "")
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("net.svg"), encoding: .utf8), plain.stdout)
        // A named file is replaced (the user named it).
        try Data("old".utf8).write(to: dir.appendingPathComponent("net.svg"))
        XCTAssertEqual(try DrawCLI.run(["draw", "net.dsl", "-o", "net.svg"], cwd: dir).status, 0)
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("net.svg"), encoding: .utf8), plain.stdout)
        // .dot / .gv choose dot; --format wins over the name.
        XCTAssertEqual(try DrawCLI.run(["draw", "net.dsl", "-o", "net.gv"], cwd: dir).status, 0)
        XCTAssertTrue(try String(contentsOf: dir.appendingPathComponent("net.gv"), encoding: .utf8).contains("digraph \"inception-3a\" {"))
        let dotOut = try DrawCLI.run(["draw", "net.dsl", "--format", "dot"], cwd: dir)
        XCTAssertEqual(dotOut.stdout, try String(contentsOf: dir.appendingPathComponent("net.gv"), encoding: .utf8))
        XCTAssertEqual(try DrawCLI.run(["draw", "net.dsl", "--format", "svg", "-o", "x.dot"], cwd: dir).status, 0)
        XCTAssertTrue(try String(contentsOf: dir.appendingPathComponent("x.dot"), encoding: .utf8).hasPrefix("<?xml"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["net.dsl", "net.gv", "net.svg", "x.dot"])
        // Standard input.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try XCTUnwrap(DrawCLI.binary))
        p.arguments = ["draw", "-", "--format", "dot"]
        p.standardInput = try FileHandle(forReadingFrom: spec)
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        XCTAssertTrue(String(decoding: data, as: UTF8.self).contains("3a.b4.proj"))
    }

    /// Names with XML's special characters (the network's name comes from the file name) are
    /// escaped in both formats.
    func testSpecialCharactersAreEscaped() throws {
        let dir = try DrawCLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let name = "a&b<c>\"d'e\\f"
        try Data("input 8x8x3\nconv 3 1 4\ngap\n".utf8).write(to: dir.appendingPathComponent(name + ".dsl"))
        let svg = try DrawCLI.run(["draw", name + ".dsl"], cwd: dir)
        XCTAssertEqual(svg.status, 0, svg.stderr)
        let parsed = try ParsedSVG(svg.stdout)
        XCTAssertEqual(parsed.boxes, ["input", "conv1", "gap1"])
        XCTAssertTrue(svg.stdout.contains("<title>a&amp;b&lt;c&gt;&quot;d&apos;e\\f</title>"))
        let dot = try DrawCLI.run(["draw", name + ".dsl", "--format", "dot"], cwd: dir)
        XCTAssertEqual(try DotStructure(dot.stdout).graphName, name)
    }

    /// Errors: exact messages and exit codes (1: the spec or the output; 2: usage).
    func testErrors() throws {
        let dir = try DrawCLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("input 32x32x3\nconv 3 1 16\nfoo 3\n".utf8).write(to: dir.appendingPathComponent("bad.dsl"))
        try FileManager.default.copyItem(at: DrawFixtures.packageRoot.appendingPathComponent("specs/quickstart.dsl"), to: dir.appendingPathComponent("ok.dsl"))
        let usage = "Run 'dsl draw --help' for usage.\n"
        let cases: [([String], Int32, String)] = [
            (["draw", "bad.dsl"], 1, """
            bad.dsl:3:1: error: unknown layer 'foo'; a block call needs parentheses, e.g. 'foo()'
              |
            3 | foo 3
              | ^^^
            1 error in bad.dsl

            """),
            (["draw", "missing.dsl"], 1, "dsl draw: missing.dsl: no such file\n"),
            (["draw", "ok.dsl", "-o", "no/such/dir/net.svg"], 1, "dsl draw: no/such/dir/net.svg: cannot write file: No such file or directory\n"),
            (["draw"], 2, "dsl draw: missing spec file\n" + usage),
            (["draw", "ok.dsl", "bad.dsl"], 2, "dsl draw: expected one spec file, got 2\n" + usage),
            (["draw", "ok.dsl", "--format", "png"], 2, "dsl draw: --format must be svg or dot, got 'png'\n" + usage),
            (["draw", "ok.dsl", "--depth", "-1"], 2, "dsl draw: --depth must be a whole number, from 0 to 1000, got '-1'\n" + usage),
            (["draw", "ok.dsl", "--depth", "x"], 2, "dsl draw: --depth must be a whole number, from 0 to 1000, got 'x'\n" + usage),
            (["draw", "ok.dsl", "--deph", "1"], 2, "dsl draw: unknown option --deph; did you mean --depth?\n" + usage),
            (["draw", "ok.dsl", "-o"], 2, "dsl draw: option -o needs a value\n" + usage),
            (["draw", "ok.dsl", "-o", "ok.dsl"], 2, "dsl draw: -o ok.dsl is the spec file itself\n" + usage),
        ]
        for (args, status, stderr) in cases {
            let r = try DrawCLI.run(args, cwd: dir)
            XCTAssertEqual(r.status, status, args.joined(separator: " "))
            XCTAssertEqual(r.stderr, stderr, args.joined(separator: " "))
            XCTAssertEqual(r.stdout, "", args.joined(separator: " "))
        }
        // Nothing was written, and the spec is untouched.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["bad.dsl", "ok.dsl"])
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("ok.dsl")), try Data(contentsOf: DrawFixtures.packageRoot.appendingPathComponent("specs/quickstart.dsl")))
    }

    /// A drawing of more than `NetworkDrawing.maxBoxes` boxes is refused with advice, and
    /// `--depth` makes it drawable.
    func testTooManyBoxesIsAnErrorThatDepthFixes() throws {
        let dir = try DrawCLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = "input 4x4x1\nblock deep() {\n  repeat 100000 {\n    bn\n    relu\n    dropout 0.1\n  }\n}\ndeep()\n"
        try Data(spec.utf8).write(to: dir.appendingPathComponent("deep.dsl"))
        let r = try DrawCLI.run(["draw", "deep.dsl", "--no-warnings", "-o", "deep.svg"], cwd: dir)
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "dsl draw: deep.dsl: the drawing would have 300,001 boxes (at most 200,000); collapse modules with --depth\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("deep.svg").path))
        let collapsed = try DrawCLI.run(["draw", "deep.dsl", "--no-warnings", "--depth", "0"], cwd: dir)
        XCTAssertEqual(collapsed.status, 0, collapsed.stderr)
        XCTAssertEqual(try ParsedSVG(collapsed.stdout).boxes, ["input", "deep1"])
    }

    func testHelpDescribesEveryOption() throws {
        let r = try DrawCLI.run(["draw", "--help"])
        XCTAssertEqual(r.status, 0)
        for option in ["-o OUT", "--format svg|dot", "--depth N", "--no-warnings", "standard output"] {
            XCTAssertTrue(r.stdout.contains(option), "help lacks \(option)")
        }
    }
}

/// The structure of a dot file written by `DotWriter`: the graph's name, node declarations
/// (`nI [label="..."]`) in order with their labels, edges (`nA -> nB;`) in order, and the nodes
/// declared inside each `subgraph cluster_F { }` (nested clusters count for their parents).
/// Strings are read with dot's escapes; braces must balance.
struct DotStructure {
    var graphName = ""
    var nodes: [Int] = []
    var labels: [String] = []
    var edges: [[Int]] = []
    var clusters: [Int: Set<Int>] = [:]

    struct Malformed: Error, CustomStringConvertible { var description: String }

    init(_ text: String) throws {
        var open: [Int?] = []   // cluster ids of the open braces (nil: the graph)
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("//") { continue }
            func fail(_ why: String) -> Malformed { Malformed(description: "line \(lineNumber): \(why): \(line)") }
            if line.hasPrefix("digraph ") {
                guard open.isEmpty, line.hasSuffix(" {") else { throw fail("digraph not at the top") }
                var rest = Substring(line.dropFirst("digraph ".count))
                graphName = try Self.string(&rest)
                open.append(nil)
            } else if line.hasPrefix("subgraph cluster_") {
                guard line.hasSuffix(" {"), let f = Int(line.dropFirst("subgraph cluster_".count).dropLast(2)) else { throw fail("bad subgraph") }
                guard clusters[f] == nil else { throw fail("cluster twice") }
                clusters[f] = []
                open.append(f)
            } else if line == "}" {
                guard open.popLast() != nil else { throw fail("unbalanced }") }
            } else if line.hasPrefix("graph [") || line.hasPrefix("node [") || line.hasPrefix("edge [") || line.hasPrefix("label=") {
                var rest = Substring(line)
                while let q = rest.firstIndex(of: "\"") { rest = rest[q...]; _ = try Self.string(&rest) }
            } else if line.hasPrefix("n"), let arrow = line.range(of: " -> ") {
                guard let a = Int(line[line.index(after: line.startIndex)..<arrow.lowerBound]),
                      line.hasSuffix(";"), line[arrow.upperBound...].hasPrefix("n"),
                      let b = Int(line[line.index(after: arrow.upperBound)..<line.index(before: line.endIndex)]) else { throw fail("bad edge") }
                edges.append([a, b])
            } else if line.hasPrefix("n"), let bracket = line.firstIndex(of: "[") {
                guard let n = Int(line[line.index(after: line.startIndex)..<bracket].trimmingCharacters(in: .whitespaces)) else { throw fail("bad node") }
                guard let l = line.range(of: "label=") else { throw fail("node without label") }
                var rest = line[l.upperBound...]
                labels.append(try Self.string(&rest))
                nodes.append(n)
                for case let f? in open { clusters[f]!.insert(n) }
            } else {
                throw fail("unexpected line")
            }
        }
        guard open.isEmpty else { throw Malformed(description: "unclosed braces") }
    }

    /// Reads a quoted dot string at the start of `s` (`\"`, `\\`; `\n` as a line break).
    static func string(_ s: inout Substring) throws -> String {
        guard s.first == "\"" else { throw Malformed(description: "expected a string at \(s.prefix(20))") }
        var out = ""
        var i = s.index(after: s.startIndex)
        while i < s.endIndex {
            let c = s[i]
            if c == "\"" { s = s[s.index(after: i)...]; return out }
            if c == "\\" {
                i = s.index(after: i)
                guard i < s.endIndex else { break }
                out.append(s[i] == "n" ? "\n" : s[i])
            } else {
                out.append(c)
            }
            i = s.index(after: i)
        }
        throw Malformed(description: "unterminated string")
    }
}
