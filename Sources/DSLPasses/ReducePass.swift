import Foundation
import DSLIR
import DSLSyntax

/// Reduction widths as fractions of a layer's input channels.
public struct ReductionRatios: Equatable, Sendable {
    /// For convolutions with kernels below 5 (3x3) and inception's #3x3 reduce.
    public var r3: Double
    /// For kernels of 5 and more and inception's #5x5 reduce.
    public var r5: Double
    /// For inception pool projections.
    public var rp: Double

    /// `r5` defaults to `r3`, `rp` to `r5`.
    public init(r3: Double, r5: Double? = nil, rp: Double? = nil) {
        self.r3 = r3; self.r5 = r5 ?? r3; self.rp = rp ?? r5 ?? r3
    }

    /// Parses `R`, `R3,R5` or `R3,R5,RP` (each in (0, 1]).
    public static func parse(_ text: String) -> ReductionRatios? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard (1...3).contains(parts.count), parts.allSatisfy({ $0 != nil && $0! > 0 && $0! <= 1 }) else { return nil }
        let v = parts.map { $0! }
        return ReductionRatios(r3: v[0], r5: v.count > 1 ? v[1] : nil, rp: v.count > 2 ? v[2] : nil)
    }

    func scaled(_ t: Double) -> ReductionRatios { ReductionRatios(r3: r3 * t, r5: r5 * t, rp: rp * t) }
    var largest: Double { max(r3, r5, rp) }
}

/// How `reduce` picks widths.
public enum ReductionPolicy: Sendable {
    /// width = round(ratio × input channels), rounded half to even, at least 1.
    case ratio(ReductionRatios)
    /// The widest reductions whose network fits in this many MACs: the ratios (default all 1)
    /// scaled by a common factor found by bisection over 256 steps.
    case budget(Int, ReductionRatios?)
}

/// GoogLeNet's dimension reductions: a 1x1 convolution in front of each convolution with a
/// kernel above 1 whose input is wider than the reduction (plain stacks), the 0 reduce columns of
/// inception modules made nonzero, and a pool projection where an inception's is 0.
///
/// Widths are `round(R × input channels)` with R by kernel: `r3` below 5x5, `r5` from 5x5 up,
/// `rp` for pool projections. GoogLeNet's inception (3a) on 192 channels uses 96 = 0.5 × 192 and
/// 16 ≈ 0.0833 × 192: `--ratio 0.5,0.0833`. A pool projection changes the module's width by
/// design, so its change is verified on the spatial size only. A convolution that reads the
/// network input is not reduced (a 1x1 over the image's channels saves nothing; a note says so). Not idempotent by nature (a
/// second run would reduce the reductions); it skips convolutions already preceded by a 1x1.
public struct ReducePass: RewritePass {
    public let name = "reduce"
    public let summary = "insert 1x1 reductions before 3x3/5x5 convolutions and in inception modules (--ratio or --budget)"
    public var policy: ReductionPolicy
    public init(policy: ReductionPolicy) { self.policy = policy }

    /// Steps of the budget search (ratios k/steps of the largest base ratio).
    public static let budgetSteps = 256

