// `dsl draw`, part 2: where things go. The drawing tree (`DrawModel.swift`) is laid out
// recursively, top to bottom: a sequence stacks its items on a common axis (the x of each
// item's output), a merge puts its branches side by side (in input order, which is the order
// of the branches in the spec) with its box below them, a branch with no layers gets a narrow
// lane of its own, and a frame pads its content and carries its label in a header band (the
// edges coming in cross the band as one trunk and fan out below it, the label beside). Every
// block is a rectangle holding only its own content, so boxes never overlap; an edge enters a
// block from above and leaves it below its output, a fan-out starts at one point and a fan-in
// ends at points ordered like its branches, so edges do not cross (a series-parallel graph is
// planar and is drawn so). Edges are polylines whose vertical and horizontal pieces are
// straight and whose other pieces are drawn as curves leaving and entering vertically.
// A graph that is not series-parallel (none comes from a spec) is a column of its layers in
// order, its edges routed through lanes to the right of the column.

/// A point of the drawing (pixels, y down).
public struct DrawPoint: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public init(_ x: Double, _ y: Double) { self.x = x; self.y = y }
}

/// A rectangle of the drawing.
public struct DrawRect: Sendable, Equatable {
    public var x: Double
    public var y: Double
    public var width: Double
    public var height: Double
    public init(x: Double, y: Double, width: Double, height: Double) { self.x = x; self.y = y; self.width = width; self.height = height }
    public var maxX: Double { x + width }
    public var maxY: Double { y + height }
    public var midX: Double { x + width / 2 }
    /// Whether the interiors of two rectangles intersect (touching edges do not).
    public func overlaps(_ o: DrawRect) -> Bool { x < o.maxX && o.x < maxX && y < o.maxY && o.y < maxY }
    func offset(_ dx: Double, _ dy: Double) -> DrawRect { DrawRect(x: x + dx, y: y + dy, width: width, height: height) }
}

/// An edge with its route.
public struct PlacedEdge: Sendable, Equatable {
    /// Which boxes it joins.
    public var edge: DrawEdge
    /// The route from the bottom of `edge.from` to the top of `edge.to`; y never decreases.
    public var points: [DrawPoint]
}

/// Sizes of the drawing, in pixels. Text is measured as monospace with an advance of 0.62 em
/// (DejaVu Sans Mono, Menlo and Consolas advance 0.60 em), so the boxes fit their text in any
/// of them.
public enum DrawMetrics {
    static let advance = 0.62
    static let nameSize = 11.0, textSize = 10.0, labelSize = 10.0, titleSize = 13.0
    static let boxPadX = 8.0, boxHeight = 48.0, minBoxWidth = 64.0
    /// Baselines of the three lines of a box, from its top.
    static let baselines = [15.0, 29.0, 42.0]
    static let branchGap = 16.0, laneWidth = 14.0
    static let framePadX = 10.0, frameHeader = 20.0, framePadBottom = 10.0
    static let labelBaseline = 14.0, labelHeight = 12.0
    static let margin = 16.0, titleHeight = 30.0
    /// The most an input's arrival points on a merge are apart.
    static let arrivalSpacing = 10.0

    /// The width of a text line at a font size.
    static func textWidth(_ s: String, size: Double) -> Double { Double(s.count) * size * advance }

    /// A box's size from its text.
    static func boxSize(_ b: DrawBox) -> (Double, Double) {
        let lines = b.lines
        let w = max(textWidth(lines[0], size: nameSize), textWidth(lines[1], size: textSize), textWidth(lines[2], size: textSize))
        return (max(minBoxWidth, (w + 2 * boxPadX).rounded(.up)), boxHeight)
    }

    /// The vertical room for edges that move sideways by `dx`: more for wider fans.
    static func gap(_ dx: Double) -> Double { dx < 0.5 ? 20 : min(64, max(26, 18 + dx * 0.12)) }
}

