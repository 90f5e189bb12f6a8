import DSLIR
import DSLSyntax

/// Network-in-Network head: replaces a fully connected classifier at the end of the network
/// (`fc N`, optionally after `gap` and/or `dropout`, optionally followed by `softmax`) with
/// `conv 1 1 N act=linear` followed by `gap`. Dropout stays before the classifier; a `gap`
/// before the `fc` is dropped (the new `gap` comes after the convolution).
public struct GapHeadPass: SkippingRewritePass {
    public let name = "gap-head"
    public let summary = "replace a final fully connected classifier by a 1x1 convolution and global average pooling (NiN head)"
    public init() {}

    public func apply(_ spec: SpecFile, skipping: Set<SourceLocation>) -> PassResult {
        var result = PassResult(spec: spec)
        var list = spec.statements
        var f = list.count - 1
        while f >= 0, list[f].layerKind == "softmax" { f -= 1 }
        guard f >= 0, list[f].layerKind == "fc", case .layer(_, _, let args, let opts) = list[f].kind, args.count == 1 else {
            let last = f >= 0 ? list[f] : spec.statements.last
            result.diagnostics.append(passWarning(name, "the network does not end in a fully connected classifier at the top level (it ends in \(last?.described ?? "nothing"))", at: last?.location ?? .start))
            return result
        }
        let fc = list[f]
        if skipping.contains(fc.location) { return result }
        // Dropout and gap directly before the fc.
        var start = f
        var keep: [Statement] = []
        var removedGap = false
        while start - 1 >= 0, let k = list[start - 1].layerKind, k == "dropout" || (k == "gap" && !removedGap) {
            start -= 1
            if k == "gap" { removedGap = true } else { keep.insert(list[start], at: 0) }
        }
        var options = opts.filter { activationOptionNames.contains($0.name) || ["nobias", "bias"].contains($0.name) }
        if !options.contains(where: { activationOptionNames.contains($0.name) && $0.name != "slope" }) {
            options.append(LayerOption(name: "act", nameLocation: fc.location, value: .name("linear", fc.location)))
        }
        var conv = Statement(label: fc.label, labelLocation: fc.labelLocation, kind: .layer(kind: "conv", words: [], arguments: [literal(1, at: fc.location), literal(1, at: fc.location), args[0]], options: options), keywordLocation: fc.location, location: fc.location)
        conv.leadingComments = fc.leadingComments
        conv.trailingComment = passComment("gap-head: replaces fc at line \(fc.location.line)", replacing: [fc.trailingComment])
        var gap = Statement.layer("gap", [], at: fc.location)
        if removedGap, let old = list[start...f].first(where: { $0.layerKind == "gap" }) {
            gap.leadingComments = old.leadingComments
            if let c = old.trailingComment { gap.leadingComments.append(c) }
        }
        let replaced = Array(list[start...f])
        // The first statement kept spans what it replaces, so no blank line opens where a gap was.
        if removedGap, !keep.isEmpty { keep[0].location = list[start].location.through(keep[0].location) }
        let replacement = keep + [conv, gap]
        list.replaceSubrange(start...f, with: replacement)
        result.spec.statements = list
        result.changes.append(Change(pass: name, location: fc.location, before: replaced.map { SpecPrinter.line($0) }.joined(separator: "; "),
                                     after: replacement.map { SpecPrinter.line($0) }.joined(separator: "; "),
                                     beforeRegion: replaced.map(\.location), afterRegion: (start..<(start + replacement.count)).map { [$0] }))
        return result
    }
}
