// Stage 6: pictures. What a network is (`dsl draw`: its checked graph as SVG or Graphviz dot)
// and what it learned (`dsl visualize`: the All-CNN paper's guided backpropagation beside the
// deconvnet and plain backpropagation, as PNG grids). The image and array formats (PNG, NumPy
// .npy) are written here with the toolchain only. README, "Drawing a network" and "Visualising what a network learned".

import DSLEngine
import DSLIR
import DSLTraining
import Foundation

// `dsl visualize`: what a unit of a trained network responds to, the All-CNN paper's way
// (Springenberg et al. 2015, Section 3.4 and Figures 1, 3, 4). For each chosen unit (a channel
// of a layer) the test images that activate it most are found; for each, the unit's single
// strongest activation in that image is back-propagated to the input image (its gradient set
// to 1, every other activation's to 0), in inference mode (batch norm with its running
// statistics, dropout off), through every ReLU by one of three rules (`ReLUBackwardRule`):
// backprop (the gradient), deconvnet, guided. Max pooling routes by its switches; everything
// else back-propagates as usual. The map of the input is shown beside the image, both cropped
// to the unit's receptive field.

/// Which reconstructions `dsl visualize` draws.
public enum VisualizeMethod: String, CaseIterable, Sendable {
    case guided, deconvnet, backprop
    /// The three side by side: backprop, deconvnet, guided.
    case all

    /// The ReLU rules, in column order.
    public var rules: [ReLUBackwardRule] {
        switch self {
        case .all: return [.backprop, .deconvnet, .guided]
        case .guided: return [.guided]
        case .deconvnet: return [.deconvnet]
        case .backprop: return [.backprop]
        }
    }
}

/// A request that cannot be met (unknown layer or unit, image index out of range, a checkpoint
/// of another network, ...): the message says why.
public struct VisualizeError: Error, CustomStringConvertible {
    /// What went wrong.
    public let message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// What to visualise.
public struct VisualizeRequest: Sendable {
    /// The layer (a name `dsl check` prints); nil with `classIndex`.
    public var layer: String?
    /// Channels of the layer (nil: the first 8, or all if fewer).
    public var units: [Int]?
    /// Images per unit (the K test images that activate it most).
    public var top = 9
    /// The reconstruction rule(s).
    public var method = VisualizeMethod.guided
    /// One test image instead of the top K (`--image N`): its full map per unit or class.
    public var image: Int?
    /// The logit (the softmax's input) of this class as the unit (`--class C`).
    public var classIndex: Int?
    /// Creates a request for the first units of no layer yet.
    public init() {}
}

/// Where a unit of a layer looks in the input: rows `start + i·stride ..< start + i·stride +
/// size` for the unit at output row i, padding included, and columns likewise. `size` and
/// `stride` are `dsl check`'s receptive field and cumulative stride (`CostModel`); `start`
/// follows the paddings (the earliest over branches). The `column` figures are nil where they
/// equal the rows' (always, without rectangular kernels, strides or paddings).
public struct ReceptiveRegion: Equatable, Sendable {
    public var start: Int
    public var size: Int
    public var stride: Int
    public var columnStart: Int? = nil
    public var columnSize: Int? = nil
    public var columnStride: Int? = nil
}

/// Every IR node's receptive region.
public func receptiveRegions(of g: Graph) -> [ReceptiveRegion] {
    let costs = CostModel.analyze(g).nodes
    var rows = [Int](repeating: 0, count: g.nodes.count)
    var columns = [Int](repeating: 0, count: g.nodes.count)
    for n in g.nodes {
        let inRow = n.inputs.map { rows[$0] }.min() ?? 0
        let inColumn = n.inputs.map { columns[$0] }.min() ?? 0
        let jumpH = n.inputs.map { costs[$0].cumulativeStrideHeight }.max() ?? 1
        let jumpW = n.inputs.map { costs[$0].cumulativeStrideWidth }.max() ?? 1
        switch n.op {
        case .conv(let a):
            rows[n.id] = inRow - a.padTop * jumpH
            columns[n.id] = inColumn - a.padLeft * jumpW
        case .pool(let p):
            rows[n.id] = inRow - p.pad * jumpH
            columns[n.id] = inColumn - p.pad * jumpW
        default:
            rows[n.id] = inRow
            columns[n.id] = inColumn
        }
    }
    return g.nodes.map { n in
        let c = costs[n.id]
        var r = ReceptiveRegion(start: rows[n.id], size: c.receptiveFieldHeight, stride: c.cumulativeStrideHeight)
        if columns[n.id] != r.start { r.columnStart = columns[n.id] }
        if c.receptiveFieldWidth != r.size { r.columnSize = c.receptiveFieldWidth }
        if c.cumulativeStrideWidth != r.stride { r.columnStride = c.cumulativeStrideWidth }
        return r
    }
}

/// One image of a row: which test image, where the unit fired, and its maps.
public struct VisualizeEntry: Sendable {
    /// Index in the test set.
    public var image: Int
    /// Its label.
    public var label: Int
    /// The unit's strongest activation in the image (the value back-propagated from).
    public var activation: Float
    /// Where (output row, column of the layer).
    public var position: (y: Int, x: Int)
    /// The part of the image shown: rows y..<y+height, columns x..<x+width (the receptive
    /// field, shifted inside the image; the whole image with `--image`).
    public var crop: (y: Int, x: Int, height: Int, width: Int)
    /// The unnormalised input gradient (H×W×C, NHWC) per rule, in `VisualizeResult.rules` order.
    public var maps: [[Float]]
}

/// One row of the grid: a unit (or class) and its images.
public struct VisualizeRow: Sendable {
    /// The channel of the layer (the class with `--class`).
    public var unit: Int
    /// The images, strongest first.
    public var entries: [VisualizeEntry]
}

/// What `Visualizer.run` found.
public struct VisualizeResult: Sendable {
    /// The layer's name (or "logits").
    public var layer: String
    /// The ReLU rule of each map column.
    public var rules: [ReLUBackwardRule]
    /// Rows, one per unit.
    public var rows: [VisualizeRow]
    /// Input image shape (height, width, channels).
    public var imageShape: (height: Int, width: Int, channels: Int)
    /// The raw test images (pixel values 0...255, NHWC), for display.
    let pixels: [Float]
    /// Class names of the test set.
    public var classNames: [String]

