import Foundation

// Self-contained SVG charts (no scripts, fonts or external references) for `curves.svg`.
//
// Layout of a panel, top to bottom: title, subtitle, the plot area (a rectangle of class
// "plot-area"), tick labels, the x-axis label, then the legend (class "legend") in rows under
// it: the legend is outside the plot area, so it never covers a curve. Elements carry classes
// for tools and tests: panels are `<g class="panel" id="panel-NAME">`, curves
// `<polyline class="series" data-series="NAME">`, point markers `<circle class="marker">`, the
// best epoch `<line class="best-epoch">` and `<circle class="best-marker">`, tick labels
// `<text class="x-tick">` / `<text class="y-tick">`.

/// One curve: a name for the legend, a colour, and (x, y) points.
public struct PlotSeries: Sendable {
    /// Legend label.
    public var name: String
    /// SVG colour, e.g. "#1f77b4".
    public var color: String
    /// Points in data coordinates; non-finite ones are skipped.
    public var points: [(x: Double, y: Double)]
    /// Draw dashed.
    public var dashed: Bool
    /// Mark every point with a dot (when there are at most `PlotPanel.maxMarkers` points; the
    /// last point is always marked, so that a one-point curve shows).
    public var markers: Bool
    /// Line width in pixels.
    public var lineWidth: Double
    /// Stroke opacity, 0...1.
    public var opacity: Double

    /// Creates a series.
    public init(name: String, color: String, points: [(x: Double, y: Double)], dashed: Bool = false,
                markers: Bool = true, lineWidth: Double = 2, opacity: Double = 1) {
        self.name = name; self.color = color; self.points = points; self.dashed = dashed
        self.markers = markers; self.lineWidth = lineWidth; self.opacity = opacity
    }
}

/// One chart panel: title, axis labels, its series and what is marked.
public struct PlotPanel: Sendable {
    /// Most markers drawn per series; a longer series marks its last point only.
    public static let maxMarkers = 100
    /// Most points drawn per polyline; longer series are averaged in buckets.
    public static let maxPolylinePoints = 1500
    /// Identifier (the panel's `id` is "panel-" + it).
    public var id: String
    /// Panel title.
    public var title: String
    /// A line under the title (e.g. the best epoch), or nil.
    public var subtitle: String?
    /// x-axis label.
    public var xLabel: String
    /// y-axis label.
    public var yLabel: String
    /// Curves drawn in this panel.
    public var series: [PlotSeries]
    /// Fixed y range, or nil to fit the data.
    public var yRange: ClosedRange<Double>?
    /// Bounds a fitted y range may not leave (e.g. 0...100 for accuracy), or nil.
    public var yLimits: ClosedRange<Double>?
    /// Fixed x range, or nil to fit the data.
    public var xRange: ClosedRange<Double>?
    /// An x position marked by a vertical dashed line (the best epoch), or nil.
    public var markX: Double?
    /// A point circled (the best value), or nil.
    public var highlight: (x: Double, y: Double)?

    /// Creates a panel.
    public init(id: String? = nil, title: String, subtitle: String? = nil, xLabel: String, yLabel: String, series: [PlotSeries],
                yRange: ClosedRange<Double>? = nil, yLimits: ClosedRange<Double>? = nil, xRange: ClosedRange<Double>? = nil,
                markX: Double? = nil, highlight: (x: Double, y: Double)? = nil) {
        self.id = id ?? title.lowercased().replacingOccurrences(of: " ", with: "-")
        self.title = title; self.subtitle = subtitle; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
        self.yRange = yRange; self.yLimits = yLimits; self.xRange = xRange; self.markX = markX; self.highlight = highlight
    }
}

/// About `count` round tick values covering `range` (1, 2, 5 × 10^k steps).
public func niceTicks(_ range: ClosedRange<Double>, count: Int = 5) -> [Double] {
    let step = niceStep(range, count: count)
    guard step > 0 else { return [range.lowerBound] }
    var ticks: [Double] = []
    var value = ceil(range.lowerBound / step - 1e-9) * step
    while value <= range.upperBound + step * 1e-9 {
        ticks.append(abs(value) < step * 1e-9 ? 0 : value)
        value += step
    }
    return ticks
}

