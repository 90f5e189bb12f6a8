import DSLIR
import DSLSyntax

// `dsl draw`, part 1: what is drawn. The checked graph becomes boxes (one per layer, or one per
// module that `--depth` collapses), frames (expanded modules and labelled merges), edges (the
// rule is on `DrawingModel.edges`) and a tree saying how they nest: sequences, parallel
// branches joined at their merge, and frames. `DrawLayout.swift` places the tree,
// `SVGWriter.swift` and `DotWriter.swift` write it. README, "Drawing a network".

/// One box of a drawing: a layer, or a module collapsed by `--depth`.
public struct DrawBox: Sendable, Equatable {
    /// What the box stands for.
    public enum Subject: Sendable, Equatable {
        /// A layer: its index in `Graph.nodes`.
        case layer(Int)
        /// A module collapsed to one box: its index in `Graph.modules`.
        case module(Int)
        /// A labelled merge collapsed to one box with its branches: the merge's node index.
        case merge(Int)
    }
    /// The layer, module or labelled merge.
    public var subject: Subject
    /// The layer's or module's name (`3a.b2.conv`, `3a`).
    public var name: String
    /// The operation (`conv 3x3/1 128 relu`) or, for a module, its summary (`inception<...>`);
    /// for a labelled merge, `concat of 2 branches`.
    public var operation: String
    /// The output shape, `28x28x256`.
    public var shape: Shape
    /// Trainable parameters (a module: summed over its layers).
    public var params: Int
    /// Multiply-accumulates per image (a module: summed).
    public var macs: Int
    /// The style class: the layer kind (`conv`, `maxpool`, `concat`, ...) or `module`.
    public var kind: String
    /// A longer description for the SVG tooltip.
    public var detail: String

    /// The three lines written in the box: name, operation, shape and parameters.
    public var lines: [String] {
        [name, operation, shape.description + (params > 0 ? " · " + grouped(params) + " params" : "")]
    }
}

/// A labelled frame around the boxes of an expanded module or a labelled merge.
public struct DrawFrame: Sendable, Equatable {
    /// What the frame surrounds.
    public enum Subject: Sendable, Equatable {
        /// An expanded module: its index in `Graph.modules`.
        case module(Int)
        /// A labelled `concat`/`add` (its branches and the merge): the merge's node index.
        case merge(Int)
    }
    /// The module or merge.
    public var subject: Subject
    /// The module's or merge's name.
    public var name: String
    /// `inception<64, ...>`, `stage(32, 2)`, `concat`, `add`.
    public var summary: String
    /// `inception`, `pyramid`, `stage`, `unit`, `block` or `merge`.
    public var kind: String
    /// Parameters of the layers inside.
    public var params: Int

    /// The frame's label: name, summary and parameters.
    public var label: String {
        name + " · " + summary + (params > 0 ? " · " + grouped(params) + " params" : "")
    }
}

/// An arrow from the box that produces a value to a box that reads it.
public struct DrawEdge: Sendable, Equatable, Hashable {
    /// The producing box (index in `DrawingModel.boxes`).
    public var from: Int
    /// The consuming box.
    public var to: Int
    /// Creates an edge.
    public init(from: Int, to: Int) { self.from = from; self.to = to }
}

/// How the boxes of a drawing nest: the series-parallel structure of the network's graph with
/// its frames. A `parallel` is a merge: its branches side by side (nil: a branch with no layers,
/// the identity), joined at the merge's box.
public indirect enum DrawTree: Sendable, Equatable {
    /// One box (index in `DrawingModel.boxes`).
    case box(Int)
    /// Items one after the other, each reading the previous one's output.
    case sequence([DrawTree])
    /// Branches reading the same value (the output of what comes before), merged by `join`.
    case parallel(branches: [DrawTree?], join: Int)
    /// A frame (index in `DrawingModel.frames`) around its content.
    case frame(Int, DrawTree)
}