    /// The shape of `rawValues`: (rows, images per row, rules, H, W, C).
    public var rawShape: [Int] {
        [rows.count, rows.map(\.entries.count).max() ?? 0, rules.count, imageShape.height, imageShape.width, imageShape.channels]
    }

    /// Every unnormalised map, C order of `rawShape` (a row with fewer images is padded with zeros).
    public var rawValues: [Float] {
        let shape = rawShape
        let mapCount = shape[3] * shape[4] * shape[5]
        var values = [Float](repeating: 0, count: shape.reduce(1, *))
        for (r, row) in rows.enumerated() {
            for (k, entry) in row.entries.enumerated() {
                for (m, map) in entry.maps.enumerated() {
                    let at = ((r * shape[1] + k) * shape[2] + m) * mapCount
                    values.replaceSubrange(at..<(at + mapCount), with: map)
                }
            }
        }
        return values
    }

    /// A line per row: the unit and, per image, its index, class, activation and position.
    public func summary() -> String {
        var s = ""
        for row in rows {
            s += "\(layer == "logits" ? "class" : "unit") \(row.unit):"
            for e in row.entries {
                let name = e.label < classNames.count ? classNames[e.label] : "\(e.label)"
                s += String(format: " %d (%@, %.4g at %d,%d)", e.image, name, e.activation, e.position.y, e.position.x)
            }
            s += "\n"
        }
        return s
    }

    // MARK: The grid

    /// Gap between the image and its maps, and between entries and rows, in pixels.
    static let innerGap = 2, entryGap = 8, margin = 4