/// A drawing's geometry: a rectangle per box and frame, a route per edge.
public struct DrawingLayout: Sendable {
    /// The size of the whole drawing.
    public var width: Double
    public var height: Double
    /// Where the title's baseline starts.
    public var titleOrigin: DrawPoint
    /// One rectangle per box (indexed like `DrawingModel.boxes`).
    public var boxes: [DrawRect]
    /// One rectangle per frame (indexed like `DrawingModel.frames`).
    public var frames: [DrawRect]
    /// Where each frame's label is written (its baseline at `y + 10`).
    public var labels: [DrawRect]
    /// The edges with their routes.
    public var edges: [PlacedEdge]

    /// Lays out a drawing model.
    public init(_ model: DrawingModel) {
        var measurer = Measurer(model: model, connect: model.isSeriesParallel)
        let root = measurer.measure(model.tree)
        let titleWidth = DrawMetrics.textWidth(model.title, size: DrawMetrics.titleSize)
        let inner = max(root.width, titleWidth)
        let origin = DrawPoint(DrawMetrics.margin + (inner - root.width) / 2, DrawMetrics.margin + DrawMetrics.titleHeight)
        boxes = [DrawRect](repeating: DrawRect(x: 0, y: 0, width: 0, height: 0), count: model.boxes.count)
        frames = [DrawRect](repeating: DrawRect(x: 0, y: 0, width: 0, height: 0), count: model.frames.count)
        labels = frames
        edges = []
        titleOrigin = DrawPoint(DrawMetrics.margin, DrawMetrics.margin + DrawMetrics.titleSize)
        width = inner + 2 * DrawMetrics.margin
        height = origin.y + root.height + DrawMetrics.margin
        // Emit absolute positions (an explicit stack: sequences of 100,000 items are fine).
        var stack: [(Block, Double, Double)] = [(root, origin.x, origin.y)]
        while let (b, dx, dy) = stack.popLast() {
            for (i, r) in b.boxes { boxes[i] = r.offset(dx, dy) }
            for (i, r, l) in b.frames { frames[i] = r.offset(dx, dy); labels[i] = l.offset(dx, dy) }
            for (e, pts) in b.edges { edges.append(PlacedEdge(edge: e, points: pts.map { DrawPoint($0.x + dx, $0.y + dy) })) }
            for (c, cx, cy) in b.children.reversed() { stack.append((c, dx + cx, dy + cy)) }
        }
        if !model.isSeriesParallel { routeAroundColumn(model) }
    }

    /// Routes the model's edges for a drawing that is a column of boxes: an edge to the next box
    /// down goes straight there, any other through a lane of its own right of the column.
    private mutating func routeAroundColumn(_ model: DrawingModel) {
        let order = boxes.indices.sorted { boxes[$0].y < boxes[$1].y }
        var row = [Int](repeating: 0, count: boxes.count)
        for (r, b) in order.enumerated() { row[b] = r }
        var incoming = [Int](repeating: 0, count: boxes.count)
        for e in model.edges { incoming[e.to] += 1 }
        var slot = [Int](repeating: 0, count: boxes.count)
        var laneEnds: [Double] = []
        let right = width - DrawMetrics.margin
        var widest = right
        for e in model.edges {
            let p = boxes[e.from], c = boxes[e.to]
            let k = incoming[e.to], s = slot[e.to]
            slot[e.to] += 1
            let spacing = k > 1 ? min(DrawMetrics.arrivalSpacing, c.width * 0.6 / Double(k - 1)) : 0
            let arrival = DrawPoint(c.midX + (Double(s) - Double(k - 1) / 2) * spacing, c.y)
            let start = DrawPoint(p.midX, p.maxY)
            if row[e.to] == row[e.from] + 1 {
                edges.append(PlacedEdge(edge: e, points: [start, arrival]))
                continue
            }
            let top = start.y + 10, bottom = arrival.y - 10
            let lane = laneEnds.firstIndex { $0 < top - 4 } ?? laneEnds.count
            if lane == laneEnds.count { laneEnds.append(max(top, bottom)) } else { laneEnds[lane] = max(top, bottom) }
            let x = right + 12 + 10 * Double(lane)
            widest = max(widest, x)
            edges.append(PlacedEdge(edge: e, points: [start, DrawPoint(x, top), DrawPoint(x, max(top, bottom)), arrival]))
        }
        width = widest + DrawMetrics.margin
    }
}

