import DSLIR
import DSLSyntax

/// What the graph says about one max-pooling statement, per instance.
struct PoolFacts {
    var attributes: [PoolAttributes]
    var inputs: [Shape]
    var outputs: [Shape]

    init?(_ s: Statement, _ a: Analysis) {
        guard let g = a.graph else { return nil }
        let ids = a.nodes(s.location)
        var attrs: [PoolAttributes] = []
        for i in ids { if case .pool(let p) = g.nodes[i].op { attrs.append(p) } }
        guard !attrs.isEmpty, attrs.count == ids.count else { return nil }
        attributes = attrs
        inputs = a.inputShapes(s.location)
        outputs = a.outputShapes(s.location)
    }

    /// The one value all instances agree on, or nil.
    func common<T: Equatable>(_ f: (Int) -> T) -> T? {
        let first = f(0)
        for i in 1..<attributes.count where f(i) != first { return nil }
        return first
    }
}

/// Shared by the pooling passes: finds each max-pooling statement and warns about the ones it
/// cannot reach (inside inception modules, in blocks that are never called).
protocol PoolingPass: SkippingRewritePass {}

extension PoolingPass {
    /// Warnings for max-pooling the pass cannot rewrite because a module hides it.
    func moduleWarnings(_ spec: SpecFile) -> [Diagnostic] {
        inceptionStatements(spec.statements).map {
            passWarning(name, "the max-pooling inside inception module\($0.label.map { " '\($0)'" } ?? "") is part of the folded module and cannot be rewritten", at: $0.location)
        }
    }

    /// Facts for a pool statement, or a located warning why there are none.
    func facts(_ s: Statement, _ a: Analysis, _ context: ListContext) -> (PoolFacts?, Diagnostic?) {
        guard let f = PoolFacts(s, a) else {
            return (nil, passWarning(name, "the max-pooling \(context.described) is never elaborated (its block is never called), so its shapes are unknown", at: s.location))
        }
        return (f, nil)
    }

    /// The width of a convolution that replaces or precedes the max-pooling at `index` of
    /// `list`: its input width when every use agrees; in a block called with different widths,
    /// that width written as an expression (the filters of the convolution before it in the
    /// list, `c`); nil when neither exists.
    func inputWidth(_ pf: PoolFacts, _ list: [Statement], at index: Int) -> Expr? {
        let at = list[index].location
        if let c = pf.common({ pf.inputs[$0].channels }) { return literal(c, at: at) }
        return ReducePass.channelsExpression(before: Array(list[..<index]))
    }

    /// The options a convolution added at index `i` of `list` takes from its neighbours
    /// (`convStyleOptions`: batch norm, bias, activation, slope): those of the nearest
    /// convolution before it in the list, else after it, else of the last convolution written
    /// before it anywhere in the spec (`all`, every conv statement in source order), so a
    /// network with batch norm gets a convolution with batch norm (also where the neighbour is
    /// followed by a `bn` layer). None (ReLU, bias) without any.
    func neighbourOptions(_ list: [Statement], at i: Int, all: [Statement]) -> [LayerOption] {
        // A convolution followed by a 'bn' layer has batch norm too: the new one gets `bn`.
        func options(_ j: Int) -> [LayerOption] {
            var o = convStyleOptions(list[j].options)
            if j + 1 < list.count, list[j + 1].layerKind == "bn", !o.contains(where: { $0.name == "bn" }) {
                o.removeAll { $0.name == "bias" || $0.name == "nobias" }
                o.insert(LayerOption(name: "bn", nameLocation: list[i].location, value: nil), at: 0)
            }
            return o
        }
        for j in stride(from: i - 1, through: 0, by: -1) where list[j].layerKind == "conv" {
            return options(j)
        }
        for j in (i + 1)..<max(i + 1, list.count) where list[j].layerKind == "conv" {
            return options(j)
        }
        if let before = all.last(where: { $0.location.offset < list[i].location.offset }) {
            return convStyleOptions(before.options)
        }
        return []
    }
}

/// Every `conv` statement of a spec, in source order (block bodies, repeats and branches too).
func convStatements(_ list: [Statement]) -> [Statement] {
    var out: [Statement] = []
    for s in list {
        if s.layerKind == "conv" { out.append(s) }
        for b in StatementPath.bodies(s) { out += convStatements(b) }
    }
    return out.sorted { $0.location.offset < $1.location.offset }
}

extension Statement {
    /// `conv K S WIDTH OPTIONS`, the width an expression, placed at `location`.
    static func conv(_ k: Int, _ s: Int, width: Expr, options: [LayerOption], at location: SourceLocation) -> Statement {
        Statement(label: nil, labelLocation: nil,
                  kind: .layer(kind: "conv", words: [], arguments: [literal(k, at: location), literal(s, at: location), width], options: options),
                  keywordLocation: location, location: location)
    }
}