    /// The picture: a row per unit; per image, the crop of the image, then its map(s) (the
    /// rules' order), each map normalised for display on its own (`displayPixels`), scaled up
    /// by an integer factor so a cell is at least 64 pixels where the crop is smaller.
    public func grid() -> RGBImage {
        let cellH = rows.first?.entries.first?.crop.height ?? imageShape.height
        let cellW = rows.first?.entries.first?.crop.width ?? imageShape.width
        let scale = max(1, 64 / max(cellH, cellW))
        let (ch, cw) = (cellH * scale, cellW * scale)
        let perEntry = 1 + rules.count
        let entryWidth = perEntry * cw + (perEntry - 1) * Self.innerGap
        let columns = max(1, rows.map(\.entries.count).max() ?? 1)
        let width = 2 * Self.margin + columns * entryWidth + (columns - 1) * Self.entryGap
        let height = 2 * Self.margin + max(1, rows.count) * ch + max(0, rows.count - 1) * Self.entryGap
        var image = RGBImage(width: width, height: height)
        let (h, w, c) = imageShape
        for (r, row) in rows.enumerated() {
            let top = Self.margin + r * (ch + Self.entryGap)
            for (k, entry) in row.entries.enumerated() {
                var left = Self.margin + k * (entryWidth + Self.entryGap)
                let crop = entry.crop
                let start = entry.image * h * w * c
                let picture = VisualizeResult.cropped(Array(pixels[start..<(start + h * w * c)]), width: w, channels: c, crop)
                let cells = [VisualizeResult.imagePixels(picture, channels: c)]
                    + entry.maps.map { VisualizeResult.displayPixels(VisualizeResult.cropped($0, width: w, channels: c, crop), channels: c) }
                for cell in cells {
                    for y in 0..<ch {
                        for x in 0..<cw {
                            let i = (y / scale) * crop.width + x / scale
                            image.set(x: left + x, y: top + y, (cell[3 * i], cell[3 * i + 1], cell[3 * i + 2]))
                        }
                    }
                    left += cw + Self.innerGap
                }
            }
        }
        return image
    }

    /// The crop's values, H'×W'×C.
    static func cropped(_ map: [Float], width: Int, channels c: Int, _ crop: (y: Int, x: Int, height: Int, width: Int)) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(crop.height * crop.width * c)
        for y in crop.y..<(crop.y + crop.height) {
            let row = (y * width + crop.x) * c
            out += map[row..<(row + crop.width * c)]
        }
        return out
    }

    /// Display colour of each pixel of a 1-, 3- or other-channel array: RGB as is, otherwise grey
    /// (channel 0 of one, the mean of several).
    private static func colours(_ values: [Float], channels c: Int, _ toByte: (Float) -> UInt8) -> [UInt8] {
        let n = values.count / c
        var out = [UInt8](repeating: 0, count: 3 * n)
        for p in 0..<n {
            if c == 3 {
                for k in 0..<3 { out[3 * p + k] = toByte(values[3 * p + k]) }
            } else {
                var s: Float = 0
                for k in 0..<c { s += values[c * p + k] }
                let v = toByte(s / Float(c))
                out[3 * p] = v; out[3 * p + 1] = v; out[3 * p + 2] = v
            }
        }
        return out
    }

    /// Raw pixel values 0...255 as bytes.
    static func imagePixels(_ values: [Float], channels c: Int) -> [UInt8] {
        colours(values, channels: c) { UInt8(max(0, min(255, $0.rounded()))) }
    }

    /// A map as the papers show it: per map, subtract its mean and divide by its largest
    /// absolute deviation, so the values span [−1, 1]; then 128 + 127·v (grey is zero
    /// deviation from the mean; a map of one value is all grey). Over the channels of each
    /// pixel alike (one mean and one scale per map), so colours keep their balance.
    public static func displayPixels(_ map: [Float], channels c: Int) -> [UInt8] {
        let mean = map.isEmpty ? 0 : Float(map.reduce(0.0) { $0 + Double($1) } / Double(map.count))
        let largest = map.reduce(Float(0)) { max($0, abs($1 - mean)) }
        let scale: Float = largest > 0 ? 127 / largest : 0
        return colours(map, channels: c) { v in UInt8(max(0, min(255, (128 + (v - mean) * scale).rounded()))) }
    }
}

/// A trained network ready to be visualised: the checkpoint's weights in an engine compiled to
/// back-propagate to its input, and the preprocessed test set.
public final class Visualizer {
    /// The network.
    public let graph: Graph
    /// The test images as stored (0...255).
    public let test: Dataset
    /// The test images preprocessed as in training.
    private let inputs: [Float]
    private let lowered: LoweredNetwork
    private let batch: Int
    /// Warnings for the user (no preprocessing stored, ...).
    public private(set) var warnings: [String] = []

