// `dsl draw --format dot`: the same boxes, frames and edges as Graphviz input. Boxes are nodes
// `n<i>` (i: the box's index) labelled with the box's three lines; each frame is a cluster
// (`subgraph cluster_<i>`, nested as the frames nest) labelled like the SVG's; edges are written
// in the model's order (consumers in drawing order, inputs in order). Graphviz places the
// nodes itself: it may put a merge's branches in another order than the spec's (the SVG keeps
// spec order). `dot -Tsvg net.dot -o net.svg` renders it.

/// Writes a drawing model as Graphviz dot.
public enum DotWriter {
    /// The dot source of a drawing model.
    public static func dot(_ model: DrawingModel) -> String {
        var s = "// \(singleLine(model.title))\n// Drawn by dsl draw; render with: dot -Tsvg FILE -o net.svg\n"
        s += "digraph \(quote(model.name)) {\n"
        s += "  graph [rankdir=TB, fontname=\"monospace\", fontsize=10, labeljust=l, nodesep=0.25, ranksep=0.3, label=\(quote(model.title)), labelloc=t];\n"
        s += "  node [shape=box, style=\"rounded,filled\", fontname=\"monospace\", fontsize=10, fillcolor=\"#f1f1f1\", color=\"#777777\"];\n"
        s += "  edge [color=\"#555555\", arrowsize=0.6];\n"
        write(model.tree, model, indent: "  ", into: &s)
        for e in model.edges { s += "  n\(e.from) -> n\(e.to);\n" }
        s += "}\n"
        return s
    }

    /// Box colours by kind (as the SVG's styles).
    static let colours: [String: (String, String)] = [
        "input": ("#ffffff", "#333333"), "conv": ("#dbe8f7", "#3d6ea8"),
        "maxpool": ("#dcefdc", "#4a8a4a"), "avgpool": ("#dcefdc", "#4a8a4a"), "gap": ("#dcefdc", "#4a8a4a"),
        "concat": ("#fde3bd", "#c07a18"), "add": ("#fde3bd", "#c07a18"), "mul": ("#fde3bd", "#c07a18"), "fc": ("#ece0f5", "#7a4fa0"),
        "softmax": ("#f7dede", "#a84848"), "module": ("#fff3b0", "#a88b00"),
    ]
    static let frameColours: [String: (String, String)] = [
        "inception": ("#e1edf9", "#3d6ea8"), "pyramid": ("#eeeeee", "#666666"), "stage": ("#ece6f6", "#6a4fa0"),
        "unit": ("#e6f3e6", "#4a8a4a"), "block": ("#fbefdc", "#b07818"), "merge": ("#fbe5e5", "#a84848"),
    ]

    private static func write(_ tree: DrawTree, _ model: DrawingModel, indent: String, into s: inout String) {
        // An explicit stack of (tree, indent) with closing braces as markers.
        enum Step { case tree(DrawTree, String), close(String) }
        var stack: [Step] = [.tree(tree, indent)]
        while let step = stack.popLast() {
            switch step {
            case .close(let ind): s += ind + "}\n"
            case .tree(let t, let ind):
                switch t {
                case .box(let b):
                    let box = model.boxes[b]
                    let label = box.lines.map(escape).joined(separator: "\\n")
                    var attributes = "label=\"\(label)\", tooltip=\"\(escape(box.detail.replacingOccurrences(of: "\n", with: "; ")))\""
                    if let (fill, line) = colours[box.kind] { attributes += ", fillcolor=\"\(fill)\", color=\"\(line)\"" }
                    if box.kind == "module" { attributes += ", penwidth=2" }
                    s += ind + "n\(b) [\(attributes)];\n"
                case .sequence(let items):
                    stack.append(contentsOf: items.reversed().map { .tree($0, ind) })
                case .parallel(let branches, let join):
                    stack.append(.tree(.box(join), ind))
                    stack.append(contentsOf: branches.compactMap { $0 }.reversed().map { .tree($0, ind) })
                case .frame(let f, let content):
                    let frame = model.frames[f]
                    let (fill, line) = frameColours[frame.kind] ?? ("#f6f6f6", "#777777")
                    s += ind + "subgraph cluster_\(f) {\n"
                    s += ind + "  label=\(quote(frame.label)); style=\"rounded,filled\"; fillcolor=\"\(fill)\"; color=\"\(line)\";\n"
                    stack.append(.close(ind))
                    stack.append(.tree(content, ind + "  "))
                }
            }
        }
    }

    /// A dot string literal.
    static func quote(_ text: String) -> String { "\"" + escape(text) + "\"" }

    /// Text inside a dot string: backslashes and quotes escaped, line breaks as spaces
    /// (layout breaks are written as `\n` by the caller).
    static func escape(_ text: String) -> String {
        var out = ""
        for ch in text.unicodeScalars {
            switch ch {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n", "\r": out += " "
            default: out.unicodeScalars.append(ch.value < 0x20 ? " " : ch)
            }
        }
        return out
    }

    private static func singleLine(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.value < 0x20 ? " " : Character($0) })
    }
}