/// The tick step `niceTicks` uses for `range` (0 for an empty or infinite range).
func niceStep(_ range: ClosedRange<Double>, count: Int = 5) -> Double {
    let span = range.upperBound - range.lowerBound
    guard span > 0, span.isFinite else { return 0 }
    let rough = span / Double(max(1, count))
    let magnitude = pow(10, floor(log10(rough)))
    return [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= rough * (1 - 1e-12) } ?? 10 * magnitude
}

/// The y range of a panel fitted to its data: the values' range padded by 8 % (a single value:
/// ±50 % of it, or ±0.5), kept within `limits`, not below 0 when no value is, and widened to
/// whole tick steps.
public func fittedRange(_ values: [Double], limits: ClosedRange<Double>? = nil) -> ClosedRange<Double> {
    let finite = values.filter(\.isFinite)
    guard var lo = finite.min(), var hi = finite.max() else { return limits ?? 0...1 }
    if hi <= lo {
        let d = lo == 0 ? 0.5 : abs(lo) * 0.5
        lo -= d; hi += d
    } else {
        let pad = (hi - lo) * 0.08
        lo -= pad; hi += pad
    }
    if let limits { lo = max(lo, limits.lowerBound); hi = min(hi, limits.upperBound) }
    if lo < 0 && (finite.min() ?? 0) >= 0 { lo = 0 }
    let step = niceStep(lo...max(hi, lo + 1e-300))
    if step > 0 {
        lo = floor(lo / step + 1e-9) * step; hi = ceil(hi / step - 1e-9) * step
        if let limits { lo = max(lo, limits.lowerBound); hi = min(hi, limits.upperBound) }
    }
    return hi > lo ? lo...hi : lo...(lo + 1)
}