    /// Loads the checkpoint into the network (refusing one of another network), preprocesses
    /// the test set with the checkpoint's preprocessing, and compiles the engine for batches
    /// of up to `batch` images.
    public init(graph g: Graph, checkpoint: TrainingCheckpoint, checkpointPath: String, test: Dataset, batch: Int = 50) throws {
        warnings += try Trainer.checkCheckpoint(checkpoint, graph: g, file: checkpointPath, use: .evaluate)
        let classes = try Trainer.classes(of: g)
        guard test.classes == classes else {
            throw VisualizeError("the test set has \(test.classes) classes but the network outputs \(classes)")
        }
        try Trainer.checkClassifier(g, fits: test, role: "test set")
        var prepared = test
        if let pre = checkpoint.preprocessor {
            let s = g.inputShape
            guard pre.height == s.height, pre.width == s.width, pre.channels == s.channels else {
                throw VisualizeError("\(checkpointPath): metadata 'preprocess.shape' is \(pre.height),\(pre.width),\(pre.channels) but the network's input is \(s)")
            }
            try pre.apply(to: &prepared)
        } else {
            warnings.append("\(checkpointPath): no preprocessing stored (no 'preprocess.method'); using raw pixel values")
        }
        graph = g
        self.test = test
        inputs = prepared.images
        self.batch = max(1, batch)
        lowered = try lower(g, maxBatch: self.batch, seed: 0)
        lowered.engine.computesInputGradient = true
        try lowered.engine.compile(training: true)
        try Trainer.loadWeights(checkpoint.parameters, into: lowered.engine, file: checkpointPath)
    }

    /// Layer names that hold units (every layer but the input and the final softmax).
    public var layerNames: [String] {
        graph.nodes.filter { $0.id > 0 && $0.id != graph.output }.map(\.name)
    }