/// An edge entering a block: where it crosses the block's top (`points[0]`, y = 0) and its
/// way down to the box that reads it.
struct Entry {
    var consumer: Int
    var points: [DrawPoint]
}

/// A block's output: the box that produces it and the way from that box down to the block's
/// bottom (ending at x = axis, y = height).
struct Exit {
    var producer: Int
    var points: [DrawPoint]
}

/// A laid-out piece of the tree, in its own coordinates (origin at its top left).
final class Block {
    var width = 0.0, height = 0.0
    /// The x of the output; sequences align their items on it.
    var axis = 0.0
    var entries: [Entry] = []
    var exit: Exit?
    var boxes: [(Int, DrawRect)] = []
    var frames: [(Int, DrawRect, DrawRect)] = []
    var edges: [(DrawEdge, [DrawPoint])] = []
    var children: [(Block, Double, Double)] = []
}

private func moved(_ points: [DrawPoint], _ dx: Double, _ dy: Double) -> [DrawPoint] {
    points.map { DrawPoint($0.x + dx, $0.y + dy) }
}

/// Measures and arranges a drawing tree bottom up.
struct Measurer {
    let model: DrawingModel
    /// Whether consecutive items of a sequence are joined by edges (false for the column of a
    /// graph that is not series-parallel, whose edges are routed afterwards).
    let connect: Bool

    mutating func measure(_ tree: DrawTree) -> Block {
        switch tree {
        case .box(let b): return box(b)
        case .sequence(let items): return sequence(items.map { measure($0) })
        case .parallel(let branches, let join): return parallel(branches.map { $0.map { measure($0) } }, join: join)
        case .frame(let f, let content): return frame(f, measure(content))
        }
    }

    func box(_ b: Int) -> Block {
        let (w, h) = DrawMetrics.boxSize(model.boxes[b])
        let block = Block()
        block.width = w; block.height = h; block.axis = w / 2
        block.boxes = [(b, DrawRect(x: 0, y: 0, width: w, height: h))]
        block.entries = [Entry(consumer: b, points: [DrawPoint(w / 2, 0)])]
        block.exit = Exit(producer: b, points: [DrawPoint(w / 2, h)])
        return block
    }

    func sequence(_ items: [Block]) -> Block {
        let block = Block()
        guard let first = items.first else { return block }
        let left = items.map(\.axis).max()!
        let right = items.map { $0.width - $0.axis }.max()!
        block.width = left + right
        block.axis = left
        var y = 0.0
        var previous: (Block, Double, Double)? = nil
        for item in items {
            let x = left - item.axis
            if let (p, px, py) = previous {
                let spread = item.entries.map { abs($0.points[0].x - item.axis) }.max() ?? 0
                y += DrawMetrics.gap(connect ? spread : 0)
                if connect, let exit = p.exit {
                    let down = moved(exit.points, px, py)
                    for e in item.entries {
                        block.edges.append((DrawEdge(from: exit.producer, to: e.consumer), down + moved(e.points, x, y)))
                    }
                }
            }
            block.children.append((item, x, y))
            previous = (item, x, y)
            y += item.height
        }
        block.height = y
        let fx = left - first.axis
        block.entries = first.entries.map { Entry(consumer: $0.consumer, points: moved($0.points, fx, 0)) }
        if let (last, lx, ly) = previous, let exit = last.exit {
            block.exit = Exit(producer: exit.producer, points: moved(exit.points, lx, ly))
        }
        return block
    }