    public func apply(_ spec: SpecFile) -> PassResult {
        let a = Analysis(spec)
        switch policy {
        case .ratio(let r):
            var result = rewrite(spec, a, r)
            result.summary.append("reduce: widths = round(R x input channels): R = \(fmt(r.r3)) for kernels below 5, \(fmt(r.r5)) for 5 and up, \(fmt(r.rp)) for pool projections")
            return result
        case .budget(let budget, let given):
            let base = given ?? ReductionRatios(r3: 1)
            func attempt(_ k: Int) -> (PassResult, Int?) {
                let r = base.scaled(Double(k) / Double(ReducePass.budgetSteps) / base.largest)
                let res = rewrite(spec, a, r, quiet: true)
                return (res, Analysis(res.spec).cost?.macs)
            }
            let widest = attempt(ReducePass.budgetSteps)
            if widest.0.changes.isEmpty {
                var same = rewrite(spec, a, base)
                let macs = a.cost?.macs ?? 0
                if macs > budget {
                    same.diagnostics.append(.error("reduce: nothing in the network can be reduced, and it needs \(grouped(macs)) MACs, over the budget of \(grouped(budget))", at: spec.statements.first?.location ?? .start))
                } else {
                    same.summary.append("reduce: nothing to reduce; the network needs \(grouped(macs)) MACs, within the budget of \(grouped(budget))")
                }
                return same
            }
            var lo = 0, hi = ReducePass.budgetSteps   // invariant: lo fits (0: none yet), hi+1 does not
            var macsAt: [Int: Int] = [:]
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                let m = attempt(mid).1
                macsAt[mid] = m
                if let m, m <= budget { lo = mid } else { hi = mid - 1 }
            }
            guard lo >= 1 else {
                var failed = PassResult(spec: spec)
                let m = macsAt[1] ?? attempt(1).1
                failed.diagnostics.append(.error("reduce: no reduction fits the budget of \(grouped(budget)) MACs; the narrowest step (ratio \(fmt(base.scaled(1.0 / Double(ReducePass.budgetSteps) / base.largest).r3))) still needs \(m.map(grouped) ?? "?") MACs", at: spec.statements.first?.location ?? .start))
                return failed
            }
            let r = base.scaled(Double(lo) / Double(ReducePass.budgetSteps) / base.largest)
            var result = rewrite(spec, a, r)
            let macs = Analysis(result.spec).cost?.macs ?? 0
            var why = "reduce: budget \(grouped(budget)) MACs: ratios \(fmt(r.r3)) (kernels below 5), \(fmt(r.r5)) (5 and up), \(fmt(r.rp)) (pool projections), step \(lo)/\(ReducePass.budgetSteps) of the \(given == nil ? "common ratio" : "given ratios"), are the widest that fit: \(grouped(macs)) MACs"
            if lo < ReducePass.budgetSteps {
                let next = macsAt[lo + 1] ?? attempt(lo + 1).1
                why += "; the next step would need \(next.map(grouped) ?? "?") MACs"
            }
            result.summary.append(why)
            return result
        }
    }

    private func fmt(_ v: Double) -> String {
        let s = String(format: "%.4f", v)
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    static func width(_ ratio: Double, _ channels: Int) -> Int { max(1, Int(roundHalfEven(ratio * Double(channels)))) }

    /// The rewrite with fixed ratios (`quiet`: no notes, for the budget search).
    func rewrite(_ spec: SpecFile, _ a: Analysis, _ r: ReductionRatios, quiet: Bool = false) -> PassResult {
        var result = PassResult(spec: spec)
        guard a.graph != nil else { return result }
        result.spec.statements = rewriteLists(spec.statements) { list, prefix, context in
            var out: [Statement] = []
            for s in list {
                switch s.layerKind {
                case "conv":
                    let convs = a.ops(s.location).compactMap { op -> ConvAttributes? in if case .conv(let c) = op { return c }; return nil }
                    guard let first = convs.first, first.kernel > 1 else {
                        if convs.isEmpty && !quiet { result.diagnostics.append(passWarning(name, "this convolution \(context.described) is never elaborated (its block is never called)", at: s.location)) }
                        out.append(s); continue
                    }
                    let inputs = a.inputShapes(s.location)
                    guard Set(inputs.map(\.channels)).count == 1, Set(convs.map(\.kernel)).count == 1 else {
                        if !quiet { result.diagnostics.append(passWarning(name, "the convolution \(context.described) sees different inputs in its \(convs.count) uses (channels \(Set(inputs.map(\.channels)).sorted().map(String.init).joined(separator: ", "))); one reduction width cannot serve them all", at: s.location)) }
                        out.append(s); continue
                    }
                    if let prev = out.last, prev.layerKind == "conv", a.ops(prev.location).contains(where: { if case .conv(let c) = $0 { return c.kernel == 1 }; return false }) {
                        if !quiet { result.diagnostics.append(passNote(name, "not reduced: the convolution is already preceded by a 1x1 convolution", at: s.location)) }
                        out.append(s); continue
                    }
                    if let g = a.graph, a.nodes(s.location).contains(where: { g.nodes[$0].inputs == [0] }) {
                        if !quiet { result.diagnostics.append(passNote(name, "not reduced: the convolution reads the network input (its \(inputs[0].channels) channels are the image, not a wide feature map)", at: s.location)) }
                        out.append(s); continue
                    }
                    let cin = inputs[0].channels, k = first.kernel
                    let ratio = k >= 5 ? r.r5 : r.r3
                    let w = ReducePass.width(ratio, cin)
                    guard w < cin else {
                        if !quiet { result.diagnostics.append(passNote(name, "not reduced: its input has \(cin) channels, no more than the reduction width \(w) (\(fmt(ratio)) x \(cin))", at: s.location)) }
                        out.append(s); continue
                    }
                    var reduction = Statement.layer("conv", [1, 1, w], options: convStyleOptions(s.options), at: s.location)
                    reduction.leadingComments = s.leadingComments
                    reduction.trailingComment = " reduce: 1x1 reduction \(cin) -> \(w) before the \(k)x\(k) conv at line \(s.location.line)"
                    var target = s
                    target.leadingComments = []
                    out.append(reduction); out.append(target)
                    result.changes.append(Change(pass: name, location: s.location, before: SpecPrinter.line(s),
                                                 after: SpecPrinter.line(reduction) + "; " + SpecPrinter.line(s),
                                                 note: "width \(w) = round(\(fmt(ratio)) x \(cin))",
                                                 beforeRegion: [s.location], afterRegion: [prefix + [out.count - 2], prefix + [out.count - 1]]))
                case "inception":
                    guard case .layer(let kind, let words, var args, let opts) = s.kind, args.count == 6 else { out.append(s); continue }
                    let inputs = a.inputShapes(s.location)
                    guard let cin = inputs.first?.channels, Set(inputs.map(\.channels)).count == 1 else {
                        if !quiet { result.diagnostics.append(passWarning(name, inputs.isEmpty ? "this inception module \(context.described) is never elaborated" : "the inception module \(context.described) sees different input widths in its uses; one reduction width cannot serve them all", at: s.location)) }
                        out.append(s); continue
                    }
                    var notes: [String] = []
                    var spatialOnly = false
                    let columns: [(Int, Int?, Double, String)] = [(1, 2, r.r3, "#3x3 reduce"), (3, 4, r.r5, "#5x5 reduce"), (5, nil, r.rp, "pool proj")]
                    for (col, conv, ratio, label) in columns {
                        guard let v = literalValue(args[col]) else {
                            if !quiet { result.diagnostics.append(passWarning(name, "the \(label) column of this inception module is an expression; it is not rewritten", at: args[col].location)) }
                            continue
                        }
                        guard v == 0 else { continue }
                        if let conv, literalValue(args[conv]) == 0 { continue }
                        let w = ReducePass.width(ratio, cin)
                        args[col] = literal(w, at: args[col].location)
                        notes.append("\(label) 0 -> \(w) = round(\(fmt(ratio)) x \(cin))")
                        if conv == nil { spatialOnly = true }
                    }
                    if notes.isEmpty { out.append(s); continue }
                    var t = s
                    t.kind = .layer(kind: kind, words: words, arguments: args, options: opts)
                    t.trailingComment = passComment("reduce: " + notes.map { $0.components(separatedBy: " = ").first! }.joined(separator: ", "), replacing: [s.trailingComment])
                    out.append(t)
                    result.changes.append(Change(pass: name, location: s.location, before: SpecPrinter.line(s), after: SpecPrinter.line(t),
                                                 note: notes.joined(separator: "; ") + (spatialOnly ? "; the pool projection changes the module's width" : ""),
                                                 beforeRegion: [s.location], afterRegion: [prefix + [out.count - 1]], spatialOnly: spatialOnly))
                case "pyramid":
                    // Its units are folded; a bottleneck unit already reduces with its first 1x1.
                    if !quiet {
                        if s.options.contains(where: { $0.name == "bottleneck" }) {
                            result.diagnostics.append(passNote(name, "not reduced: the pyramid's bottleneck units already put a 1x1 convolution before each 3x3", at: s.location))
                        } else {
                            result.diagnostics.append(passWarning(name, "the 3x3 convolutions inside the pyramid module are part of the folded module and cannot be reduced", at: s.location))
                        }
                    }
                    out.append(s)
                default:
                    out.append(s)
                }
            }
            list = out
        }
        return result
    }
}

