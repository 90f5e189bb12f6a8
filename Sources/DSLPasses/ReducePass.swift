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
/// 16 ≈ 0.0833 × 192: `--ratio 0.5,0.0833`. A reduction is made only where it lowers the MACs
/// (a 1x1 to w channels in front of a KxK convolution saves MACs only when w is small enough;
/// a note says where it would not). A convolution that reads the network input (directly or
/// through dropout, activations, batch norm or pooling) is not reduced: a 1x1 over the image's
/// channels saves nothing worth having; a note says so.
///
/// A pool projection changes the module's width by design, so its change is verified on the
/// spatial size only, and the layers after it see the new width: the pass adds the projections
/// (all at once when that works; else, by bisection in the order the data flows, all but the
/// first one whose addition fails, and so on), computes every later width from the new widths,
/// and leaves a projection out (a located warning) where the new width would change the
/// network's output shape or make it fail to elaborate. Not idempotent by nature (a second run
/// would reduce the reductions); it skips convolutions already preceded by a 1x1.
public struct ReducePass: SkippingRewritePass {
    public let name = "reduce"
    public let summary = "insert 1x1 reductions before 3x3/5x5 convolutions and in inception modules (--ratio or --budget)"
    public var policy: ReductionPolicy
    public init(policy: ReductionPolicy) { self.policy = policy }

    /// Steps of the budget search (ratios k/steps of the largest base ratio).
    public static let budgetSteps = 256

    public func apply(_ spec: SpecFile, skipping: Set<SourceLocation>) -> PassResult {
        let a = Analysis(spec)
        switch policy {
        case .ratio(let r):
            var result = rewrite(spec, a, r, skipping: skipping)
            result.summary.append("reduce: widths = round(R x input channels): R = \(fmt(r.r3)) for kernels below 5, \(fmt(r.r5)) for 5 and up, \(fmt(r.rp)) for pool projections")
            return result
        case .budget(let budget, let given):
            return searchBudget(spec, a, budget, given, skipping)
        }
    }