/// What `dsl draw` draws for a checked graph at a given `--depth`.
///
/// Boxes: one per layer outside collapsed modules, plus one per module collapsed by `depth`
/// (a module at nesting level `depth`, 0 being the top level, whose parent is expanded; dsl
/// check's rows). Labelled merges (`res: add { ... } { }`) are framed like modules and count
/// as a nesting level too: one at level `depth` or deeper is collapsed with its branches to
/// one box (`dsl check` has no row for them). Modules with no layers are not drawn. Edges
/// (`edges`): one per input of every drawn layer, as in `dsl check --format json`'s `inputs`
/// (a layer reading the same value twice has two), from the box of the layer that produced it
/// (that layer, or the collapsed module or merge containing it); and one from every other box
/// a collapsed module's or merge's layers read, to its box.
public struct DrawingModel: Sendable {
    /// The network's name.
    public var name: String
    /// A one-line summary for the drawing's title.
    public var title: String
    /// The boxes.
    public var boxes: [DrawBox]
    /// The frames.
    public var frames: [DrawFrame]
    /// The edges, grouped by consuming box in drawing order, then in input order.
    public var edges: [DrawEdge]
    /// How boxes and frames nest.
    public var tree: DrawTree
    /// Whether `tree` follows the graph's branches and merges. Graphs made by the elaborator
    /// always do (a merge's branches start at the same value and meet only at the merge). For
    /// any other graph the tree is a plain sequence of the layers in order, framed by modules
    /// when their layers are contiguous, and the layout routes edges around the column.
    public var isSeriesParallel: Bool
    /// The box that shows each node (a layer's own box or its collapsed module's).
    public var boxOfNode: [Int]

    /// The model of a checked network; nil when it has no graph (errors).
    public init?(checked: CheckedNetwork, depth: Int = Int.max) {
        guard let g = checked.graph, let cost = checked.cost else { return nil }
        self.init(graph: g, cost: cost, depth: depth, labelledMerges: DrawingModel.labelledMerges(in: checked.spec, graph: g))
    }

    /// The model of a graph with its costs. `depth`: modules and labelled merges at nesting
    /// level `depth` and deeper are collapsed (0: every top-level one is one box). `labelledMerges`: the node ids of
    /// merges to frame (see `labelledMerges(in:graph:)`).
    public init(graph g: Graph, cost: NetworkCost, depth: Int = Int.max, labelledMerges: Set<Int> = []) {
        var builder = ModelBuilder(graph: g, cost: cost, depth: max(0, depth), labelledMerges: labelledMerges)
        let (tree, seriesParallel) = builder.build()
        name = g.name
        let out = g.nodes[g.output].shape
        title = "\(g.name): input \(g.inputShape), output \(out), \(grouped(cost.params)) params, \(DrawText.amount(cost.macs)) MACs"
        boxes = builder.boxes
        frames = builder.frames
        self.tree = tree
        isSeriesParallel = seriesParallel
        boxOfNode = builder.boxOfNode
        edges = builder.edges(tree: tree)
    }

    /// The merges written with a label (`res: add { ... } { }`), as node ids: they are framed
    /// like modules. A merge node's location is its statement's, so the labelled merge
    /// statements of the spec (in blocks too) are matched by location.
    public static func labelledMerges(in spec: SpecFile, graph: Graph) -> Set<Int> {
        var locations = Set<SourceLocation>()
        var stack: [[Statement]] = [spec.statements]
        while let list = stack.popLast() {
            for s in list {
                switch s.kind {
                case .block(let b): stack.append(b.body)
                case .repeatLoop(_, let body): stack.append(body)
                case .merge(_, let branches, _):
                    if s.label != nil { locations.insert(s.location) }
                    stack.append(contentsOf: branches)
                default: break
                }
            }
        }
        guard !locations.isEmpty else { return [] }
        var ids = Set<Int>()
        for n in graph.nodes where n.op.isMerge && locations.contains(n.location) { ids.insert(n.id) }
        return ids
    }
}