private func escapeXML(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

private func tickLabel(_ value: Double, step: Double) -> String {
    if value == value.rounded() && abs(value) < 1e6 { return String(Int(value)) }
    if step >= 1e-4 && abs(value) < 1e6 {
        let decimals = max(0, Int(ceil(-log10(step) - 1e-9)))
        var text = String(format: "%.\(decimals)f", value)
        while text.contains(".") && text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
    return String(format: "%g", value)
}

/// At most `limit` points: consecutive points averaged in equal buckets.
private func thinned(_ points: [(x: Double, y: Double)], limit: Int) -> [(x: Double, y: Double)] {
    guard points.count > limit, limit > 0 else { return points }
    var result: [(x: Double, y: Double)] = []
    for b in 0..<limit {
        let slice = points[(b * points.count / limit)..<((b + 1) * points.count / limit)]
        guard !slice.isEmpty else { continue }
        result.append((slice.map(\.x).reduce(0, +) / Double(slice.count), slice.map(\.y).reduce(0, +) / Double(slice.count)))
    }
    return result
}

/// Legend entries laid out in rows of at most `width` pixels: (series index, x offset, row).
private func legendLayout(_ series: [PlotSeries], width: Double) -> [(index: Int, x: Double, row: Int)] {
    var result: [(index: Int, x: Double, row: Int)] = []
    var x = 0.0, row = 0
    for (i, s) in series.enumerated() {
        let w = legendEntryWidth(s)
        if x > 0 && x + w > width { x = 0; row += 1 }
        result.append((i, x, row))
        x += w
    }
    return result
}

private func legendEntryWidth(_ s: PlotSeries) -> Double { 34 + 6.6 * Double(s.name.count) + 16 }

/// Renders panels side by side as a standalone SVG document (axes, ticks, labels, legends under
/// the plot areas; one polyline per series, markers, the marked x and the highlighted point).
public func renderSVG(panels: [PlotPanel], title: String? = nil, panelWidth: Double = 420, panelHeight: Double = 360) -> String {
    let marginLeft = 64.0, marginRight = 18.0
    let titleHeight = title == nil ? 0.0 : 28.0
    let hasSubtitle = panels.contains { $0.subtitle != nil }
    let marginTop = hasSubtitle ? 50.0 : 36.0
    let legendWidth = panelWidth - marginLeft - marginRight
    let legendRows = panels.map { p in (legendLayout(p.series, width: legendWidth).map(\.row).max() ?? -1) + 1 }.max() ?? 0
    let marginBottom = 50.0 + Double(legendRows) * 18 + 8
    let width = panelWidth * Double(max(1, panels.count)), height = panelHeight + titleHeight
    var svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
    svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>\n"
    if let title {
        svg += "<text class=\"title\" x=\"\(f(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\(escapeXML(title))</text>\n"
    }
    for (index, panel) in panels.enumerated() {
        let originX = Double(index) * panelWidth, originY = titleHeight
        let left = originX + marginLeft, right = originX + panelWidth - marginRight
        let top = originY + marginTop, bottom = originY + panelHeight - marginBottom
        let finite = panel.series.flatMap { $0.points }.filter { $0.x.isFinite && $0.y.isFinite }
        var xMin = panel.xRange?.lowerBound ?? finite.map(\.x).min() ?? 0
        var xMax = panel.xRange?.upperBound ?? finite.map(\.x).max() ?? 1
        if xMax <= xMin { xMin -= 0.5; xMax += 0.5 }
        let yFit = panel.yRange ?? fittedRange(finite.map(\.y) + (panel.highlight.map { [$0.y] } ?? []), limits: panel.yLimits)
        let (yMin, yMax) = (yFit.lowerBound, yFit.upperBound)
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (min(max(y, yMin), yMax) - yMin) / (yMax - yMin) * (bottom - top) }

        svg += "<g class=\"panel\" id=\"panel-\(escapeXML(panel.id))\">\n"
        svg += "<text class=\"panel-title\" x=\"\(f((left + right) / 2))\" y=\"\(f(originY + 22))\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(escapeXML(panel.title))</text>\n"
        if let subtitle = panel.subtitle {
            svg += "<text class=\"subtitle\" x=\"\(f((left + right) / 2))\" y=\"\(f(originY + 40))\" text-anchor=\"middle\" fill=\"#444444\">\(escapeXML(subtitle))</text>\n"
        }
        svg += "<rect class=\"plot-area\" x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(right - left))\" height=\"\(f(bottom - top))\" fill=\"none\" stroke=\"none\"/>\n"
        // Grid, ticks and tick labels.
        let xStep = niceStep(xMin...xMax), yStep = niceStep(yMin...yMax)
        for tick in niceTicks(xMin...xMax) {
            let x = px(tick)
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(bottom))\" stroke=\"#e5e5e5\"/>\n"
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(bottom))\" x2=\"\(f(x))\" y2=\"\(f(bottom + 5))\" stroke=\"black\"/>\n"
            svg += "<text class=\"x-tick\" x=\"\(f(x))\" y=\"\(f(bottom + 18))\" text-anchor=\"middle\">\(tickLabel(tick, step: xStep))</text>\n"
        }
        for tick in niceTicks(yMin...yMax) {
            let y = py(tick)
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#e5e5e5\"/>\n"
            svg += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"black\"/>\n"
            svg += "<text class=\"y-tick\" x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(tickLabel(tick, step: yStep))</text>\n"
        }
        // Axes and labels.
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        svg += "<text class=\"x-label\" x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 36))\" text-anchor=\"middle\">\(escapeXML(panel.xLabel))</text>\n"
        let labelY = (top + bottom) / 2, labelX = originX + 16
        svg += "<text class=\"y-label\" x=\"\(f(labelX))\" y=\"\(f(labelY))\" text-anchor=\"middle\" transform=\"rotate(-90 \(f(labelX)) \(f(labelY)))\">\(escapeXML(panel.yLabel))</text>\n"
        // The marked x (best epoch), under the curves.
        if let mark = panel.markX, mark.isFinite, mark >= xMin, mark <= xMax {
            svg += "<line class=\"best-epoch\" x1=\"\(f(px(mark)))\" y1=\"\(f(top))\" x2=\"\(f(px(mark)))\" y2=\"\(f(bottom))\" stroke=\"#555555\" stroke-width=\"1\" stroke-dasharray=\"3 3\"/>\n"
        }
        // Curves and their markers.
        for series in panel.series {
            let points = series.points.filter { $0.x.isFinite && $0.y.isFinite }
            let name = escapeXML(series.name), color = escapeXML(series.color)
            let dash = series.dashed ? " stroke-dasharray=\"6 4\"" : ""
            let opacity = series.opacity < 1 ? " stroke-opacity=\"\(f(series.opacity))\"" : ""
            let coordinates = thinned(points, limit: PlotPanel.maxPolylinePoints).map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
            svg += "<polyline class=\"series\" data-series=\"\(name)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(f(series.lineWidth))\"\(opacity)\(dash) points=\"\(coordinates)\"><title>\(name)</title></polyline>\n"
            if series.markers {
                let marked = points.count <= PlotPanel.maxMarkers ? points : Array(points.suffix(1))
                for p in marked {
                    svg += "<circle class=\"marker\" data-series=\"\(name)\" cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(color)\"/>\n"
                }
            }
        }
        if let h = panel.highlight, h.x.isFinite, h.y.isFinite {
            svg += "<circle class=\"best-marker\" cx=\"\(f(px(h.x)))\" cy=\"\(f(py(h.y)))\" r=\"7\" fill=\"none\" stroke=\"black\" stroke-width=\"1.5\"/>\n"
        }
        // Legend, under the x-axis label: outside the plot area.
        if !panel.series.isEmpty {
            let layout = legendLayout(panel.series, width: legendWidth)
            let rows = (layout.map(\.row).max() ?? 0) + 1
            let boxTop = bottom + 46
            let boxWidth = min(legendWidth, (0..<rows).map { r in layout.filter { $0.row == r }.map { $0.x + legendEntryWidth(panel.series[$0.index]) }.max() ?? 0 }.max() ?? 0)
            svg += "<g class=\"legend\">\n"
            svg += "<rect class=\"legend-box\" x=\"\(f(left))\" y=\"\(f(boxTop))\" width=\"\(f(boxWidth))\" height=\"\(f(Double(rows) * 18 + 4))\" fill=\"white\" stroke=\"#bbbbbb\"/>\n"
            for entry in layout {
                let s = panel.series[entry.index]
                let x = left + entry.x + 6, y = boxTop + 14 + Double(entry.row) * 18
                let dash = s.dashed ? " stroke-dasharray=\"6 4\"" : ""
                svg += "<line x1=\"\(f(x))\" y1=\"\(f(y - 4))\" x2=\"\(f(x + 24))\" y2=\"\(f(y - 4))\" stroke=\"\(escapeXML(s.color))\" stroke-width=\"\(f(s.lineWidth))\"\(dash)/>\n"
                if s.markers { svg += "<circle cx=\"\(f(x + 12))\" cy=\"\(f(y - 4))\" r=\"3\" fill=\"\(escapeXML(s.color))\"/>\n" }
                svg += "<text x=\"\(f(x + 30))\" y=\"\(f(y))\">\(escapeXML(s.name))</text>\n"
            }
            svg += "</g>\n"
        }
        svg += "</g>\n"
    }
    svg += "</svg>\n"
    return svg
}

