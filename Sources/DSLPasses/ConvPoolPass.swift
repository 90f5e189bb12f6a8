import DSLIR
import DSLSyntax

/// ConvPool-CNN: inserts before each max-pooling a dense convolution `conv K 1 C` with the
/// pooling's window, stride 1, 'same' padding and as many filters as channels. Idempotent: a
/// pooling directly after a convolution this pass inserted (recognised by the trailing comment
/// it writes, `# convpool: ...`) is left alone.
public struct ConvPoolPass: PoolingPass {
    public let name = "convpool"
    public let summary = "insert a dense 'same' convolution with the pooling's window before each max-pooling (ConvPool-CNN)"
    public init() {}

    /// The marker the pass writes on the convolutions it inserts.
    static let marker = " convpool:"

    public func apply(_ spec: SpecFile, skipping: Set<SourceLocation>) -> PassResult {
        let a = Analysis(spec)
        var result = PassResult(spec: spec)
        result.diagnostics = moduleWarnings(spec)
        let convs = convStatements(spec.statements)
        result.spec.statements = rewriteLists(spec.statements) { list, prefix, context in
            var out: [Statement] = []
            for (index, s) in list.enumerated() {
                guard s.isMaxPool, !skipping.contains(s.location) else { out.append(s); continue }
                if let prev = out.last, prev.layerKind == "conv", prev.trailingComment?.hasPrefix(ConvPoolPass.marker) == true {
                    result.diagnostics.append(passNote(name, "already applied here (the convolution before the max-pooling was inserted by convpool)", at: s.location))
                    out.append(s); continue
                }
                let (pf, problem) = facts(s, a, context)
                guard let pf else { result.diagnostics.append(problem!); out.append(s); continue }
                guard let width = inputWidth(pf, list, at: index), let k = pf.common({ pf.attributes[$0].kernel }) else {
                    let cs = Set(pf.inputs.map(\.channels)).sorted().map(String.init).joined(separator: ", ")
                    result.diagnostics.append(passWarning(name, "the max-pooling \(context.described) sees different inputs in its \(pf.attributes.count) uses (channels \(cs)), and no convolution before it in the same list gives their width as an expression; one convolution cannot serve them all", at: s.location))
                    out.append(s); continue
                }
                guard k % 2 == 1 else {
                    result.diagnostics.append(passWarning(name, "the pooling window \(k) is even, so a \(k)x\(k) convolution cannot keep the size ('same' padding needs an odd kernel)", at: s.location))
                    out.append(s); continue
                }
                var conv = Statement.conv(k, 1, width: width, options: neighbourOptions(list, at: index, all: convs), at: s.location)
                conv.leadingComments = s.leadingComments
                conv.trailingComment = ConvPoolPass.marker + " inserted before pool at line \(s.location.line)"
                var pool = s
                pool.leadingComments = []
                out.append(conv)
                out.append(pool)
                result.changes.append(Change(pass: name, location: s.location, before: SpecPrinter.line(s),
                                             after: SpecPrinter.line(conv) + "; " + SpecPrinter.line(s),
                                             beforeRegion: [s.location], afterRegion: [prefix + [out.count - 2], prefix + [out.count - 1]]))
            }
            list = out
        }
        return result
    }
}
