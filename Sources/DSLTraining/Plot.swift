import Foundation

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

    /// Creates a series.
    public init(name: String, color: String, points: [(x: Double, y: Double)], dashed: Bool = false) {
        self.name = name; self.color = color; self.points = points; self.dashed = dashed
    }
}

/// One chart panel: title, axis labels and its series.
public struct PlotPanel: Sendable {
    /// Panel title.
    public var title: String
    /// x-axis label.
    public var xLabel: String
    /// y-axis label.
    public var yLabel: String
    /// Curves drawn in this panel.
    public var series: [PlotSeries]
    /// Fixed y range (e.g. 0...100 for accuracy), or nil to fit the data.
    public var yRange: ClosedRange<Double>?

    /// Creates a panel.
    public init(title: String, xLabel: String, yLabel: String, series: [PlotSeries], yRange: ClosedRange<Double>? = nil) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series; self.yRange = yRange
    }
}

/// About `count` round tick values covering `range` (1, 2, 5 × 10^k steps).
public func niceTicks(_ range: ClosedRange<Double>, count: Int = 5) -> [Double] {
    let span = range.upperBound - range.lowerBound
    guard span > 0, span.isFinite else { return [range.lowerBound] }
    let rough = span / Double(max(1, count))
    let magnitude = pow(10, floor(log10(rough)))
    let step = [1.0, 2.0, 5.0, 10.0].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude
    var ticks: [Double] = []
    var value = ceil(range.lowerBound / step - 1e-9) * step
    while value <= range.upperBound + step * 1e-9 {
        ticks.append(abs(value) < step * 1e-9 ? 0 : value)
        value += step
    }
    return ticks
}

private func escapeXML(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
}

private func tickLabel(_ value: Double) -> String {
    if value == value.rounded() && abs(value) < 1e6 { return String(Int(value)) }
    return String(format: "%g", value)
}

/// Renders panels side by side as a standalone SVG document (axes, ticks, labels, legend; one polyline per series).
public func renderSVG(panels: [PlotPanel], title: String? = nil, panelWidth: Double = 480, panelHeight: Double = 340) -> String {
    let marginLeft = 64.0, marginRight = 16.0, marginTop = 40.0, marginBottom = 52.0
    let titleHeight = title == nil ? 0.0 : 28.0
    let width = panelWidth * Double(max(1, panels.count)), height = panelHeight + titleHeight
    var svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
    svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"white\"/>\n"
    if let title {
        svg += "<text x=\"\(f(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">\(escapeXML(title))</text>\n"
    }
    for (index, panel) in panels.enumerated() {
        let originX = Double(index) * panelWidth, originY = titleHeight
        let left = originX + marginLeft, right = originX + panelWidth - marginRight
        let top = originY + marginTop, bottom = originY + panelHeight - marginBottom
        let finite = panel.series.flatMap { $0.points }.filter { $0.x.isFinite && $0.y.isFinite }
        var xMin = finite.map(\.x).min() ?? 0, xMax = finite.map(\.x).max() ?? 1
        if xMax <= xMin { xMin -= 0.5; xMax += 0.5 }
        var yMin = finite.map(\.y).min() ?? 0, yMax = finite.map(\.y).max() ?? 1
        if let fixed = panel.yRange { yMin = fixed.lowerBound; yMax = fixed.upperBound }
        if yMax <= yMin { yMin -= 0.5; yMax += 0.5 }
        if panel.yRange == nil { let pad = (yMax - yMin) * 0.05; yMin -= pad; yMax += pad; if yMin < 0 && (finite.map(\.y).min() ?? 0) >= 0 { yMin = 0 } }
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - yMin) / (yMax - yMin) * (bottom - top) }

        svg += "<g>\n<text x=\"\(f((left + right) / 2))\" y=\"\(f(originY + 24))\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(escapeXML(panel.title))</text>\n"
        // Grid, ticks and tick labels.
        for tick in niceTicks(xMin...xMax) {
            let x = px(tick)
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(bottom))\" stroke=\"#e5e5e5\"/>\n"
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(bottom))\" x2=\"\(f(x))\" y2=\"\(f(bottom + 5))\" stroke=\"black\"/>\n"
            svg += "<text x=\"\(f(x))\" y=\"\(f(bottom + 18))\" text-anchor=\"middle\">\(tickLabel(tick))</text>\n"
        }
        for tick in niceTicks(yMin...yMax) {
            let y = py(tick)
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(right))\" y2=\"\(f(y))\" stroke=\"#e5e5e5\"/>\n"
            svg += "<line x1=\"\(f(left - 5))\" y1=\"\(f(y))\" x2=\"\(f(left))\" y2=\"\(f(y))\" stroke=\"black\"/>\n"
            svg += "<text x=\"\(f(left - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(tickLabel(tick))</text>\n"
        }
        // Axes and labels.
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(right))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"black\"/>\n"
        svg += "<text x=\"\(f((left + right) / 2))\" y=\"\(f(bottom + 38))\" text-anchor=\"middle\">\(escapeXML(panel.xLabel))</text>\n"
        let labelY = (top + bottom) / 2, labelX = originX + 16
        svg += "<text x=\"\(f(labelX))\" y=\"\(f(labelY))\" text-anchor=\"middle\" transform=\"rotate(-90 \(f(labelX)) \(f(labelY)))\">\(escapeXML(panel.yLabel))</text>\n"
        // Curves.
        for series in panel.series {
            let points = series.points.filter { $0.x.isFinite && $0.y.isFinite }
                .map { "\(f(px($0.x))),\(f(py(min(max($0.y, yMin), yMax))))" }.joined(separator: " ")
            let dash = series.dashed ? " stroke-dasharray=\"6 4\"" : ""
            svg += "<polyline fill=\"none\" stroke=\"\(escapeXML(series.color))\" stroke-width=\"2\"\(dash) points=\"\(points)\"><title>\(escapeXML(series.name))</title></polyline>\n"
        }
        // Legend, top right inside the plot area.
        let legendWidth = 12.0 + 7.0 * Double(panel.series.map(\.name.count).max() ?? 0) + 30
        let legendX = right - legendWidth - 6, legendY = top + 6
        if !panel.series.isEmpty {
            svg += "<rect x=\"\(f(legendX))\" y=\"\(f(legendY))\" width=\"\(f(legendWidth))\" height=\"\(f(Double(panel.series.count) * 18 + 6))\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#999999\"/>\n"
        }
        for (row, series) in panel.series.enumerated() {
            let y = legendY + 14 + Double(row) * 18
            let dash = series.dashed ? " stroke-dasharray=\"6 4\"" : ""
            svg += "<line x1=\"\(f(legendX + 6))\" y1=\"\(f(y - 4))\" x2=\"\(f(legendX + 30))\" y2=\"\(f(y - 4))\" stroke=\"\(escapeXML(series.color))\" stroke-width=\"2\"\(dash)/>\n"
            svg += "<text x=\"\(f(legendX + 36))\" y=\"\(f(y))\">\(escapeXML(series.name))</text>\n"
        }
        svg += "</g>\n"
    }
    svg += "</svg>\n"
    return svg
}