/// Builds boxes, frames and the tree.
struct ModelBuilder {
    let g: Graph
    let cost: NetworkCost
    let depth: Int
    let labelledMerges: Set<Int>
    var boxes: [DrawBox] = []
    var frames: [DrawFrame] = []
    var boxOfNode: [Int]
    /// Each node's module path (outermost first).
    var paths: [[Int]]
    /// Whether a module has been drawn (framed or collapsed) already.
    var moduleUsed: [Bool]

    init(graph: Graph, cost: NetworkCost, depth: Int, labelledMerges: Set<Int>) {
        g = graph; self.cost = cost; self.depth = depth; self.labelledMerges = labelledMerges
        boxOfNode = [Int](repeating: -1, count: graph.nodes.count)
        paths = graph.nodes.map { graph.modulePath(of: $0) }
        moduleUsed = [Bool](repeating: false, count: graph.modules.count)
    }

    /// The tree and whether it is the series-parallel one.
    mutating func build() -> (DrawTree, Bool) {
        if let items = SeriesParallel.decompose(g), let tree = attempt({ b in try b.group(items, context: [], merges: 0) }) {
            return (tree, true)
        }
        // Not series-parallel (a graph not made by the elaborator): the layers in order, with
        // module frames if each module's layers are contiguous, else without modules.
        let flat = g.nodes.indices.map { SeriesParallel.Item.node($0) }
        if let tree = attempt({ b in try b.group(flat, context: [], merges: 0) }) { return (tree, false) }
        let plain = DrawTree.sequence(g.nodes.indices.map { n -> DrawTree in
            boxOfNode[n] = boxes.count
            boxes.append(layerBox(n))
            return .box(boxes.count - 1)
        })
        return (plain, false)
    }

    struct Mismatch: Error {}

    /// Runs a grouping; on failure restores the builder and returns nil.
    private mutating func attempt(_ body: (inout ModelBuilder) throws -> [DrawTree]) -> DrawTree? {
        let saved = self
        do {
            let items = try body(&self)
            guard !boxOfNode.contains(-1) else { self = saved; return nil }
            return items.count == 1 ? items[0] : .sequence(items)
        } catch {
            self = saved
            return nil
        }
    }

    /// The module path of an item: a node's, or for a merge its merge node's (a module holding
    /// the merge holds its branches; `group` checks that the branches' paths agree).
    func path(of item: SeriesParallel.Item) -> [Int] {
        switch item {
        case .node(let n): return paths[n]
        case .parallel(let join, _): return paths[join]
        }
    }

    /// Groups a sequence of items whose module paths start with `context` into frames and
    /// collapsed boxes; `merges` labelled merges enclose the items (their nesting level for
    /// `depth` is `context.count + merges`). Throws when the modules do not nest with the items
    /// (a module in two places, a layer outside the frames of its modules).
    mutating func group(_ items: [SeriesParallel.Item], context: [Int], merges: Int) throws -> [DrawTree] {
        let level = context.count
        var out: [DrawTree] = []
        let itemPaths = items.map { path(of: $0) }
        var i = 0
        while i < items.count {
            let p = itemPaths[i]
            guard p.count >= level, p.prefix(level).elementsEqual(context) else { throw Mismatch() }
            if p.count > level {
                let m = p[level]
                var j = i + 1
                while j < items.count, itemPaths[j].count > level, itemPaths[j][level] == m { j += 1 }
                guard !moduleUsed[m] else { throw Mismatch() }
                moduleUsed[m] = true
                if level + merges >= depth {
                    out.append(.box(collapsedBox(m, items: items[i..<j])))
                } else {
                    let inner = try group(Array(items[i..<j]), context: context + [m], merges: merges)
                    let content = inner.count == 1 ? inner[0] : DrawTree.sequence(inner)
                    frames.append(moduleFrame(m, content: content))
                    out.append(.frame(frames.count - 1, content))
                }
                i = j
                continue
            }
            switch items[i] {
            case .node(let n):
                guard paths[n].count == level else { throw Mismatch() }
                boxOfNode[n] = boxes.count
                boxes.append(layerBox(n))
                out.append(.box(boxes.count - 1))
            case .parallel(let join, let branches):
                guard paths[join].count == level else { throw Mismatch() }
                let labelled = labelledMerges.contains(join)
                if labelled && level + merges >= depth {
                    for b in branches { for item in b { guard path(of: item).starts(with: context) else { throw Mismatch() } } }
                    out.append(.box(collapsedMerge(join, items: [items[i]])))
                    i += 1
                    continue
                }
                var drawn: [DrawTree?] = []
                for b in branches {
                    if b.isEmpty { drawn.append(nil); continue }
                    let inner = try group(b, context: context, merges: merges + (labelled ? 1 : 0))
                    drawn.append(inner.count == 1 ? inner[0] : .sequence(inner))
                }
                boxOfNode[join] = boxes.count
                boxes.append(layerBox(join))
                let merge = DrawTree.parallel(branches: drawn, join: boxes.count - 1)
                if labelled {
                    frames.append(DrawFrame(subject: .merge(join), name: g.nodes[join].name, summary: g.nodes[join].op.kindName,
                                            kind: "merge", params: params(in: merge)))
                    out.append(.frame(frames.count - 1, merge))
                } else {
                    out.append(merge)
                }
            }
            i += 1
        }
        return out
    }

