import DSLIR

/// `dsl draw`: a checked network as an SVG picture or Graphviz dot (README, "Drawing a network").
public enum NetworkDrawing {
    /// The output formats.
    public enum Format: String, CaseIterable, Sendable {
        case svg, dot
    }

    /// The most boxes a drawing may have (an SVG of 200,000 boxes is about 100 MB); beyond it
    /// `--depth` must collapse modules.
    public static let maxBoxes = 200_000

    /// Why a network was not drawn.
    public struct TooLarge: Error, CustomStringConvertible {
        /// Boxes the drawing would have.
        public var boxes: Int
        public var description: String {
            "the drawing would have \(grouped(boxes)) boxes (at most \(grouped(NetworkDrawing.maxBoxes))); collapse modules with --depth"
        }
    }

    /// The drawing of a checked network in a format, its labelled merges framed; nil when the
    /// spec has errors (no graph).
    public static func render(_ checked: CheckedNetwork, format: Format, depth: Int = Int.max) throws -> String? {
        guard let g = checked.graph, let cost = checked.cost, !checked.diagnostics.hasErrors else { return nil }
        return try render(g, cost: cost, format: format, depth: depth, labelledMerges: DrawingModel.labelledMerges(in: checked.spec, graph: g))
    }

    /// The drawing of a graph in a format. `depth`: modules at nesting level `depth` and deeper
    /// are collapsed to one box each; `labelledMerges`: merges to frame
    /// (`DrawingModel.labelledMerges(in:graph:)`).
    public static func render(_ graph: Graph, cost: NetworkCost, format: Format, depth: Int = Int.max,
                              labelledMerges: Set<Int> = []) throws -> String {
        let model = DrawingModel(graph: graph, cost: cost, depth: depth, labelledMerges: labelledMerges)
        guard model.boxes.count <= maxBoxes else { throw TooLarge(boxes: model.boxes.count) }
        switch format {
        case .svg: return SVGWriter.svg(model, DrawingLayout(model))
        case .dot: return DotWriter.dot(model)
        }
    }
}