/// Loss and accuracy curves (train solid, test dashed) from metrics records, as an SVG document.
public func renderTrainingSVG(_ records: [EpochMetrics], title: String? = nil) -> String {
    let x = records.map { Double($0.epoch) }
    var loss = [PlotSeries(name: "train loss", color: "#1f77b4", points: Array(zip(x, records.map(\.trainLoss))).map { (x: $0.0, y: $0.1) })]
    var accuracy = [PlotSeries(name: "train accuracy", color: "#1f77b4", points: Array(zip(x, records.map { $0.trainAccuracy * 100 })).map { (x: $0.0, y: $0.1) })]
    let tested = records.filter { $0.testLoss != nil || $0.testAccuracy != nil }
    if !tested.isEmpty {
        loss.append(PlotSeries(name: "test loss", color: "#d62728", points: tested.compactMap { r in r.testLoss.map { (x: Double(r.epoch), y: $0) } }, dashed: true))
        accuracy.append(PlotSeries(name: "test accuracy", color: "#d62728", points: tested.compactMap { r in r.testAccuracy.map { (x: Double(r.epoch), y: $0 * 100) } }, dashed: true))
    }
    return renderSVG(panels: [PlotPanel(title: "Loss", xLabel: "epoch", yLabel: "cross-entropy loss", series: loss),
                              PlotPanel(title: "Accuracy", xLabel: "epoch", yLabel: "accuracy (%)", series: accuracy, yRange: 0...100)],
                     title: title)
}

/// Writes the loss/accuracy SVG for `records` to `path` atomically.
public func writeTrainingPlot(_ records: [EpochMetrics], to path: String, title: String? = nil) throws {
    try writeTextAtomically(renderTrainingSVG(records, title: title), to: path)
}

/// Formats a coordinate with at most two decimals.
private func f(_ value: Double) -> String {
    let rounded = (value * 100).rounded() / 100
    return rounded == rounded.rounded() ? String(Int(rounded)) : String(format: "%.2f", rounded)
}
