import DSLIR
import DSLSyntax
import DSLVisualize
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest

// Helpers of the `dsl draw` tests: the shipped specs, a generated DenseNet-121, the real `dsl`
// binary, an SVG reader (FoundationXML's XMLParser) and the geometry checks.

enum DrawFixtures {
    /// The package root (two levels above this file's folder).
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Every spec in `specs/`, as paths relative to the package root, sorted.
    static func shippedSpecs() throws -> [String] {
        let dir = packageRoot.appendingPathComponent("specs")
        return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".dsl") }.sorted().map { "specs/" + $0 }
    }

    /// DenseNet-121 (Huang et al., Table 1; growth 32, bottleneck 4x32, compression 0.5):
    /// 7,978,856 parameters. Each dense layer is a labelled concat of the identity and its
    /// bottleneck branch; 121 = 1 + 2 x (6 + 12 + 24 + 16) + 3 + 1 weighted layers.
    static let denseNet121 = """
    network densenet-121
    input 224x224x3
    conv 7 2 64 bn
    pool max 3 2 pad=1
    block dense(n) {
      repeat n {
        layer: concat { } { bn ; relu ; conv 1 1 128 bn ; conv 3 1 32 nobias act=none }
      }
    }
    block transition(c) {
      bn
      relu
      conv 1 1 c nobias act=none
      pool avg 2 2
    }
    dense(6)
    transition(128)
    dense(12)
    transition(256)
    dense(24)
    transition(512)
    dense(16)
    bn
    relu
    gap
    fc 1000
    softmax

    """

    /// A checked network from text (fails the test on errors).
    static func checked(_ text: String, path: String, file: StaticString = #filePath, line: UInt = #line) throws -> CheckedNetwork {
        let c = Frontend.check(text: text, path: path)
        XCTAssertFalse(c.diagnostics.hasErrors, "\(path) has errors", file: file, line: line)
        _ = try XCTUnwrap(c.graph, file: file, line: line)
        return c
    }

    /// A checked shipped spec.
    static func checked(spec path: String) throws -> CheckedNetwork {
        try checked(String(contentsOf: packageRoot.appendingPathComponent(path), encoding: .utf8), path: path)
    }
}

/// One run of the real `dsl` binary.
struct DrawRun {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the `dsl` executable built next to the test bundle (or `DSL_BINARY`).
enum DrawCLI {
    static let binary: String? = {
        let fm = FileManager.default
        if let p = ProcessInfo.processInfo.environment["DSL_BINARY"], fm.isExecutableFile(atPath: p) { return p }
        var candidates: [URL] = []
        for b in Bundle.allBundles + [Bundle.main] where b.bundlePath.hasSuffix(".xctest") {
            candidates.append(URL(fileURLWithPath: b.bundlePath).deletingLastPathComponent().appendingPathComponent("dsl"))
        }
        if let a0 = CommandLine.arguments.first {
            var u = URL(fileURLWithPath: a0).resolvingSymlinksInPath()
            while u.pathComponents.count > 1 {
                if u.pathExtension == "xctest" { candidates.append(u.deletingLastPathComponent().appendingPathComponent("dsl")); break }
                u.deleteLastPathComponent()
            }
            candidates.append(URL(fileURLWithPath: a0).deletingLastPathComponent().appendingPathComponent("dsl"))
        }
        candidates.append(DrawFixtures.packageRoot.appendingPathComponent(".build/debug/dsl"))
        return candidates.map(\.path).first { fm.isExecutableFile(atPath: $0) }
    }()

    /// Runs `dsl ARGS` from `cwd` (default: the package root); output through temporary files.
    static func run(_ arguments: [String], cwd: URL? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> DrawRun {
        guard let binary else {
            XCTFail("cannot find the dsl binary; run 'swift build' first or set DSL_BINARY", file: file, line: line)
            throw CocoaError(.fileNoSuchFile)
        }
        let tmp = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: tmp) }
        let outURL = tmp.appendingPathComponent("out"), errURL = tmp.appendingPathComponent("err")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let outHandle = try FileHandle(forWritingTo: outURL), errHandle = try FileHandle(forWritingTo: errURL)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        p.currentDirectoryURL = cwd ?? DrawFixtures.packageRoot
        p.standardOutput = outHandle
        p.standardError = errHandle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try outHandle.close(); try errHandle.close()
        return DrawRun(status: p.terminationStatus,
                       stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                       stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
    }

