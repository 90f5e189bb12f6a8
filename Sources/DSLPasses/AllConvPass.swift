import DSLIR
import DSLSyntax

/// All-CNN: replaces each max-pooling layer by a convolution `conv K S C` with the pooling's
/// window and stride, as many filters as its input has channels, padding chosen so the output
/// size is the pooling's, and the activation of the convolutions around it (ReLU by default).
/// Idempotent: its output has no max-pooling left to replace.
public struct AllConvPass: PoolingPass {
    public let name = "all-conv"
    public let summary = "replace each max-pooling by a strided convolution of the same window, stride and width (All-CNN)"
    public init() {}

    public func apply(_ spec: SpecFile, skipping: Set<SourceLocation>) -> PassResult {
        let a = Analysis(spec)
        var result = PassResult(spec: spec)
        result.diagnostics = moduleWarnings(spec)
        let convs = convStatements(spec.statements)
        result.spec.statements = rewriteLists(spec.statements) { list, prefix, context in
            var out: [Statement] = []
            for (index, s) in list.enumerated() {
                guard s.isMaxPool, !skipping.contains(s.location) else { out.append(s); continue }
                let (pf, problem) = facts(s, a, context)
                guard let pf else { result.diagnostics.append(problem!); out.append(s); continue }
                // In a block called with different widths, the width is an expression (`c`).
                guard let width = inputWidth(pf, list, at: index),
                      let k = pf.common({ pf.attributes[$0].kernel }), let st = pf.common({ pf.attributes[$0].stride }) else {
                    let cs = Set(pf.inputs.map(\.channels)).sorted().map(String.init).joined(separator: ", ")
                    result.diagnostics.append(passWarning(name, "the max-pooling \(context.described) sees different inputs in its \(pf.attributes.count) uses (channels \(cs)), and no convolution before it in the same list gives their width as an expression; one convolution cannot replace it", at: s.location))
                    out.append(s); continue
                }
                // Padding: the pooling's own, then 'same', then any other, that keeps every output size.
                let candidates = [pf.attributes[0].pad, (k - 1) / 2] + Array(0..<k)
                let pad = candidates.first { p in
                    pf.inputs.indices.allSatisfy { i in
                        convOutput(pf.inputs[i].height, kernel: k, stride: st, pad: p) == pf.outputs[i].height
                            && convOutput(pf.inputs[i].width, kernel: k, stride: st, pad: p) == pf.outputs[i].width
                    }
                }
                guard let pad else {
                    let sizes = pf.inputs.indices.map { "\(pf.outputs[$0].height)x\(pf.outputs[$0].width) from \(pf.inputs[$0].height)x\(pf.inputs[$0].width)" }
                    result.diagnostics.append(passWarning(name, "no padding of a \(k)x\(k) stride-\(st) convolution gives the pooling's output size\(sizes.count > 1 ? "s in all its uses" : "") (\(sizes.joined(separator: ", ")))", at: s.location))
                    out.append(s); continue
                }
                var options = neighbourOptions(list, at: index, all: convs)
                if pad != (k - 1) / 2 {
                    options.insert(LayerOption(name: "pad", nameLocation: s.location, value: literal(pad, at: s.location)), at: 0)
                }
                var conv = Statement.conv(k, st, width: width, options: options, at: s.location)
                conv.label = s.label
                conv.labelLocation = s.labelLocation
                conv.leadingComments = s.leadingComments
                conv.trailingComment = passComment("all-conv: replaces pool at line \(s.location.line)", replacing: [s.trailingComment])
                out.append(conv)
                result.changes.append(Change(pass: name, location: s.location, before: SpecPrinter.line(s), after: SpecPrinter.line(conv),
                                             beforeRegion: [s.location], afterRegion: [prefix + [out.count - 1]]))
            }
            list = out
        }
        return result
    }
}
