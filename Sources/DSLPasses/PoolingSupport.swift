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

    /// The activation options of the nearest convolution before index `i` in `list`.
    func neighbourActivation(_ list: [Statement], before i: Int) -> [LayerOption] {
        for j in stride(from: i - 1, through: 0, by: -1) where list[j].layerKind == "conv" {
            return activationOptions(list[j].options)
        }
        return []
    }
}