    /// Finds, maps and arranges what `request` asks for.
    public func run(_ request: VisualizeRequest) throws -> VisualizeResult {
        let g = graph
        let engine = lowered.engine
        // The IR node and engine node to start from.
        let irNode: Int, layerName: String
        if let c = request.classIndex {
            if let layer = request.layer {
                throw VisualizeError("--class \(c) visualises the logits; it cannot be combined with --layer \(layer)")
            }
            guard c >= 0 && c < test.classes else {
                throw VisualizeError("class \(c) does not exist: the network has \(test.classes) classes (0-\(test.classes - 1))")
            }
            irNode = g.nodes[g.output].inputs[0]
            layerName = "logits"
        } else {
            guard let name = request.layer else { throw VisualizeError("no layer given (--layer NAME) and no class (--class C)") }
            guard let node = g.nodes.first(where: { $0.name == name }) else {
                let hint = nearestLayerName(name, in: layerNames).map { "; did you mean '\($0)'?" } ?? ""
                throw VisualizeError("unknown layer '\(name)' in network '\(g.name)'\(hint) ('dsl check' lists the layers)")
            }
            guard node.id != 0 else { throw VisualizeError("layer 'input' is the image itself; choose a layer after it") }
            guard node.id != g.output else {
                throw VisualizeError("layer '\(name)' is the final softmax; use --class C to visualise the logit of class C")
            }
            irNode = node.id
            layerName = name
        }
        let target = lowered.outputOf[irNode]
        guard target > 0 else { throw VisualizeError("layer '\(layerName)' passes the input image through unchanged; choose a later layer") }
        let shape = engine.shape(of: target)
        let units: [Int]
        if let c = request.classIndex {
            units = [c]
        } else if let chosen = request.units {
            guard !chosen.isEmpty else { throw VisualizeError("no units given") }
            for u in chosen where u < 0 || u >= shape.channels {
                throw VisualizeError("unit \(u) does not exist: layer '\(layerName)' has \(shape.channels) units (0-\(shape.channels - 1))")
            }
            units = chosen
        } else {
            units = Array(0..<min(8, shape.channels))
        }
        guard request.top >= 1 else { throw VisualizeError("--top must be at least 1") }
        let (h, w, c) = (g.inputShape.height, g.inputShape.width, g.inputShape.channels)
        let imageSize = h * w * c
        let region = receptiveRegions(of: g)[irNode]

        // Candidates: (image, activation, position) per unit, strongest first.
        var candidates = [[(image: Int, value: Float, position: Int)]](repeating: [], count: units.count)
        let scanned: [Int]
        if let n = request.image {
            guard n >= 0 && n < test.count else {
                throw VisualizeError("image \(n) is out of range: the test set has \(test.count) images (0-\(test.count - 1))")
            }
            scanned = [n]
        } else {
            scanned = Array(0..<test.count)
        }
        let pixelsPerMap = shape.height * shape.width
        let keep = request.image == nil ? request.top : 1
        var first = 0
        while first < scanned.count {
            let count = min(batch, scanned.count - first)
            let batchImages = gather(Array(scanned[first..<(first + count)]), imageSize: imageSize)
            let y = batchImages.withUnsafeBufferPointer { engine.forwardForInputGradient($0.baseAddress!, batch: count, through: target) }
            for b in 0..<count {
                let sample = y + b * shape.count
                for (ui, u) in units.enumerated() {
                    var best = -Float.infinity, at = 0
                    for p in 0..<pixelsPerMap where sample[p * shape.channels + u] > best {
                        best = sample[p * shape.channels + u]; at = p
                    }
                    candidates[ui].append((scanned[first + b], best, at))
                }
            }
            // Keep the list short: the strongest `keep`, earlier images first on ties.
            for ui in candidates.indices where candidates[ui].count > 4 * keep + batch {
                candidates[ui] = Array(candidates[ui].sorted { ($0.value, -$0.image) > ($1.value, -$1.image) }.prefix(keep))
            }
            first += count
        }

        // The maps, a batch of entries at a time per rule.
        let rules = request.method.rules
        var rows: [VisualizeRow] = []
        for (ui, u) in units.enumerated() {
            let chosen = Array(candidates[ui].sorted { ($0.value, -$0.image) > ($1.value, -$1.image) }.prefix(keep))
            var entries: [VisualizeEntry] = chosen.map { cand in
                let (py, px) = (cand.position / shape.width, cand.position % shape.width)
                let crop: (y: Int, x: Int, height: Int, width: Int)
                if request.image != nil {
                    crop = (0, 0, h, w)
                } else {
                    let ch = min(region.size, h), cw = min(region.columnSize ?? region.size, w)
                    let y0 = min(max(region.start + py * region.stride, 0), h - ch)
                    let x0 = min(max((region.columnStart ?? region.start) + px * (region.columnStride ?? region.stride), 0), w - cw)
                    crop = (y0, x0, ch, cw)
                }
                return VisualizeEntry(image: cand.image, label: Int(test.labels[cand.image]), activation: cand.value,
                                      position: (py, px), crop: crop, maps: [])
            }
            var start = 0
            while start < entries.count {
                let count = min(batch, entries.count - start)
                let part = Array(entries[start..<(start + count)])
                let batchImages = gather(part.map(\.image), imageSize: imageSize)
                var seed = [Float](repeating: 0, count: count * shape.count)
                for (b, e) in part.enumerated() { seed[b * shape.count + (e.position.y * shape.width + e.position.x) * shape.channels + u] = 1 }
                for rule in rules {
                    _ = batchImages.withUnsafeBufferPointer { engine.forwardForInputGradient($0.baseAddress!, batch: count, through: target) }
                    let gradient = seed.withUnsafeBufferPointer { engine.inputGradient(seed: $0.baseAddress!, batch: count, rule: rule) }
                    for b in 0..<count {
                        entries[start + b].maps.append(Array(UnsafeBufferPointer(start: gradient + b * imageSize, count: imageSize)))
                    }
                }
                start += count
            }
            rows.append(VisualizeRow(unit: u, entries: entries))
        }
        return VisualizeResult(layer: layerName, rules: rules, rows: rows, imageShape: (h, w, c), pixels: test.images,
                               classNames: test.classNames)
    }

    /// The preprocessed images at `indices`, NHWC.
    private func gather(_ indices: [Int], imageSize: Int) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(indices.count * imageSize)
        for i in indices { out += inputs[(i * imageSize)..<((i + 1) * imageSize)] }
        return out
    }
}

/// The name within edit distance 2 (or a third of the word) closest to `word`, for "did you mean".
func nearestLayerName(_ word: String, in names: [String]) -> String? {
    func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        if x.isEmpty { return y.count }
        var previous = Array(0...y.count)
        for i in 1...x.count {
            var current = [i] + [Int](repeating: 0, count: y.count)
            for j in stride(from: 1, through: y.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[y.count]
    }
    let limit = max(2, word.count / 3)
    let scored = names.filter { abs($0.count - word.count) <= limit }.map { ($0, distance($0, word)) }
    return scored.filter { $0.1 <= limit }.min { $0.1 < $1.1 }?.0
}