    func parallel(_ branches: [Block?], join: Int) -> Block {
        let block = Block()
        let k = branches.count
        // Columns side by side.
        var xs: [Double] = []
        var cursor = 0.0
        for b in branches {
            xs.append(cursor)
            cursor += (b?.width ?? DrawMetrics.laneWidth) + DrawMetrics.branchGap
        }
        let regionWidth = max(0, cursor - DrawMetrics.branchGap)
        let regionHeight = branches.map { $0?.height ?? 0 }.max() ?? 0
        let exits = branches.enumerated().map { i, b in xs[i] + (b?.axis ?? DrawMetrics.laneWidth / 2) }
        let solid = branches.indices.filter { branches[$0] != nil }
        let anchor = solid.isEmpty ? exits : solid.map { exits[$0] }
        let center = (anchor.min()! + anchor.max()!) / 2
        // The merge's box below, its inputs arriving in branch order.
        let (tw, th) = DrawMetrics.boxSize(model.boxes[join])
        let spacing = k > 1 ? min(DrawMetrics.arrivalSpacing, tw * 0.6 / Double(k - 1)) : 0
        let arrivals = (0..<k).map { center + (Double($0) - Double(k - 1) / 2) * spacing }
        let spread = zip(exits, arrivals).map { abs($0 - $1) }.max() ?? 0
        let top = regionHeight + DrawMetrics.gap(spread)
        let shift = max(0, tw / 2 - center)
        block.width = max(regionWidth, center + tw / 2) + shift
        block.height = top + th
        block.axis = center + shift
        block.boxes = [(join, DrawRect(x: center + shift - tw / 2, y: top, width: tw, height: th))]
        for (i, b) in branches.enumerated() {
            let x = xs[i] + shift
            let arrival = DrawPoint(arrivals[i] + shift, top)
            if let b {
                block.children.append((b, x, 0))
                block.entries += b.entries.map { Entry(consumer: $0.consumer, points: moved($0.points, x, 0)) }
                if let exit = b.exit {
                    var pts = moved(exit.points, x, 0)
                    if b.height < regionHeight { pts.append(DrawPoint(x + b.axis, regionHeight)) }
                    block.edges.append((DrawEdge(from: exit.producer, to: join), pts + [arrival]))
                }
            } else {
                let lx = x + DrawMetrics.laneWidth / 2
                block.entries.append(Entry(consumer: join, points: [DrawPoint(lx, 0), DrawPoint(lx, regionHeight), arrival]))
            }
        }
        block.exit = Exit(producer: join, points: [DrawPoint(block.axis, block.height)])
        return block
    }

    func frame(_ f: Int, _ content: Block) -> Block {
        let block = Block()
        let labelWidth = DrawMetrics.textWidth(model.frames[f].label, size: DrawMetrics.labelSize)
        // The edges coming in (all from the same box, the one before the frame) enter as one
        // trunk on the frame's axis, cross the header band and fan out below it; the label is
        // written left of the trunk, or right of it, whichever widens the frame less.
        let pad = DrawMetrics.framePadX, gapToTrunk = 6.0
        let spread = content.entries.map { abs($0.points[0].x - content.axis) }.max() ?? 0
        let fan = spread < 0.5 ? 0 : DrawMetrics.gap(spread)
        let width0 = content.width + 2 * pad
        let axis0 = content.axis + pad
        let shiftForLeft = max(0, pad + labelWidth + gapToTrunk - axis0)
        let growForRight = max(0, axis0 + gapToTrunk + labelWidth + pad - width0)
        let labelLeft = shiftForLeft <= growForRight
        let ox = pad + (labelLeft ? shiftForLeft : 0), oy = DrawMetrics.frameHeader + fan
        block.axis = content.axis + ox
        block.width = labelLeft ? width0 + shiftForLeft : width0 + growForRight
        block.height = oy + content.height + DrawMetrics.framePadBottom
        block.children = [(content, ox, oy)]
        let labelX = labelLeft ? pad : block.axis + gapToTrunk
        block.frames = [(f, DrawRect(x: 0, y: 0, width: block.width, height: block.height),
                         DrawRect(x: labelX, y: DrawMetrics.labelBaseline - 10, width: labelWidth, height: DrawMetrics.labelHeight))]
        let trunk = [DrawPoint(block.axis, 0), DrawPoint(block.axis, DrawMetrics.frameHeader)]
        block.entries = content.entries.map { e in Entry(consumer: e.consumer, points: trunk + moved(e.points, ox, oy)) }
        if let exit = content.exit {
            block.exit = Exit(producer: exit.producer, points: moved(exit.points, ox, oy) + [DrawPoint(block.axis, block.height)])
        }
        return block
    }
}