/// The best epoch of a run: the highest test accuracy (the earliest of equals), or the highest
/// training accuracy when no epoch was tested; nil without records.
public func bestEpoch(_ records: [EpochMetrics]) -> (epoch: Int, accuracy: Double, tested: Bool)? {
    let tested = records.compactMap { r in r.testAccuracy.flatMap { $0.isFinite ? (r.epoch, $0) : nil } }
    if let best = tested.max(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 > $1.0) }) { return (best.0, best.1, true) }
    let trained = records.filter { $0.trainAccuracy.isFinite }.map { ($0.epoch, $0.trainAccuracy) }
    return trained.max(by: { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 > $1.0) }).map { ($0.0, $0.1, false) }
}

/// The training curves as an SVG document, three panels:
/// - Loss: training loss per epoch (solid, dots), test loss (dashed, dots) and, from `steps`,
///   the per-iteration training loss (thin, light);
/// - Accuracy: training and test accuracy, the y axis fitted to the data within 0–100 %;
/// - Learning rate: per window of steps from `steps`, else per epoch.
/// The best epoch (`bestEpoch`) is marked in the loss and accuracy panels and named in the
/// accuracy panel's subtitle. The x axis is the epoch (fractional for the per-step values).
public func renderTrainingSVG(_ records: [EpochMetrics], steps: [StepRecord] = [], title: String? = nil) -> String {
    let blue = "#1f77b4", red = "#d62728", green = "#2ca02c"
    let x = records.map { Double($0.epoch) }
    func pairs(_ ys: [Double]) -> [(x: Double, y: Double)] { zip(x, ys).map { (x: $0.0, y: $0.1) } }
    let tested = records.filter { $0.testLoss != nil || $0.testAccuracy != nil }
    let best = bestEpoch(records)
    let lastEpoch = max(1, (records.map(\.epoch) + steps.map { Int($0.epoch.rounded(.up)) }).max() ?? 1)
    let xRange = 0.0...Double(lastEpoch)

    var loss: [PlotSeries] = []
    if !steps.isEmpty {
        loss.append(PlotSeries(name: "train loss (per iteration)", color: blue, points: steps.map { (x: $0.epoch, y: $0.loss) },
                               markers: false, lineWidth: 1, opacity: 0.4))
    }
    loss.append(PlotSeries(name: "train loss", color: blue, points: pairs(records.map(\.trainLoss))))
    var accuracy = [PlotSeries(name: "train accuracy", color: blue, points: pairs(records.map { $0.trainAccuracy * 100 }))]
    if !tested.isEmpty {
        loss.append(PlotSeries(name: "test loss", color: red, points: tested.compactMap { r in r.testLoss.map { (x: Double(r.epoch), y: $0) } }, dashed: true))
        accuracy.append(PlotSeries(name: "test accuracy", color: red, points: tested.compactMap { r in r.testAccuracy.map { (x: Double(r.epoch), y: $0 * 100) } }, dashed: true))
    }
    let rate = steps.isEmpty
        ? PlotSeries(name: "learning rate (per epoch)", color: green, points: pairs(records.map(\.learningRate)))
        : PlotSeries(name: "learning rate", color: green, points: steps.map { (x: $0.epoch, y: $0.learningRate) }, markers: false)
    let subtitle = best.map { "best \($0.tested ? "test" : "training") accuracy \(String(format: "%.2f", $0.accuracy * 100)) % at epoch \($0.epoch)" }
    return renderSVG(panels: [
        PlotPanel(id: "loss", title: "Loss", xLabel: "epoch", yLabel: "cross-entropy loss", series: loss, xRange: xRange,
                  markX: best.map { Double($0.epoch) }),
        PlotPanel(id: "accuracy", title: "Accuracy", subtitle: subtitle, xLabel: "epoch", yLabel: "accuracy (%)", series: accuracy,
                  yLimits: 0...100, xRange: xRange, markX: best.map { Double($0.epoch) }, highlight: best.map { (x: Double($0.epoch), y: $0.accuracy * 100) }),
        PlotPanel(id: "learning-rate", title: "Learning rate", xLabel: "epoch", yLabel: "learning rate", series: [rate], xRange: xRange),
    ], title: title)
}

/// Writes the training curves SVG for `records` (and the per-step trace `steps`) to `path` atomically.
public func writeTrainingPlot(_ records: [EpochMetrics], steps: [StepRecord] = [], to path: String, title: String? = nil) throws {
    try writeTextAtomically(renderTrainingSVG(records, steps: steps, title: title), to: path)
}

/// Formats a coordinate with at most two decimals.
private func f(_ value: Double) -> String {
    let rounded = (value * 100).rounded() / 100
    return rounded == rounded.rounded() && abs(rounded) < 1e15 ? String(Int(rounded)) : String(format: "%.2f", rounded)
}