    /// Parameters of the boxes in a tree.
    func params(in tree: DrawTree) -> Int {
        var total = 0
        var stack = [tree]
        while let t = stack.popLast() {
            switch t {
            case .box(let b): total += boxes[b].params
            case .sequence(let items): stack.append(contentsOf: items)
            case .parallel(let branches, let join): stack.append(contentsOf: branches.compactMap { $0 }); total += boxes[join].params
            case .frame(_, let content): stack.append(content)
            }
        }
        return total
    }

    func layerBox(_ n: Int) -> DrawBox {
        let node = g.nodes[n]
        let c = cost.nodes[n]
        let op = DrawText.describe(node.op)
        var detail = "\(node.name): \(op)\noutput \(node.shape), \(grouped(c.params)) params, \(grouped(c.macs)) MACs"
        detail += "\nreceptive field \(DrawText.extent(c.receptiveField)), stride \(DrawText.extent(c.cumulativeStride))"
        detail += "\nline \(node.location.line), column \(node.location.column)"
        return DrawBox(subject: .layer(n), name: node.name, operation: op, shape: node.shape, params: c.params, macs: c.macs,
                       kind: node.op.kindName, detail: detail)
    }

    /// The nodes of items (merges with their branches), sorted.
    static func members(of items: ArraySlice<SeriesParallel.Item>) -> [Int] {
        var members: [Int] = []
        var stack = Array(items)
        while let it = stack.popLast() {
            switch it {
            case .node(let n): members.append(n)
            case .parallel(let join, let branches): members.append(join); for b in branches { stack.append(contentsOf: b) }
            }
        }
        return members.sorted()
    }

    /// The box of a collapsed labelled merge (`items`: the merge); registers it as the box of
    /// every node inside.
    mutating func collapsedMerge(_ join: Int, items: ArraySlice<SeriesParallel.Item>) -> Int {
        let members = ModelBuilder.members(of: items)
        let index = boxes.count
        for n in members { boxOfNode[n] = index }
        let s = cost.sum(members)
        let node = g.nodes[join]
        var branchCount = 0
        if case .parallel(_, let branches) = items.first { branchCount = branches.count }
        let summary = "\(node.op.kindName) of \(branchCount) branches"
        let detail = "\(node.name): \(summary) (\(members.count) layer\(members.count == 1 ? "" : "s") collapsed)\n"
            + "output \(node.shape), \(grouped(s.params)) params, \(grouped(s.macs)) MACs\nline \(node.location.line), column \(node.location.column)"
        boxes.append(DrawBox(subject: .merge(join), name: node.name, operation: summary, shape: node.shape,
                             params: s.params, macs: s.macs, kind: "module", detail: detail))
        return index
    }

