// `dsl draw`, part 3: the SVG. One self-contained file (no external font, image or script; the
// styles are in the file, the font is the viewer's monospace), on a white background:
//
//   <g class="frames">  one <g class="frame KIND" data-name=..> per frame (outer ones first):
//                       a <rect> and a <text> label
//   <g class="edges">   one <path class="edge" data-from=.. data-to=..> per edge, with an arrow
//   <g class="boxes">   one <g class="box KIND" data-name=..> per box: a <title> tooltip (the
//                       layer's MACs, receptive field, source line), a <rect> and three <text>s
//
// Text is escaped, and characters XML 1.0 does not allow are written as U+FFFD.

/// Writes a laid-out drawing as SVG.
public enum SVGWriter {
    /// The SVG document of a drawing model and its layout.
    public static func svg(_ model: DrawingModel, _ layout: DrawingLayout) -> String {
        var s = ""
        s.reserveCapacity(512 + model.boxes.count * 520 + model.edges.count * 160 + model.frames.count * 220)
        let w = number(layout.width.rounded(.up)), h = number(layout.height.rounded(.up))
        s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\">\n"
        s += "<title>\(escape(model.name))</title>\n"
        s += "<desc>\(escape(model.title)). Drawn by dsl draw: \(model.boxes.count) boxes, \(model.edges.count) edges, \(model.frames.count) frames.</desc>\n"
        s += style
        s += "<defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#555\"/></marker></defs>\n"
        s += "<rect class=\"background\" width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        s += "<text class=\"title\" x=\"\(number(layout.titleOrigin.x))\" y=\"\(number(layout.titleOrigin.y))\">\(escape(model.title))</text>\n"

        s += "<g class=\"frames\">\n"
        for f in framesOuterFirst(model.tree) {
            let frame = model.frames[f], r = layout.frames[f], l = layout.labels[f]
            s += "<g class=\"frame \(frame.kind)\" data-name=\"\(escape(frame.name))\">"
            s += "<rect x=\"\(number(r.x))\" y=\"\(number(r.y))\" width=\"\(number(r.width))\" height=\"\(number(r.height))\" rx=\"8\"/>"
            s += "<text x=\"\(number(l.x))\" y=\"\(number(l.y + 10))\">\(escape(frame.label))</text></g>\n"
        }
        s += "</g>\n<g class=\"edges\">\n"
        for e in layout.edges {
            s += "<path class=\"edge\" data-from=\"\(escape(model.boxes[e.edge.from].name))\" data-to=\"\(escape(model.boxes[e.edge.to].name))\" d=\""
            s += path(e.points)
            s += "\"/>\n"
        }
        s += "</g>\n<g class=\"boxes\">\n"
        for (i, b) in model.boxes.enumerated() {
            let r = layout.boxes[i]
            let lines = b.lines
            let cx = number(r.midX)
            s += "<g class=\"box \(b.kind)\" data-name=\"\(escape(b.name))\"><title>\(escape(b.detail))</title>"
            s += "<rect x=\"\(number(r.x))\" y=\"\(number(r.y))\" width=\"\(number(r.width))\" height=\"\(number(r.height))\" rx=\"4\"/>"
            for (j, line) in lines.enumerated() {
                s += "<text\(j == 0 ? " class=\"name\"" : "") x=\"\(cx)\" y=\"\(number(r.y + DrawMetrics.baselines[j]))\">\(escape(line))</text>"
            }
            s += "</g>\n"
        }
        s += "</g>\n</svg>\n"
        return s
    }

    static let style = """
    <style>
    .title{font-size:13px;font-weight:bold;fill:#222}
    .box rect{stroke-width:1.2}
    .box text{font-size:10px;fill:#222;text-anchor:middle}
    .box text.name{font-size:11px;font-weight:bold}
    .box.input rect{fill:#ffffff;stroke:#333333}
    .box.conv rect{fill:#dbe8f7;stroke:#3d6ea8}
    .box.maxpool rect,.box.avgpool rect,.box.gap rect{fill:#dcefdc;stroke:#4a8a4a}
    .box.concat rect,.box.add rect,.box.mul rect{fill:#fde3bd;stroke:#c07a18}
    .box.fc rect{fill:#ece0f5;stroke:#7a4fa0}
    .box.softmax rect{fill:#f7dede;stroke:#a84848}
    .box.bn rect,.box.relu rect,.box.leaky rect,.box.linear rect,.box.dropout rect,.box.gelu rect,.box.silu rect,.box.relu6 rect,.box.hardswish rect,.box.hardsigmoid rect,.box.sigmoid rect,.box.tanh rect{fill:#f1f1f1;stroke:#777777}
    .box.module rect{fill:#fff3b0;stroke:#a88b00;stroke-width:2}
    .frame rect{fill-opacity:0.28;stroke-width:1}
    .frame text{font-size:10px;fill:#333333}
    .frame.inception rect{fill:#9cc3ee;stroke:#3d6ea8}
    .frame.pyramid rect{fill:#cccccc;stroke:#666666}
    .frame.stage rect{fill:#c6b3e6;stroke:#6a4fa0}
    .frame.unit rect{fill:#b5dcb5;stroke:#4a8a4a}
    .frame.block rect{fill:#f2c98a;stroke:#b07818}
    .frame.merge rect{fill:#f5b0b0;stroke:#a84848;stroke-dasharray:4 3}
    .edge{fill:none;stroke:#555555;stroke-width:1.1;marker-end:url(#arrow)}
    </style>

    """

    /// Frame indices in the order they nest, outer before inner (so inner frames paint on top).
    static func framesOuterFirst(_ tree: DrawTree) -> [Int] {
        var out: [Int] = []
        var stack = [tree]
        while let t = stack.popLast() {
            switch t {
            case .box: break
            case .sequence(let items): stack.append(contentsOf: items.reversed())
            case .parallel(let branches, _): stack.append(contentsOf: branches.compactMap { $0 }.reversed())
            case .frame(let f, let content): out.append(f); stack.append(content)
            }
        }
        return out
    }

    /// An SVG path through points: straight where a piece is vertical or horizontal, else a
    /// cubic curve that leaves and arrives vertically.
    static func path(_ points: [DrawPoint]) -> String {
        guard let first = points.first else { return "" }
        var d = "M\(number(first.x)),\(number(first.y))"
        var previous = first
        for p in points.dropFirst() {
            if abs(p.x - previous.x) < 0.05 && abs(p.y - previous.y) < 0.05 { continue }
            if abs(p.x - previous.x) < 0.05 || abs(p.y - previous.y) < 0.05 {
                d += " L\(number(p.x)),\(number(p.y))"
            } else {
                let m = number((previous.y + p.y) / 2)
                d += " C\(number(previous.x)),\(m) \(number(p.x)),\(m) \(number(p.x)),\(number(p.y))"
            }
            previous = p
        }
        return d
    }

    /// A coordinate with at most one decimal: `12`, `12.5`, `-3.2`.
    static func number(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        let tenths = Int((v * 10).rounded())
        let sign = tenths < 0 ? "-" : ""
        let a = tenths.magnitude
        return a % 10 == 0 ? sign + String(a / 10) : sign + String(a / 10) + "." + String(a % 10)
    }

    /// Text for an XML element or a quoted attribute.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for u in text.unicodeScalars {
            switch u {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\t", "\n", "\r": out.unicodeScalars.append(u)
            default:
                if u.value < 0x20 || u.value == 0xFFFE || u.value == 0xFFFF { out += "\u{FFFD}" } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }
}