    /// The widest reductions that fit: every width grows with the step, and a reduction is
    /// only made where it saves MACs, so the network's MACs never decrease from one step to the
    /// next and bisection finds the last step that fits.
    func searchBudget(_ spec: SpecFile, _ a: Analysis, _ budget: Int, _ given: ReductionRatios?, _ skipping: Set<SourceLocation>) -> PassResult {
        let base = given ?? ReductionRatios(r3: 1)
        let steps = ReducePass.budgetSteps
        let at = spec.statements.first?.location ?? .start
        let macs0 = a.cost?.macs ?? 0
        func ratios(_ k: Int) -> ReductionRatios { base.scaled(Double(k) / Double(steps) / base.largest) }
        func describe(_ r: ReductionRatios) -> String { "ratios \(fmt(r.r3)) (kernels below 5), \(fmt(r.r5)) (5 and up), \(fmt(r.rp)) (pool projections)" }
        var macsAt: [Int: Int?] = [:]
        func macs(_ k: Int) -> Int? {
            if let m = macsAt[k] { return m }
            let m = Analysis(rewrite(spec, a, ratios(k), quiet: true, skipping: skipping).spec).cost?.macs
            macsAt[k] = m
            return m
        }
        if macs0 <= budget {
            var same = PassResult(spec: spec)
            same.summary.append("reduce: nothing to reduce; the network needs \(grouped(macs0)) MACs, within the budget of \(grouped(budget))")
            return same
        }
        // The narrowest step: the fewest MACs the pass can reach.
        let narrowest = rewrite(spec, a, ratios(1), quiet: true, skipping: skipping)
        if narrowest.changes.isEmpty {
            // Say why, at each place: the notes of a normal run.
            var explained = rewrite(spec, a, ratios(1), skipping: skipping)
            explained.spec = spec
            explained.changes = []
            explained.diagnostics.append(.error("reduce: nothing in the network can be reduced, and it needs \(grouped(macs0)) MACs, over the budget of \(grouped(budget)) (the notes say why each convolution is not reduced)", at: at))
            return explained
        }
        guard let least = macs(1), least <= budget else {
            var failed = PassResult(spec: spec)
            failed.diagnostics.append(.error("reduce: the budget of \(grouped(budget)) MACs cannot be met: the narrowest reductions (step 1/\(steps), \(describe(ratios(1)))) still need \(macs(1).map(grouped) ?? "?") MACs, the least it can reach (\(grouped(macs0)) without reductions)", at: at))
            return failed
        }
        var lo = 1, hi = steps   // lo fits; hi fits or is the top
        if let m = macs(steps), m <= budget { lo = steps } else {
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                if let m = macs(mid), m <= budget { lo = mid } else { hi = mid }
            }
        }
        let r = ratios(lo)
        var result = rewrite(spec, a, r, skipping: skipping)
        var why = "reduce: budget \(grouped(budget)) MACs (\(grouped(macs0)) without reductions): \(describe(r)), step \(lo)/\(steps) of the \(given == nil ? "common ratio" : "given ratios"), are the widest that fit: \(macs(lo).map(grouped) ?? "?") MACs"
        if lo < steps { why += "; the next step would need \(macs(lo + 1).map(grouped) ?? "?") MACs" }
        result.summary.append(why)
        return result
    }

    private func fmt(_ v: Double) -> String {
        let s = String(format: "%.4f", v)
        var t = s
        while t.hasSuffix("0") { t.removeLast() }
        if t.hasSuffix(".") { t.removeLast() }
        return t
    }

    static func width(_ ratio: Double, _ channels: Int) -> Int { max(1, Int(roundHalfEven(ratio * Double(channels)))) }

    /// Whether a node reads the network input, directly or through layers that keep its
    /// channels as they are (dropout, activations, batch norm, pooling): nil if not, else the
    /// kinds of the layers in between (empty when it reads the input directly).
    static func inputPath(_ g: Graph, _ id: Int) -> [String]? {
        var inputs = g.nodes[id].inputs
        var through: [String] = []
        while inputs.count == 1 {
            let n = g.nodes[inputs[0]]
            if n.id == 0 { return through }
            switch n.op {
            case .dropout, .activation, .batchNorm, .scale, .pool:
                if !through.contains(n.op.kindName) { through.append(n.op.kindName) }
                inputs = n.inputs
            default: return nil
            }
        }
        return nil
    }

    /// The spec with the pool projection column of some inception statements set.
    static func withProjections(_ spec: SpecFile, _ widths: [SourceLocation: Int]) -> SpecFile {
        var out = spec
        out.statements = rewriteLists(spec.statements) { list, _, _ in
            for i in list.indices {
                guard let w = widths[list[i].location], case .layer(let k, let words, var args, let o) = list[i].kind, args.count == 6 else { continue }
                args[5] = literal(w, at: args[5].location)
                list[i].kind = .layer(kind: k, words: words, arguments: args, options: o)
            }
        }
        return out
    }

    /// What `propagatedWidths` found.
    enum Propagation {
        /// The width of every projection, from its module's input width after the projections
        /// before it, and the network's output channels with them.
        case settled([SourceLocation: Int], outputChannels: Int)
        /// Two instances of one statement would see different input widths.
        case conflict
        /// The graph holds something the propagation does not model (the caller elaborates).
        case unknown
    }

    /// The widths of the pool projections `trial` adds, computed in one pass over the graph of
    /// the spec without them (`g`, nodes in data-flow order): every node's channels follow from
    /// its inputs' (a convolution or `fc` sets them, `concat` sums, `add` takes the widest, the
    /// others keep them), except that an inception whose statement gets a projection contributes
    /// the projection's width (`width(rp, its input width)`) instead of its pooled input. The
    /// result is checked by elaborating it.
    static func propagatedWidths(_ g: Graph, _ a: Analysis, _ trial: [SourceLocation: Int], _ rp: Double) -> Propagation {
        var channels = [Int](repeating: 0, count: g.nodes.count)
        var widths: [SourceLocation: Int] = [:]
        for n in g.nodes {
            let ins = n.inputs.map { channels[$0] }
            switch n.op {
            case .input: channels[n.id] = n.shape.channels
            case .conv(let c): channels[n.id] = c.filters
            case .linear(let l): channels[n.id] = l.units
            case .pool, .batchNorm, .activation, .dropout, .softmax, .scale, .globalAvgPool, .adaptiveAvgPool: channels[n.id] = ins[0]
            case .add, .mul: channels[n.id] = ins.max() ?? 0
            case .concat:
                var total = ins.reduce(0, +)
                if trial[n.location] != nil, n.name.hasSuffix(".concat"), let last = n.inputs.last {
                    // The inception's pool branch (no projection yet): its pooled input becomes a projection.
                    guard case .pool = g.nodes[last].op, g.nodes[last].name.hasSuffix(".b4.pool") else { return .unknown }
                    let w = width(rp, channels[g.nodes[last].inputs[0]])
                    if let seen = widths[n.location], seen != w { return .conflict }
                    widths[n.location] = w
                    total += w - channels[last]
                }
                channels[n.id] = total
            }
        }
        return widths.count == trial.count ? .settled(widths, outputChannels: channels[g.output]) : .unknown
    }

    /// The width flowing into the next statement of a list whose statements so far are
    /// `before`, as an expression: the filters argument of the nearest convolution, past layers
    /// that keep the width (batch norm, activations, dropout, pooling); nil when the list gives
    /// no such convolution (the width comes from outside it).
    static func channelsExpression(before: [Statement]) -> Expr? {
        for s in before.reversed() {
            guard case .layer(let kind, _, let args, _) = s.kind else { return nil }
            switch kind {
            case "conv": return args.count == 3 ? args[2] : nil
            case "bn", "leaky", "linear", "dropout", "pool": continue
            case _ where Parser.activationNames.contains(kind): continue
            default: return nil
            }
        }
        return nil
    }

    /// The fraction n/d < 1 (d up to 64) of a reduction in a block called with different
    /// input widths, written `c*n/d`: the smallest with `width(ratio, c) == c·n/d` exactly for
    /// every input width `c`; else (a ratio that rounds differently in different uses) the one
    /// nearest the ratio that gives whole widths in every use (ties: the smaller d).
    static func fraction(of ratio: Double, for widths: [Int]) -> (Int, Int)? {
        for d in 2...64 {
            for n in 1..<d where widths.allSatisfy({ ($0 * n) % d == 0 && $0 * n / d == width(ratio, $0) }) { return (n, d) }
        }
        var best: (Int, Int)?
        var bestError = Double.infinity
        for d in 2...64 {
            for n in 1..<d where widths.allSatisfy({ ($0 * n) % d == 0 }) {
                let e = abs(Double(n) / Double(d) - ratio)
                if e < bestError - 1e-12 { best = (n, d); bestError = e }
            }
        }
        return best
    }

    /// The one input width every instance of a statement sees, if they agree.
    static func commonInputChannels(_ a: Analysis, _ location: SourceLocation) -> Int? {
        let c = Set(a.inputShapes(location).map(\.channels))
        return c.count == 1 ? c.first : nil
    }

    /// Phase 1: pool projections, in the order the data flows (first node of each statement),
    /// each kept only if the network still elaborates with its output shape. Returns the widths
    /// chosen, the analysis of the spec with them, and warnings for those left out.
    func projections(_ spec: SpecFile, _ a: Analysis, _ rp: Double, quiet: Bool, skipping: Set<SourceLocation>) -> ([SourceLocation: Int], Analysis, [Diagnostic]) {
        guard let g0 = a.graph else { return ([:], a, []) }
        let out0 = g0.nodes[g0.output].shape
        let candidates = inceptionStatements(spec.statements).filter { s in
            guard case .layer(_, _, let args, _) = s.kind, args.count == 6, literalValue(args[5]) == 0 else { return false }
            return !skipping.contains(s.location) && !a.nodes(s.location).isEmpty
        }.sorted { a.nodes($0.location).min()! < a.nodes($1.location).min()! }
        // Widths follow the widths before them: recompute every chosen width from the input
        // widths the last elaboration gave until they settle (a block body's module may sit
        // after another in one call and before it in the next). Nil (with why) if they do not,
        // or if the network no longer elaborates or its output shape changes.
        func settle(_ start: [SourceLocation: Int]) -> (Analysis?, [SourceLocation: Int], String?) {
            var trial = start
            // One pass over the graph usually settles every width (see `propagatedWidths`);
            // the elaborations below then confirm it at once. Re-elaborating until the widths
            // stopped changing took one elaboration per module of a chain: a spec of 200 chained
            // modules took 15 s, one of 2,000 would take hours.
            switch ReducePass.propagatedWidths(g0, a, trial, rp) {
            case .settled(let widths, let outputChannels):
                trial = widths
                // Projections change widths, never sizes: a changed output is known without elaborating.
                if outputChannels != out0.channels {
                    var out1 = out0
                    out1.channels = outputChannels
                    return (nil, trial, "the network's output shape would change from \(out0) to \(out1)")
                }
            case .conflict: return (nil, trial, "the modules after it would see different widths in their uses")
            case .unknown: break
            }
            for _ in 0...trial.count {
                let t = Analysis(ReducePass.withProjections(spec, trial))
                guard let g = t.graph else {
                    return (nil, trial, "the network would not elaborate (\(t.diagnostics.items.first { $0.severity == .error }?.message ?? "unknown error"))")
                }
                var next = trial
                for loc in trial.keys {
                    guard let w = ReducePass.commonInputChannels(t, loc) else { return (nil, trial, "the modules after it would see different widths in their uses") }
                    next[loc] = ReducePass.width(rp, w)
                }
                if next == trial {
                    let out1 = g.nodes[g.output].shape
                    return out1 == out0 ? (t, trial, nil) : (nil, trial, "the network's output shape would change from \(out0) to \(out1)")
                }
                trial = next
            }
            return (nil, trial, "the widths after it do not settle")
        }
        // Usually every projection can be added: try the remaining ones all at once; when that
        // fails, find by bisection the first (in data-flow order) whose addition fails, leave it
        // out with a warning, keep those before it, and go on with those after it.
        var accepted: [SourceLocation: Int] = [:]
        var current = a
        var warnings: [Diagnostic] = []
        var remaining = candidates.filter { ReducePass.commonInputChannels(a, $0.location) != nil }   // the others are warned about later
        func start(_ added: ArraySlice<Statement>) -> [SourceLocation: Int] {
            var w = accepted
            for c in added {
                w[c.location] = ReducePass.width(rp, ReducePass.commonInputChannels(current, c.location) ?? ReducePass.commonInputChannels(a, c.location)!)
            }
            return w
        }
        while !remaining.isEmpty {
            let (t, widths, problem) = settle(start(remaining[...]))
            if let t {
                accepted = widths
                current = t
                break
            }
            var lo = 0, hi = remaining.count   // adding the first lo passes (0: as accepted), the first hi fails
            var passing = (current, accepted), failing = (widths, problem)
            while hi - lo > 1 {
                let mid = (lo + hi) / 2
                let (tm, wm, pm) = settle(start(remaining[..<mid]))
                if let tm { lo = mid; passing = (tm, wm) } else { hi = mid; failing = (wm, pm) }
            }
            let c = remaining[hi - 1]
            if !quiet {
                let cin = ReducePass.commonInputChannels(passing.0, c.location) ?? 0
                let before = passing.0.outputShapes(c.location).first.map(\.channels) ?? 0
                let w = failing.0[c.location] ?? 0
                warnings.append(passWarning(name, "a pool projection of \(w) channels would change the module's width from \(before) to \(before - cin + w), and \(failing.1 ?? "the widths after it do not settle"); its pool proj column stays 0", at: c.location))
            }
            (current, accepted) = passing
            remaining = Array(remaining[hi...])
        }
        return (accepted, current, warnings)
    }

    /// The rewrite with fixed ratios (`quiet`: no notes, for the budget search).
    func rewrite(_ spec: SpecFile, _ a0: Analysis, _ r: ReductionRatios, quiet: Bool = false, skipping: Set<SourceLocation> = []) -> PassResult {
        var result = PassResult(spec: spec)
        guard a0.graph != nil else { return result }
        // Facts come from the spec with its new pool projections (`a`), widths included.
        let (projected, a, projectionWarnings) = projections(spec, a0, r.rp, quiet: quiet, skipping: skipping)
        result.diagnostics += projectionWarnings
        result.spec.statements = rewriteLists(spec.statements) { list, prefix, context in
            var out: [Statement] = []
            for s in list {
                if skipping.contains(s.location) { out.append(s); continue }
                switch s.layerKind {
                case "conv":
                    let convs = a.ops(s.location).compactMap { op -> ConvAttributes? in if case .conv(let c) = op { return c }; return nil }
                    guard let first = convs.first, first.kernelHeight > 1 || first.kernelWidth > 1 else {
                        if convs.isEmpty && !quiet { result.diagnostics.append(passWarning(name, "this convolution \(context.described) is never elaborated (its block is never called)", at: s.location)) }
                        out.append(s); continue
                    }
                    // The reduction's arithmetic is that of a square, dense, ungrouped kernel.
                    guard let square = first.square, convs.allSatisfy({ $0.square != nil }) else {
                        if !quiet { result.diagnostics.append(passWarning(name, "not reduced: the convolution is rectangular, dilated, grouped or asymmetrically padded; this pass only reduces square ungrouped convolutions", at: s.location)) }
                        out.append(s); continue
                    }
                    let inputs = a.inputShapes(s.location), outputs = a.outputShapes(s.location)
                    guard Set(convs.map { $0.square!.kernel }).count == 1, inputs.count == convs.count, outputs.count == convs.count else {
                        out.append(s); continue
                    }
                    if Set(inputs.map(\.channels)).count > 1 {
                        // A block called with different widths: the reduction's width is written
                        // as an expression of the width before it (`c/2`), when one fits every use.
                        let cins = inputs.map(\.channels)
                        let ratio = square.kernel >= 5 ? r.r5 : r.r3
                        guard let e = ReducePass.channelsExpression(before: out),
                              let (n, d) = ReducePass.fraction(of: ratio, for: cins) else {
                            if !quiet { result.diagnostics.append(passWarning(name, "the convolution \(context.described) sees different inputs in its \(convs.count) uses (channels \(Set(cins).sorted().map(String.init).joined(separator: ", "))), and no convolution before it in the same list gives their width as an expression; one reduction width cannot serve them all", at: s.location)) }
                            out.append(s); continue
                        }
                        let widths = cins.map { $0 * n / d }
                        var without = 0, with = 0
                        for (i, c) in convs.enumerated() {
                            let x = inputs[i], y = outputs[i]
                            let perInput = y.height * y.width * c.filters * c.kernelHeight * c.kernelWidth
                            without += perInput * cins[i]
                            with += x.height * x.width * cins[i] * widths[i] + perInput * widths[i]
                        }
                        let k = square.kernel
                        let loc = s.location
                        let widthExpr: Expr = n == 1 ? .binary("/", e, literal(d, at: loc), loc) : .binary("/", .binary("*", e, literal(n, at: loc), loc), literal(d, at: loc), loc)
                        let text = SpecPrinter.expr(widthExpr, spaced: false)
                        let uses = zip(cins, widths).map { "\($0) -> \($1)" }.joined(separator: ", ")
                        guard with < without, zip(cins, widths).allSatisfy({ $1 < $0 && $1 >= 1 }) else {
                            if !quiet { result.diagnostics.append(passNote(name, "not reduced: a 1x1 reduction to \(text) (\(uses)) would need more MACs than it saves (\(grouped(without)) -> \(grouped(with)))", at: s.location)) }
                            out.append(s); continue
                        }
                        var reduction = Statement(label: nil, labelLocation: nil, kind: .layer(kind: "conv", words: [], arguments: [literal(1, at: loc), literal(1, at: loc), widthExpr], options: convStyleOptions(s.options)), keywordLocation: loc, location: loc)
                        reduction.leadingComments = s.leadingComments
                        reduction.trailingComment = " reduce: 1x1 reduction to \(text) before the \(k)x\(k) conv at line \(s.location.line) (\(uses))"
                        var target = s
                        target.leadingComments = []
                        out.append(reduction); out.append(target)
                        result.changes.append(Change(pass: name, location: s.location, before: SpecPrinter.line(s),
                                                     after: SpecPrinter.line(reduction) + "; " + SpecPrinter.line(s),
                                                     note: "width \(text) in each use (\(uses)), \(fmt(Double(n) / Double(d))) x the input width for the ratio \(fmt(ratio))",
                                                     beforeRegion: [s.location], afterRegion: [prefix + [out.count - 2], prefix + [out.count - 1]]))
                        continue
                    }
                    if let prev = out.last, prev.layerKind == "conv", a.ops(prev.location).contains(where: { if case .conv(let c) = $0 { return c.kernelHeight == 1 && c.kernelWidth == 1 }; return false }) {
                        if !quiet { result.diagnostics.append(passNote(name, "not reduced: the convolution is already preceded by a 1x1 convolution", at: s.location)) }
                        out.append(s); continue
                    }
                    if let g = a.graph, let through = a.nodes(s.location).lazy.compactMap({ ReducePass.inputPath(g, $0) }).first {
                        let via = through.isEmpty ? "" : " through " + through.map { "'\($0)'" }.joined(separator: ", ")
                        if !quiet { result.diagnostics.append(passNote(name, "not reduced: the convolution reads the network input\(via) (its \(inputs[0].channels) channels are the image, not a wide feature map)", at: s.location)) }
                        out.append(s); continue
                    }
                    let cin = inputs[0].channels, k = square.kernel
                    let ratio = k >= 5 ? r.r5 : r.r3
                    let w = ReducePass.width(ratio, cin)
                    guard w < cin else {
                        if !quiet { result.diagnostics.append(passNote(name, "not reduced: its input has \(cin) channels, no more than the reduction width \(w) (\(fmt(ratio)) x \(cin))", at: s.location)) }
                        out.append(s); continue
                    }
                    // MACs of the convolution alone, and of the reduction and the convolution on w channels.
                    var without = 0, with = 0
                    for (i, c) in convs.enumerated() {
                        let x = inputs[i], y = outputs[i]
                        let perInput = y.height * y.width * c.filters * c.kernelHeight * c.kernelWidth
                        without += perInput * cin
                        with += x.height * x.width * cin * w + perInput * w
                    }
                    guard with < without else {
                        if !quiet { result.diagnostics.append(passNote(name, "not reduced: a 1x1 reduction \(cin) -> \(w) would need more MACs than it saves (\(grouped(without)) -> \(grouped(with)))", at: s.location)) }
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
                    // The width of each column's convolution, from the graph (a column may be an expression).
                    let nodes = a.nodes(s.location).compactMap { a.graph?.nodes[$0] }
                    func filters(_ suffix: String) -> Int {
                        for n in nodes where n.name.hasSuffix(suffix) { if case .conv(let c) = n.op { return c.filters } }
                        return 0
                    }
                    let columns: [(Int, Int?, Double, String)] = [(1, 2, r.r3, "#3x3 reduce"), (3, 4, r.r5, "#5x5 reduce"), (5, nil, r.rp, "pool proj")]
                    for (col, conv, ratio, label) in columns {
                        guard let v = literalValue(args[col]) else {
                            if !quiet { result.diagnostics.append(passWarning(name, "the \(label) column of this inception module is an expression; it is not rewritten", at: args[col].location)) }
                            continue
                        }
                        guard v == 0 else { continue }
                        if let conv {
                            let k = conv == 2 ? 3 : 5
                            let c = filters(conv == 2 ? ".b2.conv" : ".b3.conv")
                            if c == 0 { continue }
                            let w = ReducePass.width(ratio, cin)
                            // Per pixel: 1x1 cin -> w, then KxK w -> c; against KxK cin -> c.
                            let with = cin * w + k * k * w * c, without = k * k * cin * c
                            guard with < without else {
                                if !quiet { result.diagnostics.append(passNote(name, "\(label) not set: a 1x1 reduction \(cin) -> \(w) in front of the \(k)x\(k) column would need more MACs than it saves (\(grouped(without)) -> \(grouped(with)) per pixel)", at: args[col].location)) }
                                continue
                            }
                            args[col] = literal(w, at: args[col].location)
                            notes.append("\(label) 0 -> \(w) = round(\(fmt(ratio)) x \(cin))")
                        } else if let w = projected[s.location] {
                            args[col] = literal(w, at: args[col].location)
                            notes.append("\(label) 0 -> \(w) = round(\(fmt(ratio)) x \(cin))")
                            spatialOnly = true
                        }
                    }
                    if notes.isEmpty { out.append(s); continue }
                    // A module that passes its input through has a new width when an earlier projection changed that input.
                    if Set(a0.inputShapes(s.location).map(\.channels)) != [cin] { spatialOnly = true }
                    var t = s
                    t.kind = .layer(kind: kind, words: words, arguments: args, options: opts)
                    t.trailingComment = passComment("reduce: " + notes.map { $0.components(separatedBy: " = ").first! }.joined(separator: ", "), replacing: [s.trailingComment])
                    out.append(t)
                    result.changes.append(Change(pass: name, location: s.location, before: SpecPrinter.line(s), after: SpecPrinter.line(t),
                                                 note: notes.joined(separator: "; ") + (projected[s.location] != nil ? "; the pool projection changes the module's width" : ""),
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