    /// The box of a collapsed module; registers it as the box of every node inside.
    mutating func collapsedBox(_ m: Int, items: ArraySlice<SeriesParallel.Item>) -> Int {
        let members = ModelBuilder.members(of: items)
        let index = boxes.count
        for n in members { boxOfNode[n] = index }
        let s = cost.sum(members)
        let module = g.modules[m]
        let last = members.last ?? 0
        let detail = "\(module.name): \(module.summary) (\(module.kind), \(members.count) layer\(members.count == 1 ? "" : "s") collapsed)\n"
            + "output \(g.nodes[last].shape), \(grouped(s.params)) params, \(grouped(s.macs)) MACs\nline \(module.location.line), column \(module.location.column)"
        boxes.append(DrawBox(subject: .module(m), name: module.name, operation: module.summary, shape: g.nodes[last].shape,
                             params: s.params, macs: s.macs, kind: "module", detail: detail))
        return index
    }

    func moduleFrame(_ m: Int, content: DrawTree) -> DrawFrame {
        let module = g.modules[m]
        return DrawFrame(subject: .module(m), name: module.name, summary: module.summary, kind: module.kind, params: params(in: content))
    }

    /// The edges by the rule of `DrawingModel`, consumers in drawing order.
    func edges(tree: DrawTree) -> [DrawEdge] {
        var order: [Int] = []
        var stack = [tree]
        while let t = stack.popLast() {
            switch t {
            case .box(let b): order.append(b)
            case .sequence(let items): stack.append(contentsOf: items.reversed())
            case .parallel(let branches, let join):
                stack.append(.box(join))
                stack.append(contentsOf: branches.compactMap { $0 }.reversed())
            case .frame(_, let content): stack.append(content)
            }
        }
        var membersOfBox: [Int: [Int]] = [:]
        for n in g.nodes.indices {
            if case .layer = boxes[boxOfNode[n]].subject { continue }
            membersOfBox[boxOfNode[n], default: []].append(n)
        }
        var result: [DrawEdge] = []
        for b in order {
            switch boxes[b].subject {
            case .layer(let n):
                for i in g.nodes[n].inputs { result.append(DrawEdge(from: boxOfNode[i], to: b)) }
            case .module, .merge:
                var seen = Set<Int>()
                for n in membersOfBox[b] ?? [] {
                    for i in g.nodes[n].inputs {
                        let from = boxOfNode[i]
                        if from != b && seen.insert(from).inserted { result.append(DrawEdge(from: from, to: b)) }
                    }
                }
            }
        }
        return result
    }
}

/// Texts of the drawing.
enum DrawText {
    /// A short description of an op, as `dsl check` prints it: `conv 3x3/2 96 pad 1 bn relu`.
    static func describe(_ op: Op) -> String {
        op.shortDescription
    }

    /// A receptive field or stride (`>=1e15` at the cost model's cap).
    static func extent(_ v: Int) -> String { v >= CostModel.maxReceptiveField ? ">=1e15" : String(v) }

    /// `1.58 G`, `271.5 M`, `12.0 k`, `950`.
    static func amount(_ n: Int) -> String {
        let v = Double(n)
        func fixed(_ x: Double, _ digits: Int) -> String {
            let scale = digits == 2 ? 100.0 : 10.0
            let r = Int((x * scale).rounded())
            let whole = r / Int(scale), frac = r % Int(scale)
            let f = String(frac)
            return "\(whole)." + String(repeating: "0", count: max(0, digits - f.count)) + f
        }
        if v >= 1e9 { return fixed(v / 1e9, 2) + " G" }
        if v >= 1e6 { return fixed(v / 1e6, 1) + " M" }
        if v >= 1e3 { return fixed(v / 1e3, 1) + " k" }
        return String(n)
    }
}