    /// A fresh empty temporary directory.
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-draw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// What an SVG written by `dsl draw` holds, read with XMLParser.
struct ParsedSVG {
    /// `data-name` of every `<g class="box ...">`.
    var boxes: [String] = []
    /// The `<text>`s of each box, by `data-name`.
    var boxTexts: [String: [String]] = [:]
    /// `(data-from, data-to)` of every `<path class="edge">`.
    var edges: [(String, String)] = []
    /// `data-name` of every `<g class="frame ...">`.
    var frames: [String] = []
    /// Elements by name.
    var elements: [String: Int] = [:]
    /// The root element's name and attributes.
    var root: String?
    var rootAttributes: [String: String] = [:]
    /// External references (`href`, `xlink:href`, `url(` outside `#`), which a self-contained
    /// file must not have.
    var externalReferences: [String] = []

    /// Parses the text; throws the parser's error for XML that is not well-formed.
    init(_ text: String) throws {
        let delegate = Delegate()
        let parser = XMLParser(data: Data(text.utf8))
        parser.delegate = delegate
        guard parser.parse() else {
            throw parser.parserError ?? NSError(domain: "ParsedSVG", code: 1, userInfo: [NSLocalizedDescriptionKey: "XML parse failed at line \(parser.lineNumber)"])
        }
        self = delegate.result
    }

    final class Delegate: NSObject, XMLParserDelegate {
        var result = ParsedSVG(empty: ())
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if result.root == nil { result.root = name; result.rootAttributes = attributes }
            result.elements[name, default: 0] += 1
            let classes = (attributes["class"] ?? "").split(separator: " ").map(String.init)
            if name == "g" && classes.first == "box" { result.boxes.append(attributes["data-name"] ?? ""); currentBox = attributes["data-name"] ?? "" }
            if name == "text", let b = currentBox { result.boxTexts[b, default: []].append(""); inText = true }
            if name == "g" && classes.first == "frame" { result.frames.append(attributes["data-name"] ?? "") }
            if name == "path" && classes.first == "edge" { result.edges.append((attributes["data-from"] ?? "", attributes["data-to"] ?? "")) }
            for (k, v) in attributes where k.hasSuffix("href") && !v.hasPrefix("#") { result.externalReferences.append("\(k)=\(v)") }
            if name == "image" || name == "script" || name == "foreignObject" { result.externalReferences.append("<\(name)>") }
        }
        var currentBox: String?
        var inText = false
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "text" { inText = false }
            if name == "g" { currentBox = nil }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if inText, let b = currentBox { result.boxTexts[b]![result.boxTexts[b]!.count - 1] += string }
            if string.contains("url(") && !string.contains("url(#") { result.externalReferences.append(string) }
            if string.contains("@import") { result.externalReferences.append("@import") }
        }
    }

    private init(empty: ()) {}
}

/// The geometry checks of a laid-out drawing.
enum DrawGeometry {
    /// A rectangle shrunk by `d` on every side.
    static func inset(_ r: DrawRect, _ d: Double) -> DrawRect {
        DrawRect(x: r.x + d, y: r.y + d, width: max(0, r.width - 2 * d), height: max(0, r.height - 2 * d))
    }

    /// Whether `inner` lies inside `outer`.
    static func contains(_ outer: DrawRect, _ inner: DrawRect) -> Bool {
        inner.x >= outer.x - 1e-6 && inner.y >= outer.y - 1e-6 && inner.maxX <= outer.maxX + 1e-6 && inner.maxY <= outer.maxY + 1e-6
    }

