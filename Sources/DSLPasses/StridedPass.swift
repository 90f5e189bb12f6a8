import DSLIR
import DSLSyntax

/// Strided-CNN: removes each max-pooling layer and gives the convolution before it the
/// pooling's stride, when that keeps the output size.
public struct StridedPass: PoolingPass {
    public let name = "strided"
    public let summary = "remove each max-pooling; the convolution before it takes its stride (Strided-CNN)"
    public init() {}

    public func apply(_ spec: SpecFile, skipping: Set<SourceLocation>) -> PassResult {
        let a = Analysis(spec)
        var result = PassResult(spec: spec)
        result.diagnostics = moduleWarnings(spec)
        let lines = spec.statements
        result.spec.statements = rewriteLists(lines) { list, prefix, context in
            var out: [Statement] = []
            var modified = Set<Int>()   // indices in `out` of convolutions already given a stride
            var carry: [String] = []    // comments of a removed pooling, for the next statement
            for var s in list {
                if !carry.isEmpty { s.leadingComments = carry + s.leadingComments; carry = [] }
                guard s.isMaxPool, !skipping.contains(s.location) else { out.append(s); continue }
                // The convolution before it, looking past activations and batch norm.
                var j = out.count - 1
                while j >= 0, let k = out[j].layerKind, k == "leaky" || k == "bn" || Parser.activationNames.contains(k) { j -= 1 }
                guard j >= 0, out[j].layerKind == "conv", !modified.contains(j) else {
                    let what = j < 0 ? "nothing (it is the first statement \(context.described))"
                        : modified.contains(j) ? "a convolution that already took the stride of another pooling"
                        : out[j].described
                    result.diagnostics.append(passWarning(name, "no convolution directly before the max-pooling to take its stride; found \(what)", at: s.location))
                    out.append(s); continue
                }
                let (pf, problem) = facts(s, a, context)
                guard let pf else { result.diagnostics.append(problem!); out.append(s); continue }
                let conv = out[j]
                guard case .layer(_, let words, var args, let opts) = conv.kind, args.count == 3 else { out.append(s); continue }
                // A stride written as a size (`2x1`) is not multiplied here.
                if case .dims = args[1] {
                    result.diagnostics.append(passWarning(name, "the convolution at line \(conv.location.line) writes its stride as a size ('\(SpecPrinter.expr(args[1]))'); this pass only multiplies a stride written as one number", at: s.location))
                    out.append(s); continue
                }
                let convOps = a.ops(conv.location)
                let convIn = a.inputShapes(conv.location)
                guard convOps.count == pf.attributes.count, convIn.count == convOps.count else {
                    result.diagnostics.append(passWarning(name, "the convolution before the max-pooling is used a different number of times than the pooling", at: s.location))
                    out.append(s); continue
                }
                // New stride per instance; the output size must stay what the pooling gave.
                var strides: [Int] = []
                var failure: String?
                for (i, op) in convOps.enumerated() {
                    guard case .conv(let c) = op else { failure = "the layer before it is not a convolution"; break }
                    // One stride for both axes, one padding for all sides: what this pass rewrites.
                    guard let sq = c.square else {
                        failure = "the convolution at line \(conv.location.line) is rectangular, dilated, grouped or asymmetrically padded; this pass only gives its stride to a square ungrouped convolution"
                        break
                    }
                    let ns = sq.stride * pf.attributes[i].stride
                    let x = convIn[i]
                    let h = convOutput(x.height, kernel: sq.kernel, stride: ns, pad: sq.pad)
                    let w = convOutput(x.width, kernel: sq.kernel, stride: ns, pad: sq.pad)
                    let want = pf.outputs[i]
                    if h != want.height || w != want.width {
                        failure = "the convolution at line \(conv.location.line) with stride \(ns) and padding \(sq.pad) would give \(h ?? 0)x\(w ?? 0) where the pooling gives \(want.height)x\(want.width); its padding would change the output size"
                        break
                    }
                    strides.append(ns)
                }
                if let failure { result.diagnostics.append(passWarning(name, failure, at: s.location)); out.append(s); continue }
                let poolStride = pf.attributes[0].stride
                if let v = literalValue(args[1]), Double(Int(v)) == v {
                    args[1] = literal(Int(v) * poolStride, at: args[1].location)
                } else {
                    args[1] = .binary("*", args[1], literal(poolStride, at: args[1].location), args[1].location)
                }
                var newConv = conv
                newConv.location = conv.location.through(s.location)   // spans the removed pool, for the printer's blank lines
                newConv.kind = .layer(kind: "conv", words: words, arguments: args, options: opts)
                newConv.trailingComment = passComment("strided: stride \(SpecPrinter.expr(args[1], spaced: false)), from the pool\(s.label.map { " '\($0)'" } ?? "") at line \(s.location.line) (removed)", replacing: [conv.trailingComment, s.trailingComment])
                let region = Array(out[j...]).map(\.location) + [s.location]
                let beforeText = (Array(out[j...]) + [s]).map { SpecPrinter.line($0) }.joined(separator: "; ")
                out[j] = newConv
                modified.insert(j)
                // The pool's comments above it move to whatever follows.
                carry = s.leadingComments
                let afterRegion = (j..<out.count).map { prefix + [$0] }
                result.changes.append(Change(pass: name, location: s.location, before: beforeText,
                                             after: (out[j...]).map { SpecPrinter.line($0) }.joined(separator: "; "),
                                             beforeRegion: region, afterRegion: afterRegion))
            }
            if !carry.isEmpty, let last = modified.max() { out[last].leadingComments += carry }
            list = out
        }
        return result
    }
}