    /// The polyline the SVG draws for an edge's points: straight pieces as they are, each
    /// other piece as the cubic curve `SVGWriter` writes (control points at the middle height
    /// above its ends), sampled.
    static func polyline(_ points: [DrawPoint], samples: Int = 24) -> [DrawPoint] {
        guard var previous = points.first else { return [] }
        var out = [previous]
        for p in points.dropFirst() {
            if abs(p.x - previous.x) < 0.05 || abs(p.y - previous.y) < 0.05 {
                out.append(p)
            } else {
                let m = (previous.y + p.y) / 2
                let c0 = previous, c1 = DrawPoint(previous.x, m), c2 = DrawPoint(p.x, m), c3 = p
                for i in 1...samples {
                    let t = Double(i) / Double(samples), u = 1 - t
                    let a = u * u * u, b = 3 * u * u * t, c = 3 * u * t * t, d = t * t * t
                    out.append(DrawPoint(a * c0.x + b * c1.x + c * c2.x + d * c3.x, a * c0.y + b * c1.y + c * c2.y + d * c3.y))
                }
            }
            previous = p
        }
        return out
    }

    /// Whether the segment a-b passes through the interior of `r` (Liang-Barsky clipping).
    static func segment(_ a: DrawPoint, _ b: DrawPoint, crosses r: DrawRect) -> Bool {
        var t0 = 0.0, t1 = 1.0
        let dx = b.x - a.x, dy = b.y - a.y
        for (p, q) in [(-dx, a.x - r.x), (dx, r.maxX - a.x), (-dy, a.y - r.y), (dy, r.maxY - a.y)] {
            if p == 0 {
                if q <= 0 { return false }
            } else {
                let t = q / p
                if p < 0 { if t > t1 { return false }; t0 = max(t0, t) } else { if t < t0 { return false }; t1 = min(t1, t) }
            }
        }
        return t1 - t0 > 1e-9
    }

    /// Whether two segments cross properly (each strictly on both sides of the other).
    static func segmentsCross(_ a: DrawPoint, _ b: DrawPoint, _ c: DrawPoint, _ d: DrawPoint) -> Bool {
        func orient(_ p: DrawPoint, _ q: DrawPoint, _ r: DrawPoint) -> Double { (q.x - p.x) * (r.y - p.y) - (q.y - p.y) * (r.x - p.x) }
        let eps = 1e-6
        let o1 = orient(a, b, c), o2 = orient(a, b, d), o3 = orient(c, d, a), o4 = orient(c, d, b)
        return ((o1 > eps && o2 < -eps) || (o1 < -eps && o2 > eps)) && ((o3 > eps && o4 < -eps) || (o3 < -eps && o4 > eps))
    }

    /// The boxes inside each frame (by walking the tree).
    static func boxesInFrames(_ model: DrawingModel) -> [Set<Int>] {
        var result = [Set<Int>](repeating: [], count: model.frames.count)
        func walk(_ t: DrawTree, _ open: [Int]) {
            switch t {
            case .box(let b): for f in open { result[f].insert(b) }
            case .sequence(let items): for i in items { walk(i, open) }
            case .parallel(let branches, let join):
                for b in branches { if let b { walk(b, open) } }
                for f in open { result[f].insert(join) }
            case .frame(let f, let content): walk(content, open + [f])
            }
        }
        walk(model.tree, [])
        return result
    }

    /// Every way the drawing breaks the layout's promises: overlapping boxes, a box partly
    /// inside a frame not its own, frames that overlap without nesting, a label over a box,
    /// an edge not from the bottom of its producer to the top of its consumer, an edge that
    /// goes up or through a box it does not connect or a frame's label, and (`crossings`) two edges crossing.
    static func problems(_ model: DrawingModel, _ layout: DrawingLayout, crossings: Bool = true, limit: Int = 20) -> [String] {
        var found: [String] = []
        func report(_ s: String) { if found.count < limit { found.append(s) } }
        let boxes = layout.boxes
        let name = { (b: Int) in model.boxes[b].name }
        // Boxes: sorted by x for a sweep.
        let order = boxes.indices.sorted { boxes[$0].x < boxes[$1].x }
        for (i, a) in order.enumerated() {
            for b in order[(i + 1)...] {
                if boxes[b].x >= boxes[a].maxX { break }
                if boxes[a].overlaps(boxes[b]) { report("boxes \(name(a)) and \(name(b)) overlap") }
            }
        }
        // Frames: contain their boxes, keep out of the others, nest or stay apart.
        let members = boxesInFrames(model)
        for (f, r) in layout.frames.enumerated() {
            for (b, br) in boxes.enumerated() {
                if members[f].contains(b) {
                    if !contains(inset(r, 1), br) { report("box \(name(b)) is not inside its frame \(model.frames[f].name)") }
                } else if r.overlaps(br) {
                    report("box \(name(b)) overlaps frame \(model.frames[f].name)")
                }
            }
            for (b, br) in boxes.enumerated() where layout.labels[f].overlaps(br) {
                report("label of \(model.frames[f].name) overlaps box \(name(b))")
            }
            if !contains(r, layout.labels[f]) { report("label of \(model.frames[f].name) is outside its frame") }
            for g in (f + 1)..<layout.frames.count {
                let s = layout.frames[g]
                guard r.overlaps(s) else { continue }
                if !(contains(r, s) && members[f].isSuperset(of: members[g])) && !(contains(s, r) && members[g].isSuperset(of: members[f])) {
                    report("frames \(model.frames[f].name) and \(model.frames[g].name) overlap without nesting")
                }
            }
        }
        // Everything inside the drawing.
        let page = DrawRect(x: 0, y: 0, width: layout.width, height: layout.height)
        for (b, r) in boxes.enumerated() where !contains(page, r) { report("box \(name(b)) is outside the drawing") }
        // Edges.
        var lines: [[DrawPoint]] = []
        for e in layout.edges {
            let from = boxes[e.edge.from], to = boxes[e.edge.to]
            let label = "edge \(name(e.edge.from)) -> \(name(e.edge.to))"
            guard let first = e.points.first, let last = e.points.last else { report("\(label) has no route"); lines.append([]); continue }
            if abs(first.y - from.maxY) > 0.01 || first.x < from.x || first.x > from.maxX { report("\(label) does not start at the bottom of its producer") }
            if abs(last.y - to.y) > 0.01 || last.x < to.x || last.x > to.maxX { report("\(label) does not end at the top of its consumer") }
            let line = polyline(e.points)
            lines.append(line)
            for (p, q) in zip(line, line.dropFirst()) where q.y < p.y - 1e-6 { report("\(label) goes up at (\(p.x), \(p.y))"); break }
            for (p, q) in zip(line, line.dropFirst()) where !contains(page, DrawRect(x: min(p.x, q.x), y: min(p.y, q.y), width: 0, height: 0)) {
                report("\(label) leaves the drawing"); break
            }
            for (f, r) in layout.labels.enumerated() {
                for (p, q) in zip(line, line.dropFirst()) where segment(p, q, crosses: r) {
                    report("\(label) crosses the label of \(model.frames[f].name)"); break
                }
            }
            for (b, r) in boxes.enumerated() {
                let shrunk = inset(r, 0.5)
                for (p, q) in zip(line, line.dropFirst()) where segment(p, q, crosses: shrunk) {
                    report("\(label) crosses box \(name(b))"); break
                }
            }
        }
        guard crossings else { return found }
        // Edge against edge: a grid of buckets keeps this near linear.
        let cell = 64.0
        var buckets: [Int: [(Int, Int)]] = [:]
        func key(_ x: Int, _ y: Int) -> Int { x &* 1_000_003 &+ y }
        for (e, line) in lines.enumerated() {
            for s in 0..<max(0, line.count - 1) {
                let p = line[s], q = line[s + 1]
                for cx in Int((min(p.x, q.x) / cell).rounded(.down))...Int((max(p.x, q.x) / cell).rounded(.down)) {
                    for cy in Int((min(p.y, q.y) / cell).rounded(.down))...Int((max(p.y, q.y) / cell).rounded(.down)) {
                        buckets[key(cx, cy), default: []].append((e, s))
                    }
                }
            }
        }
        var reported = Set<[Int]>()
        for (_, list) in buckets {
            for i in list.indices {
                for j in list.indices where j > i && list[i].0 != list[j].0 {
                    let (e, s) = list[i], (f, t) = list[j]
                    let a = lines[e], b = lines[f]
                    if segmentsCross(a[s], a[s + 1], b[t], b[t + 1]), reported.insert([min(e, f), max(e, f)]).inserted {
                        let ee = layout.edges[e].edge, ff = layout.edges[f].edge
                        report("edges \(name(ee.from)) -> \(name(ee.to)) and \(name(ff.from)) -> \(name(ff.to)) cross near (\(Int(a[s].x)), \(Int(a[s].y)))")
                    }
                }
            }
        }
        return found
    }
}
