import DSLSyntax
import Foundation

/// Turns a parsed spec into a graph: resolves blocks and repeats, expands `inception` and
/// `pyramid`, infers every shape, and reports located errors and warnings. Every node keeps the
/// location of the text that produced it; errors inside an expansion carry notes pointing at the
/// call sites that led there.
///
/// Before anything is elaborated, a sizing pass (`Sizing.swift`) computes how many layers,
/// module instances, bytes of names and steps of work each statement will make, memoised per
/// block and argument values, and refuses the spec (at the innermost statement that crosses a
/// limit) if that would exceed `maxNodes`, `maxNameBytes` or `maxSteps`. So nothing is built
/// that the limits would reject: exponential call trees, huge repeats and long names are
/// reported at once, in time linear in the size of the spec.
public struct Elaborator {
    /// The most nodes (and, separately, module instances) a network may expand to.
    public static let maxNodes = 2_000_000
    /// The deepest chain of block calls.
    public static let maxCallDepth = 64
    /// The deepest nesting of bodies (repeat, merge branches, block calls) counted through block
    /// calls: a chain of 64 calls, each inside 62 braces, overflowed the stack. Every level costs
    /// a few kilobytes of stack in a debug build; 64 levels fit in a 512 KB thread stack.
    public static let maxDepth = 64
    /// The most bytes of layer and module names (and module summaries) in a network.
    public static let maxNameBytes = 268_435_456
    /// The most steps of work elaborating a spec may take: one per statement elaborated (each
    /// iteration of a repeat and each call elaborates its body again) plus one per word, number,
    /// operator and option in it. Statements that build nothing still take time: 50,000
    /// `repeat 0 {}` in a block called 50,000 times.
    public static let maxSteps = 50_000_000
    /// The longest module summary (`stage(32, 2)`) kept, in bytes.
    static let maxSummaryLength = 100

    let spec: SpecFile
    /// Deduplicating: an error in a block body that does not depend on the arguments is the
    /// same message at the same place in every call, and is reported once (with the first
    /// call's notes).
    var diagnostics: DiagnosticBag = { var b = DiagnosticBag(); b.deduplicating = true; return b }()
    var nodes: [Node] = []
    var modules: [ModuleInstance] = []
    var blocks: [String: BlockDefinition] = [:]
    private var networkName: String?
    private var inputShape: Shape?
    /// Set when elaboration must stop: a limit was exceeded or the error list is full.
    var stopped = false
    /// Bytes of node and module names and module summaries so far.
    var nameBytes = 0
    /// Sizes of block bodies per (block, argument values, poisoned), see `Sizing.swift`.
    var sizeMemo: [SizeKey: SizeResult] = [:]
    /// Sizing work done for the current top-level statement, and its budget.
    var sizingWork = 0, sizingBudget = 0
    var sizingAborted = false
    /// Block names, sorted, for "did you mean" (computed once).
    private var sortedBlockNames: [String]?
    /// How many more block names "did you mean" may compare with: each unknown block is
    /// compared with every block, and a spec with 100,000 blocks and as many unknown calls
    /// must not take 10^10 comparisons.
    private var suggestionBudget = 1_000_000
    /// Set while the sizing pass runs the elaborator's checks (their diagnostics are discarded).
    var quiet = false

    /// Lexical state while expanding.
    struct Scope {
        var prefix: String = ""
        var counters: [String: Int] = [:]
        var bindings: [String: Double] = [:]
        /// The block's parameter names in declared order (for messages).
        var parameters: [String] = []
        var module: Int? = nil
        var callNotes: [Diagnostic.Note] = []
        var callStack: [String] = []
        var repeatSuffix: String = ""
        /// Bodies entered so far, counted through block calls (at most `maxDepth`).
        var depth = 0
    }
    private var usedNames: [String: SourceLocation] = [:]
    /// The next `_N` suffix to try for a generated name that is taken.
    private var nextSuffix: [String: Int] = [:]
    /// Calls checked after an error (nothing built): each is checked once.
    private var checkedCalls: Set<CheckedCall> = []
    struct CheckedCall: Hashable { var block: String; var arguments: [Double]; var callStack: [String]; var depth: Int }

    /// Result of elaboration: the graph if it could be built, and all diagnostics.
    public struct Result {
        /// The graph, or nil when errors prevented building it.
        public var graph: Graph?
        /// Errors and warnings.
        public var diagnostics: DiagnosticBag
    }

    /// The input size that replaces the spec's `input` declaration (`dsl check --input`).
    var inputOverride: Shape?

    init(spec: SpecFile) { self.spec = spec }

    /// Elaborates a parsed spec (the caller merges parse diagnostics first). `input`, when
    /// given, replaces the size of the spec's `input` declaration (which must still be there):
    /// the network is checked at that resolution without editing it.
    public static func elaborate(_ spec: SpecFile, defaultName: String, input: Shape? = nil) -> Result {
        var e = Elaborator(spec: spec)
        e.inputOverride = input
        return e.run(defaultName: defaultName)
    }

    private mutating func run(defaultName: String) -> Result {
        // First pass: declarations (network, input, blocks) so blocks may be used before definition.
        var firstLayer: Statement?
        var sawInvalid = false, brokenInput = false
        for s in spec.statements {
            switch s.kind {
            case .network(let n):
                if networkName != nil { diagnostics.error("duplicate 'network' declaration", at: s.keywordLocation) }
                networkName = n
            case .input(let h, let w, let c):
                if inputShape != nil { diagnostics.error("duplicate 'input' declaration", at: s.keywordLocation); continue }
                if let f = firstLayer {
                    diagnostics.error("'input' must come before the first layer", at: s.keywordLocation, notes: [.init("first layer is here", at: f.keywordLocation)])
                }
                inputShape = inputOverride ?? Shape(h, w, c)
                if h <= 4 && w == c && w >= 8 {
                    diagnostics.warning("input \(h)x\(w)x\(c) looks channels-first (C x H x W, as PyTorch writes it); dsl reads height x width x channels: did you mean 'input \(w)x\(c)x\(h)'?", at: s.location)
                }
            case .block(let b):
                if let prev = blocks[b.name] {
                    diagnostics.error("block '\(b.name)' is defined twice", at: b.nameLocation, notes: [.init("first definition is here", at: prev.nameLocation)])
                } else { blocks[b.name] = b }
            case .invalid:
                // Already reported by the parser; it is not "the first layer" (a broken
                // 'network' line made every later 'input' "come after the first layer").
                sawInvalid = true
                if spec.source.text(s.keywordLocation) == "input" { brokenInput = true }
            default:
                if firstLayer == nil { firstLayer = s }
            }
        }
        guard let input = inputShape else {
            // A malformed 'input' line was reported already: no second "missing 'input'" error.
            if brokenInput { return Result(graph: nil, diagnostics: diagnostics) }
            diagnostics.error("missing 'input' declaration (e.g. 'input 32x32x3' before the first layer)", at: spec.statements.first?.keywordLocation ?? .start)
            return Result(graph: nil, diagnostics: diagnostics)
        }
        let inputLoc = spec.statements.first { if case .input = $0.kind { return true }; return false }!.location
        totalElements = Double(input.height) * Double(input.width) * Double(input.channels)
        if totalElements > Elaborator.maxElements {
            diagnostics.error("the input has \(input.height * input.width * input.channels) elements; at most \(fmt(Elaborator.maxElements)) are supported", at: inputLoc)
            return Result(graph: nil, diagnostics: diagnostics)
        }
        nodes.append(Node(id: 0, name: "input", op: .input, inputs: [], shape: input, location: inputLoc, module: nil))
        usedNames["input"] = inputLoc
        nameBytes = 5
        var scope = Scope()
        var cursor: Int? = 0
        // Sized first: a spec that would cross a limit is not built. The statements before the
        // one that crosses it are only checked (as after an error: nothing is built), so their
        // own errors are still reported, then the limit.
        let refused = admit(spec.statements)
        if refused != nil { cursor = nil }
        for (i, s) in spec.statements.enumerated() {
            switch s.kind {
            case .network, .input, .block: continue
            default: break
            }
            if stopped || diagnostics.truncated { break }
            if let refused, i >= refused.index { break }
            cursor = statement(s, from: cursor, scope: &scope)
        }
        if let refused {
            diagnostics.add(refused.error)
            stopped = true
        }
        if firstLayer == nil && !sawInvalid {
            diagnostics.error("the network has no layers", at: inputLoc)
        }
        if diagnostics.hasErrors || cursor == nil { return Result(graph: nil, diagnostics: diagnostics) }
        let g = Graph(name: networkName ?? defaultName, nodes: nodes, modules: modules)
        lint(g)
        return Result(graph: g, diagnostics: diagnostics)
    }

    // MARK: - Statements

    /// Elaborates one statement starting from node `from` (nil: an earlier error poisoned the
    /// path; keep checking syntax-level things only). Returns the new cursor.
    ///
    /// `Sizing.swift` mirrors what this does (how many nodes and modules each statement makes,
    /// which errors stop it): keep the two in step.
    private mutating func statement(_ s: Statement, from: Int?, scope: inout Scope) -> Int? {
        if stopped { return nil }
        // Once the error list is full nothing more can be reported: stop.
        if diagnostics.truncated { stopped = true; return nil }
        switch s.kind {
        case .invalid:
            return nil
        case .network, .input:
            diagnostics.error("'\(s.kind.keyword)' is only allowed at the top level", at: s.keywordLocation)
            return from
        case .block:
            diagnostics.error("blocks must be defined at the top level", at: s.keywordLocation)
            return from
        case .repeatLoop(let countExpr, let body):
            return repeatLoop(s, count: countExpr, body: body, from: from, scope: &scope)
        case .merge(let kind, let branches, let mergeOptions):
            return merge(s, kind: kind, branches: branches, options: mergeOptions, from: from, scope: &scope)
        case .call(let name, let args, let options):
            return call(s, name: name, args: args, options: options, from: from, scope: &scope)
        case .layer(let kind, let words, let args, let options):
            switch kind {
            case "inception": return inception(s, args: args, options: options, from: from, scope: &scope)
            case "pyramid": return pyramid(s, args: args, options: options, from: from, scope: &scope)
            default: return layer(s, kind: kind, words: words, args: args, options: options, from: from, scope: &scope)
            }
        }
    }

    /// `repeat COUNT { body }` (statement() stays small: its frame is on the stack once per
    /// level of nesting).
    private mutating func repeatLoop(_ s: Statement, count countExpr: Expr, body: [Statement], from: Int?, scope: inout Scope) -> Int? {
        guard let count = integer(countExpr, "repeat count", in: 0...100_000, scope) else { return nil }
        if count == 0 { return from }
        guard enter(s, scope) else { return nil }
        // The body runs in this scope (its counters carry over), with the iteration's suffix;
        // copying the scope per iteration copied its counters every time.
        let savedSuffix = scope.repeatSuffix
        scope.depth += 1
        defer { scope.depth -= 1; scope.repeatSuffix = savedSuffix }
        var cur = from
        for i in 0..<count {
            scope.repeatSuffix = savedSuffix + (count > 1 ? ".\(i + 1)" : "")
            let nodesBefore = nodes.count, modulesBefore = modules.count
            for b in body { if stopped { return nil }; cur = statement(b, from: cur, scope: &scope) }
            if stopped { return nil }
            // Every iteration elaborates the same statements with the same bindings, so once
            // one iteration is done the rest are known: after an error (the cursor is lost)
            // they would only repeat its diagnostics, and an iteration that adds nothing adds
            // nothing again. (The size of the whole repeat was checked before it started.)
            if cur == nil { return nil }
            if nodes.count == nodesBefore && modules.count == modulesBefore { break }
        }
        return cur
    }

    /// Checks that one more level of nesting is allowed.
    mutating func enter(_ s: Statement, _ scope: Scope) -> Bool {
        if scope.depth >= Elaborator.maxDepth {
            diagnostics.error("nesting is too deep (more than \(Elaborator.maxDepth) levels, counting the bodies of the blocks called)", at: s.keywordLocation, notes: scope.callNotes)
            return false
        }
        return true
    }

    private mutating func merge(_ s: Statement, kind: String, branches: [[Statement]], options: [LayerOption], from: Int?, scope: inout Scope) -> Int? {
        guard enter(s, scope) else { return nil }
        let op = mergeOp(s, kind: kind, options: options, scope: scope)
        var outs: [Int] = []
        var poisoned = from == nil
        scope.depth += 1
        for b in branches {
            var cur = from
            for st in b { cur = statement(st, from: cur, scope: &scope) }
            if let c = cur { outs.append(c) } else { poisoned = true }
        }
        scope.depth -= 1
        if stopped { return nil }
        if kind != "concat" && branches.count < 2 && !poisoned {
            diagnostics.error("'\(kind)' needs at least two branches (use '{}' for the identity\(kind == "add" ? " shortcut" : ""))", at: s.keywordLocation)
            return nil
        }
        guard let op, !poisoned else { return nil }
        return addNode(op, inputs: outs, statement: s, baseName: s.label.map { scoped($0, scope) } ?? generated(kind, &scope), scope: scope)
    }

    /// The op of a merge after checking its options (`add zeropad`); nil after an error. Used
    /// by the sizing pass too.
    mutating func mergeOp(_ s: Statement, kind: String, options: [LayerOption], scope: Scope) -> Op? {
        var opts = OptionReader(options: options, layer: kind, notes: scope.callNotes, bindings: scope.bindings)
        defer { diagnostics.append(contentsOf: opts.diagnostics) }
        // Unequal widths are an error unless zero-padding is stated (ShapeRules).
        let zeroPad = kind == "add" ? opts.flag("zeropad") : false
        guard opts.finish() else { return nil }
        switch kind {
        case "concat": return .concat
        case "mul": return .mul
        default: return .add(zeroPad: zeroPad)
        }
    }

    /// The checks of a call, in the order they are reported; nil when the call is not
    /// elaborated. Used by the sizing pass too (with its diagnostics discarded).
    mutating func callTarget(_ s: Statement, name: String, args: [Expr], options: [LayerOption], scope: Scope) -> (BlockDefinition, [Double])? {
        guard let def = blocks[name] else {
            var hint = ""
            // The suggestion is looked for only while errors are still kept (it compares the
            // name with every block's).
            if !quiet && !diagnostics.truncated && suggestionBudget > 0 {
                suggestionBudget -= blocks.count
                if sortedBlockNames == nil { sortedBlockNames = blocks.keys.sorted() }
                hint = nearest(name, in: sortedBlockNames!).map { "; did you mean '\($0)'?" } ?? ""
            }
            // `MaxPool2d(2)`: another framework's layer, written as a call.
            if hint.isEmpty, let alias = Parser.layerAlias(for: name) {
                hint = alias.isEmpty ? "; \(Parser.noFlattenHint)" : "; did you mean the layer '\(alias)' (arguments without parentheses or commas)?"
            }
            diagnostics.error("unknown block '\(clipped(name))'" + hint, at: s.keywordLocation, notes: scope.callNotes)
            return nil
        }
        if let o = options.first {
            diagnostics.error("a block call takes no options; pass values as arguments", at: o.nameLocation, notes: scope.callNotes)
        }
        if args.count != def.parameters.count {
            diagnostics.error("block '\(name)' takes \(def.parameters.count) argument\(def.parameters.count == 1 ? "" : "s"), got \(args.count)", at: s.location, notes: [.init("'\(name)' is defined here", at: def.nameLocation)] + scope.callNotes)
            return nil
        }
        if scope.callStack.count >= Elaborator.maxCallDepth || scope.callStack.contains(name) {
            diagnostics.error(scope.callStack.contains(name) ? "block '\(name)' calls itself (recursion is not allowed)" : "block calls nest too deeply", at: s.keywordLocation, notes: scope.callNotes)
            return nil
        }
        guard enter(s, scope) else { return nil }
        var values: [Double] = []
        values.reserveCapacity(args.count)
        for a in args {
            guard let v = evaluate(a, scope) else { return nil }
            values.append(v)
        }
        return (def, values)
    }

    private mutating func call(_ s: Statement, name: String, args: [Expr], options: [LayerOption], from: Int?, scope: inout Scope) -> Int? {
        guard let (def, values) = callTarget(s, name: name, args: args, options: options, scope: scope) else { return nil }
        var bindings: [String: Double] = [:]
        bindings.reserveCapacity(values.count)
        for (p, v) in zip(def.parameters, values) { bindings[p.0] = v }
        var inner = Scope()
        if from != nil {
            let instance = s.label.map { scoped($0, scope) } ?? generated(name, &scope)
            guard let mid = newModule(name: instance, kind: "block", summary: callSummary(name, args), statement: s, parent: scope.module, scope: scope) else { return nil }
            inner.prefix = instance + "."
            inner.module = mid
        } else {
            // After an error nothing is built: the body is only checked, and a body already
            // checked with the same arguments from the same chain of calls would only repeat
            // its errors (a tree of calls after an error used to be walked in full).
            let key = CheckedCall(block: name, arguments: values, callStack: scope.callStack, depth: scope.depth)
            if !checkedCalls.insert(key).inserted { return nil }
        }
        inner.bindings = bindings
        inner.parameters = def.parameters.map(\.0)
        inner.callNotes = [.init("in block '\(name)' called here", at: s.location)] + scope.callNotes
        inner.callStack = scope.callStack + [name]
        inner.depth = scope.depth + 1
        var cur = from
        for b in def.body { if stopped { return nil }; cur = statement(b, from: cur, scope: &inner) }
        if def.body.isEmpty {
            diagnostics.warning("block '\(name)' is empty; the call does nothing", at: s.keywordLocation)
        }
        return cur
    }

    /// `name(arg, ...)` with the arguments as written, cut to `maxSummaryLength` bytes.
    func callSummary(_ name: String, _ args: [Expr]) -> String {
        var out = name + "("
        for (i, a) in args.enumerated() {
            if out.utf8.count > Elaborator.maxSummaryLength { break }
            if i > 0 { out += ", " }
            out += sourceText(a.location, max: Elaborator.maxSummaryLength)
        }
        out += ")"
        return summaryClipped(out)
    }

    /// The source text at a location, at most `max` bytes of it.
    func sourceText(_ l: SourceLocation, max: Int) -> String {
        var c = l
        c.length = Swift.min(l.length, max)
        return spec.source.text(c)
    }

    /// A summary cut to `maxSummaryLength` bytes (with "..." when cut).
    func summaryClipped(_ s: String) -> String {
        guard s.utf8.count > Elaborator.maxSummaryLength else { return s }
        return String(decoding: Array(s.utf8.prefix(Elaborator.maxSummaryLength - 3)), as: UTF8.self) + "..."
    }

    // MARK: - Layers

    private mutating func layer(_ s: Statement, kind: String, words: [(String, SourceLocation)], args: [Expr], options: [LayerOption], from: Int?, scope: inout Scope) -> Int? {
        guard var op = layerOp(s, kind: kind, words: words, args: args, options: options, scope: scope) else { return nil }
        guard let from else { return nil }
        if case .conv(var c) = op, c.groups == 0 {
            // dwconv: one group per input channel, `filters` (so far the multiplier) per group.
            let channels = nodes[from].shape.channels
            guard c.filters * channels <= 1_048_576 else {
                diagnostics.error("depthwise convolution with multiplier \(c.filters) on \(channels) channels has \(c.filters * channels) filters; at most 1048576", at: s.location, notes: scope.callNotes)
                return nil
            }
            c.groups = channels
            c.filters *= channels
            op = .conv(c)
        }
        if case .conv(let c) = op, case .whiten = c.initializer {
            // A patch-whitening bank: one filter per eigenvector of the KH·KW·IC patch covariance, and its negative.
            let channels = nodes[from].shape.channels
            let needed = 2 * c.kernelHeight * c.kernelWidth * channels
            if c.filters != needed {
                diagnostics.error("init=whiten needs 2·KH·KW·IC = 2·\(c.kernelHeight)·\(c.kernelWidth)·\(channels) = \(needed) filters (one per eigenvector of the \(c.kernelHeight)x\(c.kernelWidth)x\(channels) patches and its negative), got \(c.filters)", at: optionLocation(s, "init") ?? s.location, notes: scope.callNotes)
                return nil
            }
        }
        let name = s.label.map { scoped($0, scope) } ?? generated(op.kindName, &scope)
        return addNode(op, inputs: [from], statement: s, baseName: name, scope: scope)
    }

    /// Where the option `name` of a layer statement is written.
    private func optionLocation(_ s: Statement, _ name: String) -> SourceLocation? {
        guard case .layer(_, _, _, let options) = s.kind else { return nil }
        return options.first { $0.name == name }?.location
    }

    /// The op of a layer statement after checking its arguments and options (shapes are not
    /// needed); nil after an error. Used by the sizing pass too.
    mutating func layerOp(_ s: Statement, kind: String, words: [(String, SourceLocation)], args: [Expr], options: [LayerOption], scope: Scope) -> Op? {
        var opts = OptionReader(options: options, layer: kind, notes: scope.callNotes, bindings: scope.bindings)
        defer { diagnostics.append(contentsOf: opts.diagnostics) }
        switch kind {
        case "conv", "dwconv":
            let depthwise = kind == "dwconv"
            guard checkArgs(s, args, names: depthwise ? ["kernel size", "stride", "channel multiplier"] : ["kernel size", "stride", "filters"],
                            required: depthwise ? 2 : 3, scope) else { return nil }
            guard let k = size(args[0], "kernel size", in: 1...1024, scope),
                  let st = size(args[1], "stride", in: 1...1024, scope) else { return nil }
            // dwconv: `filters` is the channel multiplier until the input is known (groups 0).
            var f = 1
            if depthwise {
                if args.count > 2 { guard let m = integer(args[2], "channel multiplier", in: 1...1024, scope) else { return nil }; f = m }
            } else {
                guard let n = integer(args[2], "number of filters", in: 1...1_048_576, scope) else { return nil }
                f = n
            }
            let bn = opts.flag("bn")
            let act = opts.activation(default: .relu)
            let bias = opts.bias(default: !bn)
            // (After a wrong value the others are still checked; `finish` fails.)
            let d = opts.dilation() ?? (1, 1)
            var groups = depthwise ? 0 : 1
            if !depthwise, let g = opts.groups() { groups = g }
            let norm = opts.batchNormSettings(prefix: "bn-", fused: bn)
            let initializer = opts.weightInit(allowed: ["he", "torch", "dirac", "whiten"])
            let training = opts.training()
            guard let pad = opts.convPadding(kernel: k, dilation: d) else { return nil }
            guard opts.finish() else { return nil }
            if groups > 1 && f % groups != 0 {
                diagnostics.error("groups=\(groups) does not divide the \(f) filters (groups must divide the input channels and the filters)", at: opts.location("groups") ?? s.location, notes: scope.callNotes)
                return nil
            }
            if initializer != .he && initializer != .torch && groups != 1 {
                diagnostics.error("init=\(initializer.keyword) needs an ungrouped convolution (\(depthwise ? "dwconv is grouped" : "groups=\(groups)"))", at: opts.location("init") ?? s.location, notes: scope.callNotes)
                return nil
            }
            var attributes = ConvAttributes(kernelHeight: k.0, kernelWidth: k.1, strideHeight: st.0, strideWidth: st.1,
                                            padTop: pad.top, padLeft: pad.left, padBottom: pad.bottom, padRight: pad.right,
                                            dilationHeight: d.0, dilationWidth: d.1, groups: groups,
                                            filters: f, bias: bias, batchNorm: bn, activation: act)
            attributes.norm = norm
            attributes.initializer = initializer
            attributes.training = training
            return .conv(attributes)
        case "pool":
            if words.contains(where: { $0.0 == "to" }) { return adaptivePool(s, words: words, args: args, opts: &opts, scope: scope) }
            guard checkArgs(s, args, names: ["window size", "stride"], required: 0, scope) else { return nil }
            let pk: PoolKind = words.first?.0 == "avg" ? .avg : .max
            var k = 3, st = 2, defaultPad = 1
            if let a = args.first, case .name(let w, let l) = a, scope.bindings[w] == nil, let kindWord = nearMiss(w, in: ["max", "avg"]) {
                diagnostics.error("unknown pooling '\(clipped(w))'; did you mean '\(kindWord)'? (pool max|avg [WINDOW [STRIDE]])", at: l, notes: scope.callNotes)
                return nil
            }
            if args.count >= 1 {
                guard let kk = integer(args[0], "pooling window", in: 1...1024, scope) else { return nil }
                k = kk; st = kk; defaultPad = 0
            }
            if args.count >= 2 {
                guard let ss = integer(args[1], "pooling stride", in: 1...1024, scope) else { return nil }
                st = ss
            }
            let ceil = opts.flag("ceil")
            let statedFloor = opts.flag("floor")
            guard let pad = opts.padding(kernel: k, defaultSame: false, defaultPad: defaultPad) else { return nil }
            guard opts.finish() else { return nil }
            if pad * 2 > k {
                diagnostics.error("pooling padding \(pad) is more than half the window \(k)", at: s.location, notes: scope.callNotes)
                return nil
            }
            var attributes = PoolAttributes(kind: pk, kernel: k, stride: st, pad: pad, ceil: ceil)
            attributes.statedFloor = statedFloor && !ceil
            return .pool(attributes)
        case "bn":
            guard checkArgs(s, args, names: [], required: 0, scope) else { return nil }
            var norm = opts.batchNormSettings(prefix: "", fused: true)
            norm.training = opts.training()
            guard opts.finish() else { return nil }
            return .batchNorm(norm)
        case "scale":
            guard checkArgs(s, args, names: ["factor"], required: 1, scope) else { return nil }
            guard let x = number(args[0], "scale factor", in: -1e6...1e6, scope) else { return nil }
            guard opts.finish() else { return nil }
            return .scale(x)
        case "gap", "softmax":
            guard checkArgs(s, args, names: [], required: 0, scope), opts.finish() else { return nil }
            return kind == "gap" ? .globalAvgPool : .softmax
        case _ where Activation.plain[kind] != nil:
            guard checkArgs(s, args, names: [], required: 0, scope), opts.finish() else { return nil }
            return .activation(Activation.plain[kind]!)
        case "leaky":
            guard checkArgs(s, args, names: ["slope"], required: 0, scope) else { return nil }
            var slope = 0.1
            if let a = args.first { guard let v = number(a, "leaky slope", in: 0...1, scope) else { return nil }; slope = v }
            guard opts.finish() else { return nil }
            return .activation(.leaky(slope))
        case "dropout":
            guard checkArgs(s, args, names: ["drop probability"], required: 1, scope) else { return nil }
            guard let p = number(args[0], "dropout probability", in: 0...0.999999, scope, hint: " (the fraction of units dropped, e.g. 0.5)") else { return nil }
            guard opts.finish() else { return nil }
            return .dropout(p)
        case "fc":
            guard checkArgs(s, args, names: ["output units"], required: 1, scope) else { return nil }
            guard let n = integer(args[0], "number of output units", in: 1...1_048_576, scope) else { return nil }
            let act = opts.activation(default: .none)
            let bias = opts.bias(default: true)
            let initializer = opts.weightInit(allowed: ["he", "torch"])
            let training = opts.training()
            guard opts.finish() else { return nil }
            var attributes = LinearAttributes(units: n, bias: bias, activation: act)
            attributes.initializer = initializer
            attributes.training = training
            return .linear(attributes)
        default:
            diagnostics.error("unknown layer '\(clipped(kind))'", at: s.keywordLocation)
            return nil
        }
    }

    /// An inception statement's checked columns and options.
    struct InceptionSpec { var widths: [Int]; var bn: Bool; var bias: Bool; var act: Activation }

    /// Checks an inception statement's columns and options (warnings included); nil after an
    /// error. Used by the sizing pass too.
    mutating func inceptionSpec(_ s: Statement, args: [Expr], options: [LayerOption], scope: Scope) -> InceptionSpec? {
        guard args.count == 6 else {
            diagnostics.error("inception takes 6 column widths <#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj>, got \(args.count)", at: s.location, notes: scope.callNotes)
            return nil
        }
        let labels = ["#1x1", "#3x3 reduce", "#3x3", "#5x5 reduce", "#5x5", "pool proj"]
        var w: [Int] = []
        for (a, l) in zip(args, labels) {
            guard let v = integer(a, "inception column \(l)", in: 0...1_048_576, scope) else { return nil }
            w.append(v)
        }
        var opts = OptionReader(options: options, layer: "inception", notes: scope.callNotes, bindings: scope.bindings)
        let bn = opts.flag("bn")
        let bias = opts.bias(default: !bn)
        let act = opts.activation(default: .relu)
        let ok = opts.finish()
        diagnostics.append(contentsOf: opts.diagnostics)
        guard ok else { return nil }
        if w[2] == 0 && w[1] > 0 { diagnostics.warning("inception has a 3x3 reduce of \(w[1]) but no 3x3 convolution; the reduction is dropped", at: args[1].location, notes: scope.callNotes) }
        if w[4] == 0 && w[3] > 0 { diagnostics.warning("inception has a 5x5 reduce of \(w[3]) but no 5x5 convolution; the reduction is dropped", at: args[3].location, notes: scope.callNotes) }
        if w[0] == 0 && w[2] == 0 && w[4] == 0 && w[5] == 0 {
            diagnostics.warning("inception module with no convolution columns passes its pooled input through", at: s.location, notes: scope.callNotes)
        }
        return InceptionSpec(widths: w, bn: bn, bias: bias, act: act)
    }

    private mutating func inception(_ s: Statement, args: [Expr], options: [LayerOption], from: Int?, scope: inout Scope) -> Int? {
        guard let spec = inceptionSpec(s, args: args, options: options, scope: scope) else { return nil }
        let w = spec.widths
        guard let from else { return nil }
        let instance = s.label.map { scoped($0, scope) } ?? generated("inception", &scope)
        guard let mid = newModule(name: instance, kind: "inception", summary: "inception<\(w.map(String.init).joined(separator: ", "))>", statement: s, parent: scope.module, scope: scope) else { return nil }
        var inner = Scope(); inner.prefix = instance + "."; inner.module = mid; inner.callNotes = scope.callNotes
        func conv(_ k: Int, _ f: Int) -> Op {
            .conv(ConvAttributes(kernel: k, stride: 1, pad: (k - 1) / 2, filters: f, bias: spec.bias, batchNorm: spec.bn, activation: spec.act))
        }
        var outs: [Int] = []
        if w[0] > 0, let n = addNode(conv(1, w[0]), inputs: [from], statement: s, baseName: instance + ".b1.conv", scope: inner) { outs.append(n) }
        for (red, out, k, b) in [(w[1], w[2], 3, "b2"), (w[3], w[4], 5, "b3")] where out > 0 {
            var cur = from
            if red > 0 { guard let r = addNode(conv(1, red), inputs: [cur], statement: s, baseName: "\(instance).\(b).reduce", scope: inner) else { return nil }; cur = r }
            guard let c = addNode(conv(k, out), inputs: [cur], statement: s, baseName: "\(instance).\(b).conv", scope: inner) else { return nil }
            outs.append(c)
        }
        guard var p = addNode(.pool(PoolAttributes(kind: .max, kernel: 3, stride: 1, pad: 1, ceil: false)), inputs: [from], statement: s, baseName: instance + ".b4.pool", scope: inner) else { return nil }
        if w[5] > 0 { guard let pr = addNode(conv(1, w[5]), inputs: [p], statement: s, baseName: instance + ".b4.proj", scope: inner) else { return nil }; p = pr }
        outs.append(p)
        return addNode(.concat, inputs: outs, statement: s, baseName: instance + ".concat", scope: inner)
    }

    /// A pyramid statement's checked arguments and options.
    struct PyramidSpec { var alpha: Double; var units: Int; var bottleneck: Bool; var multiplicative: Bool }

    /// Checks a pyramid statement's arguments and options; nil after an error. Used by the
    /// sizing pass too.
    mutating func pyramidSpec(_ s: Statement, args: [Expr], options: [LayerOption], scope: Scope) -> PyramidSpec? {
        guard checkArgs(s, args, names: ["widening α", "units per stage"], required: 2, scope) else { return nil }
        guard let alpha = number(args[0], "widening factor α", in: 0...100_000, scope),
              let units = integer(args[1], "units per stage", in: 1...10_000, scope) else { return nil }
        var opts = OptionReader(options: options, layer: "pyramid", notes: scope.callNotes, bindings: scope.bindings)
        let bottleneck = opts.flag("bottleneck")
        let multiplicative = opts.keyword("widen", allowed: ["add", "mul"], default: "add") == "mul"
        let ok = opts.finish()
        diagnostics.append(contentsOf: opts.diagnostics)
        guard ok else { return nil }
        // Checked before the input is needed, so it is reported after an earlier error too.
        if multiplicative && alpha < 1 {
            diagnostics.error("multiplicative widening needs α ≥ 1 (the final width is the input width × α)", at: args[0].location, notes: scope.callNotes)
            return nil
        }
        return PyramidSpec(alpha: alpha, units: units, bottleneck: bottleneck, multiplicative: multiplicative)
    }

    private mutating func pyramid(_ s: Statement, args: [Expr], options: [LayerOption], from: Int?, scope: inout Scope) -> Int? {
        guard let p = pyramidSpec(s, args: args, options: options, scope: scope) else { return nil }
        let (alpha, units, bottleneck, multiplicative) = (p.alpha, p.units, p.bottleneck, p.multiplicative)
        if alpha < Double(units) && units >= 4 {
            diagnostics.warning("'pyramid \(fmt(alpha)) \(units)' widens by α = \(fmt(alpha)) over 3 x \(units) units; the arguments are α, then units per stage: did you mean 'pyramid \(units) \(fmt(alpha))'?", at: s.location, notes: scope.callNotes)
        }
        guard let from else { return nil }
        let instance = s.label.map { scoped($0, scope) } ?? generated("pyramid", &scope)
        let summary = "pyramid \(sourceText(args[0].location, max: 24)) \(units)\(bottleneck ? " bottleneck" : "")\(multiplicative ? " widen=mul" : "")"
        guard let pid = newModule(name: instance, kind: "pyramid", summary: summary, statement: s, parent: scope.module, scope: scope) else { return nil }
        let ratio = bottleneck ? 4 : 1
        let totalUnits = Double(3 * units)
        var inputWidth = nodes[from].shape.channels
        var width = Double(inputWidth)
        let addRate = alpha / totalUnits
        let mulRate = multiplicative ? pow(alpha, 1.0 / totalUnits) : 1
        var cur = from
        for stage in 0..<3 {
            guard let sid = newModule(name: "\(instance).s\(stage + 1)", kind: "stage", summary: "stage \(stage + 1)", statement: s, parent: pid, scope: scope) else { return nil }
            for u in 0..<units {
                width = multiplicative ? width * mulRate : width + addRate
                let planes = Int(roundHalfEven(width))
                let stride = (stage > 0 && u == 0) ? 2 : 1
                let uname = "\(instance).s\(stage + 1).u\(u + 1)"
                guard let uid = newModule(name: uname, kind: "unit", summary: bottleneck ? "bottleneck \(inputWidth)→\(planes * ratio)" : "basic \(inputWidth)→\(planes)", statement: s, parent: sid, scope: scope) else { return nil }
                var inner = Scope(); inner.prefix = uname + "."; inner.module = uid; inner.callNotes = scope.callNotes
                func conv(_ k: Int, _ st: Int, _ f: Int, _ act: Activation) -> Op {
                    .conv(ConvAttributes(kernel: k, stride: st, pad: (k - 1) / 2, filters: f, bias: false, batchNorm: true, activation: act))
                }
                guard planes >= 1 else {
                    diagnostics.error("pyramid unit width rounds to \(planes)", at: s.location, notes: scope.callNotes)
                    return nil
                }
                guard var x = addNode(.batchNorm, inputs: [cur], statement: s, baseName: uname + ".bn", scope: inner) else { return nil }
                let convs: [(Int, Int, Int, Activation)] = bottleneck
                    ? [(1, 1, planes, .relu), (3, stride, planes, .relu), (1, 1, planes * ratio, .none)]
                    : [(3, stride, planes, .relu), (3, 1, planes, .none)]
                for (i, c) in convs.enumerated() {
                    guard let y = addNode(conv(c.0, c.1, c.2, c.3), inputs: [x], statement: s, baseName: "\(uname).conv\(i + 1)", scope: inner) else { return nil }
                    x = y
                }
                var shortcut = cur
                if stride != 1 {
                    guard let sc = addNode(.pool(PoolAttributes(kind: .avg, kernel: 2, stride: 2, pad: 0, ceil: true)), inputs: [cur], statement: s, baseName: uname + ".shortcut", scope: inner) else { return nil }
                    shortcut = sc
                }
                guard let sum = addNode(.add(zeroPad: true), inputs: [x, shortcut], statement: s, baseName: uname + ".add", scope: inner) else { return nil }
                cur = sum
                inputWidth = planes * ratio
            }
        }
        return cur
    }

    // MARK: - Nodes, names and modules

    /// Adds a module instance; nil (after an error) beyond the limits, which the sizing pass
    /// keeps from being reached.
    private mutating func newModule(name: String, kind: String, summary: String, statement s: Statement, parent: Int?, scope: Scope) -> Int? {
        nameBytes += name.utf8.count + summary.utf8.count
        if modules.count >= Elaborator.maxNodes || nameBytes > Elaborator.maxNameBytes {
            limitReached(modules.count >= Elaborator.maxNodes ? "the network expands to more than \(Elaborator.maxNodes) module instances" : "the layer and module names take more than \(Elaborator.maxNameBytes) bytes", at: s, scope)
            return nil
        }
        let depth = parent.map { modules[$0].depth + 1 } ?? 0
        modules.append(ModuleInstance(id: modules.count, name: name, kind: kind, summary: summary, location: s.location, parent: parent, depth: depth))
        return modules.count - 1
    }

    private mutating func limitReached(_ message: String, at s: Statement, _ scope: Scope) {
        if !stopped { diagnostics.error(message, at: s.location, notes: scope.callNotes) }
        stopped = true
    }

    /// Running totals of what the cost model will count, in floating point so they cannot
    /// overflow. Without these limits `input 1048576x1048576x1048576` followed by any layer
    /// crashed `dsl check` on an integer overflow while counting memory or MACs.
    private var totalElements = 0.0, totalMACs = 0.0, totalParams = 0.0
    private var tooLargeToCount = false
    /// At most 2^36 activation elements per image (the sum over all layers): 275 GB in fp32.
    /// Memory figures multiply this by up to 3 (batch norm and activation copies), by the batch
    /// (at most 10^6) and by 4 bytes, which still fits in 64 bits.
    public static let maxElements = 68_719_476_736.0
    /// At most 10^18 multiply-accumulates per image (FLOPs = 2 x MACs must fit in 64 bits).
    public static let maxMACs = 1e18
    /// At most 2^40 parameters.
    public static let maxParams = 1_099_511_627_776.0

    private mutating func withinCountingLimits(_ op: Op, inputs: [Shape], output: Shape, statement s: Statement, scope: Scope) -> Bool {
        if tooLargeToCount { return false }
        let elements = Double(output.height) * Double(output.width) * Double(output.channels)
        var macs = 0.0, params = 0.0
        switch op {
        case .conv(let c):
            let kk = Double(c.kernelHeight) * Double(c.kernelWidth), cin = Double(inputs[0].channels / max(1, c.groups)), f = Double(c.filters)
            macs = elements * kk * cin
            params = kk * cin * f + 3 * f
        case .linear(let l):
            let fin = Double(inputs[0].height) * Double(inputs[0].width) * Double(inputs[0].channels)
            macs = fin * Double(l.units)
            params = macs + Double(l.units)
        case .batchNorm:
            params = 2 * Double(output.channels)
        default:
            break
        }
        totalElements += elements; totalMACs += macs; totalParams += params
        let what: String?
        if totalElements > Elaborator.maxElements { what = "more than \(fmt(Elaborator.maxElements)) activation elements per image" }
        else if totalMACs > Elaborator.maxMACs { what = "more than 10^18 multiply-accumulates per image" }
        else if totalParams > Elaborator.maxParams { what = "more than \(fmt(Elaborator.maxParams)) parameters" }
        else { what = nil }
        guard let what else { return true }
        tooLargeToCount = true
        diagnostics.error("the network is too large to count: it needs \(what)", at: s.location, notes: scope.callNotes)
        return false
    }

    private func scoped(_ label: String, _ scope: Scope) -> String { scope.prefix + label + scope.repeatSuffix }

    private func generated(_ kind: String, _ scope: inout Scope) -> String {
        let n = (scope.counters[kind] ?? 0) + 1
        scope.counters[kind] = n
        return scope.prefix + kind + String(n)
    }

    /// Adds a node after inferring its shape; reports shape errors at the statement.
    private mutating func addNode(_ op: Op, inputs: [Int], statement s: Statement, baseName: String, scope: Scope) -> Int? {
        if nodes.count >= Elaborator.maxNodes {
            limitReached("the network expands to more than \(Elaborator.maxNodes) layers", at: s, scope)
            return nil
        }
        let ins = inputs.map { nodes[$0].shape }
        var errors: [String] = []
        var warnings: [String] = []
        guard let shape = ShapeRules.infer(op, inputs: ins, errors: &errors, warnings: &warnings) else {
            let hint = Elaborator.kerasOrderHint(op).map { "; \($0)" } ?? ""
            for e in errors { diagnostics.error(e + hint, at: s.location, notes: scope.callNotes) }
            return nil
        }
        for w in warnings { diagnostics.warning(w, at: s.location, notes: scope.callNotes) }
        guard withinCountingLimits(op, inputs: ins, output: shape, statement: s, scope: scope) else { return nil }
        var name = baseName
        if let prev = usedNames[name] {
            if s.label != nil && prev != s.location {
                diagnostics.error("layer name '\(name)' is already used", at: s.labelLocation ?? s.location, notes: [.init("first used here", at: prev)] + scope.callNotes)
                return nil
            }
            // Probing starts after the last suffix given to this name: names are never freed,
            // so the smaller ones are still taken (50,000 calls labelled alike probed 50,000^2/2).
            var i = nextSuffix[baseName] ?? 2
            while usedNames["\(baseName)_\(i)"] != nil { i += 1 }
            nextSuffix[baseName] = i + 1
            name = "\(baseName)_\(i)"
        }
        nameBytes += name.utf8.count
        if nameBytes > Elaborator.maxNameBytes {
            limitReached("the layer and module names take more than \(Elaborator.maxNameBytes) bytes", at: s, scope)
            return nil
        }
        usedNames[name] = s.location
        nodes.append(Node(id: nodes.count, name: name, op: op, inputs: inputs, shape: shape, location: s.location, module: scope.module))
        return nodes.count - 1
    }

    // MARK: - Arguments

    private mutating func checkArgs(_ s: Statement, _ args: [Expr], names: [String], required: Int, _ scope: Scope) -> Bool {
        guard case .layer(let kind, _, _, _) = s.kind else { return true }
        if args.count < required {
            let missing = names[args.count]
            let usage = Elaborator.usage[kind] ?? kind
            diagnostics.error("'\(kind)' expects \(required == names.count ? "\(required)" : "at least \(required)") argument\(required == 1 ? "" : "s") (\(usage)); missing \(missing)", at: args.last?.location ?? s.keywordLocation, notes: scope.callNotes)
            return false
        }
        if args.count > names.count {
            let usage = Elaborator.usage[kind] ?? kind
            // A misspelt flag (`valud`) is read as one more argument.
            var hint = ""
            if case .name(let w, _) = args[names.count], scope.bindings[w] == nil {
                if let example = Elaborator.valueOptionExamples[w] {
                    hint = "; '\(w)' is an option and needs a value ('\(example)')"
                } else if let f = nearMiss(w, in: Parser.flagNames.sorted()) {
                    hint = "; did you mean the option '\(f)'?"
                }
            }
            diagnostics.error("too many arguments to '\(kind)': expected \(names.count == 0 ? "none" : "at most \(names.count)") (\(usage))\(hint)", at: args[names.count].location, notes: scope.callNotes)
            return false
        }
        return true
    }

    /// Options that need a value, with an example of each (for an option written alone).
    static let valueOptionExamples: [String: String] = [
        "bias": "bias=on", "pad": "pad=1", "act": "act=relu", "slope": "slope=0.1", "widen": "widen=mul",
        "groups": "groups=32", "dilation": "dilation=2", "scale": "scale=off", "momentum": "momentum=0.4", "eps": "eps=1e-12",
        "init": "init=torch",
    ]

    /// How each layer is written, for argument-count errors.
    static let usage: [String: String] = [
        "conv": "conv KERNEL STRIDE FILTERS", "dwconv": "dwconv KERNEL STRIDE [MULTIPLIER]", "pool": "pool [max|avg] [WINDOW [STRIDE]]", "gap": "gap",
        "bn": "bn", "scale": "scale FACTOR", "relu": "relu", "softmax": "softmax", "leaky": "leaky [SLOPE]", "dropout": "dropout P",
        "fc": "fc UNITS", "pyramid": "pyramid ALPHA UNITS_PER_STAGE",
        "gelu": "gelu", "silu": "silu", "swish": "swish", "relu6": "relu6", "hardswish": "hardswish",
        "hardsigmoid": "hardsigmoid", "sigmoid": "sigmoid", "tanh": "tanh",
    ]

    /// The value of an expression under the scope's bindings; nil after an error (reported).
    mutating func evaluate(_ e: Expr, _ scope: Scope) -> Double? {
        if case .number(let v, _, _) = e { return v }
        switch evaluateExpression(e, bindings: scope.bindings, checked: true) {
        case .success(let v): return v
        case .failure(.unknownName(let n, let l)):
            var listed = ""
            if !scope.parameters.isEmpty {
                // At most eight names: a block with 100,000 parameters listed them all in
                // every such error.
                let shown = scope.parameters.prefix(8).joined(separator: ", ")
                listed = " (block parameters here: \(shown)\(scope.parameters.count > 8 ? ", ... (\(scope.parameters.count) in all)" : ""))"
                if !quiet && !diagnostics.truncated && suggestionBudget > 0 {
                    suggestionBudget -= scope.parameters.count
                    if let near = nearMiss(n, in: scope.parameters) { listed = "; did you mean '\(near)'?" + listed }
                }
            }
            diagnostics.error("unknown name '\(clipped(n))'" + listed, at: l, notes: scope.callNotes)
        case .failure(.divisionByZero(let l)):
            diagnostics.error("division by zero", at: l, notes: scope.callNotes)
        case .failure(.size(let text, let l)):
            diagnostics.error("unexpected size '\(clipped(text))' here; write a single number (a size HEIGHTxWIDTH is taken by conv's kernel and stride, pad=, dilation= and 'pool avg to')", at: l, notes: scope.callNotes)
        case .failure(.tooLarge(let l)):
            diagnostics.error("value is too large", at: l, notes: scope.callNotes)
        }
        return nil
    }

    private mutating func number(_ e: Expr, _ what: String, in range: ClosedRange<Double>, _ scope: Scope, hint: String = "") -> Double? {
        guard let v = evaluate(e, scope) else { return nil }
        guard range.contains(v) else {
            diagnostics.error("\(what) must be between \(fmt(range.lowerBound)) and \(fmt(range.upperBound)), got \(fmt(v))\(hint)", at: e.location, notes: scope.callNotes)
            return nil
        }
        return v
    }

    /// A size argument: one number (both axes) or `HEIGHTxWIDTH`; nil after an error.
    mutating func size(_ e: Expr, _ what: String, in range: ClosedRange<Int>, _ scope: Scope) -> (Int, Int)? {
        guard case .dims(let v, let text, let l) = e else {
            guard let n = integer(e, what, in: range, scope) else { return nil }
            return (n, n)
        }
        guard v.count == 2 else {
            diagnostics.error("\(what) '\(clipped(text))' has \(v.count) numbers; write one number or HEIGHTxWIDTH", at: l, notes: scope.callNotes)
            return nil
        }
        for x in v where !range.contains(x) {
            diagnostics.error("\(what) must be from \(range.lowerBound) to \(range.upperBound) on each axis, got \(x) in '\(clipped(text))'", at: l, notes: scope.callNotes)
            return nil
        }
        return (v[0], v[1])
    }

    /// `pool avg to HxW` (or `to N`): adaptive average pooling, PyTorch's bins.
    private mutating func adaptivePool(_ s: Statement, words: [(String, SourceLocation)], args: [Expr], opts: inout OptionReader, scope: Scope) -> Op? {
        if let k = words.first, k.0 != "to", k.0 != "avg" {
            diagnostics.error("adaptive pooling is average pooling only: write 'pool avg to HEIGHTxWIDTH'", at: k.1, notes: scope.callNotes)
            return nil
        }
        if words.first?.0 == "to" {
            diagnostics.error("adaptive pooling needs its kind: write 'pool avg to HEIGHTxWIDTH'", at: words[0].1, notes: scope.callNotes)
            return nil
        }
        guard let to = words.last else { return nil }
        guard args.count == 1 else {
            diagnostics.error(args.isEmpty ? "'pool avg to' needs the output size (pool avg to HEIGHTxWIDTH, e.g. 'pool avg to 7x7')"
                                           : "too many arguments to 'pool avg to': expected one output size (pool avg to HEIGHTxWIDTH)",
                              at: args.count > 1 ? args[1].location : to.1, notes: scope.callNotes)
            return nil
        }
        guard let (h, w) = size(args[0], "adaptive pooling output size", in: 1...1_048_576, scope) else { return nil }
        guard opts.finish() else { return nil }
        return .adaptiveAvgPool(height: h, width: w)
    }

    mutating func integer(_ e: Expr, _ what: String, in range: ClosedRange<Int>, _ scope: Scope) -> Int? {
        guard let v = evaluate(e, scope) else { return nil }
        guard v.rounded() == v else {
            diagnostics.error("\(what) must be a whole number, got \(fmt(v))", at: e.location, notes: scope.callNotes)
            return nil
        }
        guard v >= Double(range.lowerBound) && v <= Double(range.upperBound) else {
            diagnostics.error("\(what) must be \(range.upperBound >= 1_000_000 ? "at least \(range.lowerBound) (and at most \(range.upperBound))" : "from \(range.lowerBound) to \(range.upperBound)"), got \(fmt(v))", at: e.location, notes: scope.callNotes)
            return nil
        }
        return Int(v)
    }

    // MARK: - Lints

    /// For a convolution written in Keras's order (`conv 32 3 1`: filters, kernel, stride): a
    /// kernel of 16 or more with one or two filters and a stride that could be a kernel size.
    static func kerasOrderHint(_ op: Op) -> String? {
        guard case .conv(let c) = op, let sq = c.square, sq.kernel >= 16, c.filters <= 2, sq.stride <= 11 else { return nil }
        return "dsl writes conv KERNEL STRIDE FILTERS (Keras writes the filters first): did you mean 'conv \(sq.stride) \(c.filters) \(sq.kernel)'?"
    }

    /// Whether an activation ending a network is an output nonlinearity by design (a sigmoid
    /// for multi-label or binary outputs, tanh for a bounded regression), not a slip.
    static func isOutputSquash(_ a: Activation) -> Bool {
        a == .sigmoid || a == .hardsigmoid || a == .tanh
    }

    /// Whether a node applies a nonlinearity to its output (a standalone activation, or a
    /// convolution or fc with one).
    static func activation(of n: Node) -> Activation? {
        switch n.op {
        case .activation(let a) where a != .none: return a
        case .conv(let c) where c.activation != .none: return c.activation
        case .linear(let l) where l.activation != .none: return l.activation
        default: return nil
        }
    }

    private mutating func lint(_ g: Graph) {
        let consumers = g.consumers()
        // Logits through an activation: a ReLU before the softmax (or ending a classifier head)
        // keeps every score at or above 0.
        func logitsLint(_ n: Node, _ a: Activation, before: String) {
            let what: String
            switch a {
            case .relu: what = "a ReLU"
            case .leaky: what = "a leaky ReLU"
            case .relu6: what = "a ReLU6"
            case .gelu: what = "a GELU"
            case .silu: what = "a SiLU"
            case .hardswish: what = "a hard-swish"
            case .hardsigmoid: what = "a hard-sigmoid"
            case .sigmoid: what = "a sigmoid"
            case .tanh: what = "a tanh"
            case .none: return
            }
            let fix: String
            switch n.op {
            case .conv, .linear: fix = "write act=linear on '\(n.name)'"
            default: fix = "remove '\(n.name)'"
            }
            diagnostics.warning("\(what) on the logits \(before): the class scores cannot go below 0 (or are squashed), which slows or stops learning; \(fix)", at: n.location)
        }
        let last = g.nodes[g.output]
        if case .softmax = last.op, let i = last.inputs.first, let a = Elaborator.activation(of: g.nodes[i]) {
            logitsLint(g.nodes[i], a, before: "right before softmax")
        } else if case .activation(let a) = last.op, a != .none, !Elaborator.isOutputSquash(a), let i = last.inputs.first, case .linear = g.nodes[i].op {
            logitsLint(last, a, before: "at the network's end")
        } else if case .linear(let l) = last.op, l.activation != .none, !Elaborator.isOutputSquash(l.activation) {
            logitsLint(last, l.activation, before: "at the network's end")
        }
        for n in g.nodes {
            if let hint = Elaborator.kerasOrderHint(n.op), case .conv(let c) = n.op, let sq = c.square {
                diagnostics.warning("'conv \(sq.kernel) \(sq.stride) \(c.filters)' is a \(sq.kernel)x\(sq.kernel) kernel with \(c.filters) filter\(c.filters == 1 ? "" : "s"); \(hint)", at: n.location)
            }
        }
        // Dropout after the classifier: nothing trainable follows it.
        var lastTrainable = -1
        for n in g.nodes { if case .conv = n.op { lastTrainable = n.id }; if case .linear = n.op { lastTrainable = n.id } }
        for n in g.nodes {
            if case .dropout = n.op, lastTrainable >= 0, n.id > lastTrainable {
                diagnostics.warning("dropout after the classifier has no effect on what is learned and scrambles the outputs; place it before the last layer", at: n.location)
            }
            if case .softmax = n.op {
                if n.id != g.output { diagnostics.warning("softmax is not the last layer; layers after it see probabilities", at: n.location) }
                if n.shape.height != 1 || n.shape.width != 1 {
                    diagnostics.warning("softmax over a \(n.shape.height)x\(n.shape.width) map; add 'gap' or 'fc' before it to classify whole images", at: n.location)
                }
            }
            if case .activation = n.op, let i = n.inputs.first, consumers[i].count == 1 {
                if case .activation = g.nodes[i].op { diagnostics.warning("two activations in a row", at: n.location) }
                if case .conv(let c) = g.nodes[i].op, c.activation != .none { diagnostics.warning("activation after a convolution that already applies one", at: n.location) }
            }
            if case .batchNorm = n.op, let i = n.inputs.first, case .batchNorm = g.nodes[i].op {
                diagnostics.warning("two batch norms in a row", at: n.location)
            }
        }
    }
}

private extension StatementKind {
    var keyword: String {
        switch self {
        case .network: return "network"
        case .input: return "input"
        case .block: return "block"
        default: return "statement"
        }
    }
}

/// Formats a number without a trailing `.0` when whole.
func fmt(_ v: Double) -> String {
    if v.rounded() == v && abs(v) < 1e15 { return String(Int(v)) }
    return String(v)
}

/// Python's `round`: to the nearest integer, ties to even.
public func roundHalfEven(_ x: Double) -> Double { x.rounded(.toNearestOrEven) }

/// Reads a layer's options, reporting unknown, duplicate and ill-typed ones.
struct OptionReader {
    var options: [LayerOption]
    var layer: String
    var used: Set<Int> = []
    var diagnostics = DiagnosticBag()
    var notes: [Diagnostic.Note]
    var bindings: [String: Double]
    var known: [String] = []
    var failed = false
    /// Options already reported as given twice (not reported again as unknown).
    var duplicates: Set<Int> = []

    init(options: [LayerOption], layer: String, notes: [Diagnostic.Note], bindings: [String: Double]) {
        self.options = options
        self.layer = layer
        self.notes = notes
        self.bindings = bindings
        var seen: [String: SourceLocation] = [:]
        for (i, o) in options.enumerated() {
            let canonical = OptionReader.canonical(o.name)
            if let prev = seen[canonical] {
                diagnostics.error("option '\(o.name)' is given twice", at: o.nameLocation, notes: [.init("first given here", at: prev)])
                failed = true
                duplicates.insert(i)
            }
            seen[canonical] = o.nameLocation
        }
    }

    static func canonical(_ n: String) -> String {
        switch n {
        case "same", "valid", "pad": return "pad"
        case "linear", "leaky", "act": return "act"
        case _ where Activation.plain[n] != nil: return "act"
        case "nobias", "bias": return "bias"
        case "ceil", "floor": return "round"
        default: return n
        }
    }

    private mutating func take(_ names: Set<String>) -> (Int, LayerOption)? {
        known.append(contentsOf: names)
        for (i, o) in options.enumerated() where names.contains(o.name) && !used.contains(i) {
            used.insert(i)
            return (i, o)
        }
        return nil
    }

    /// The words an on/off option accepts as its value (Grammar.md, section 2.3).
    static let onWords: Set<String> = ["on", "true", "yes"]
    static let offWords: Set<String> = ["off", "false", "no"]

    /// The value of an on/off option written `NAME=VALUE`: on, true, yes or off, false, no;
    /// nil (after one error, with a suggestion for a near miss) for anything else.
    private mutating func onOff(_ name: String, _ v: Expr, alone: Bool) -> Bool? {
        if case .name(let w, _) = v {
            if OptionReader.onWords.contains(w) { return true }
            if OptionReader.offWords.contains(w) { return false }
        }
        let written: String
        switch v {
        case .name(let w, _): written = "'\(clipped(w))'"
        case .number(_, let t, _): written = "'\(clipped(t))'"
        default: written = "an expression"
        }
        let how: String
        if case .name(let w, _) = v, let n = nearMiss(w, in: ["on", "off", "true", "false", "yes", "no"]) {
            how = "did you mean '\(name)=\(n)'?"
        } else {
            how = alone ? "write '\(name)' or '\(name)=on' to turn it on, '\(name)=off' to turn it off" : "write '\(name)=on' or '\(name)=off'"
        }
        diagnostics.error("'\(name)' takes on or off (or yes/no, true/false), not \(written); \(how)", at: v.location, notes: notes)
        failed = true
        return nil
    }

    mutating func flag(_ name: String) -> Bool {
        guard let (_, o) = take([name]) else { return false }
        if let v = o.value { return onOff(name, v, alone: true) ?? true }
        return true
    }

    mutating func keyword(_ name: String, allowed: [String], default d: String) -> String {
        guard let (_, o) = take([name]) else { return d }
        guard let v = o.value, case .name(let w, _) = v, allowed.contains(w) else {
            var near = ""
            if let v = o.value, case .name(let w, _) = v, let n = nearMiss(w, in: allowed) { near = "; did you mean '\(n)'?" }
            diagnostics.error("'\(name)' must be one of \(allowed.joined(separator: ", "))\(near)", at: o.value?.location ?? o.nameLocation, notes: notes)
            failed = true
            return d
        }
        return w
    }

    mutating func bias(default d: Bool) -> Bool {
        guard let (_, o) = take(["bias", "nobias"]) else { return d }
        if o.name == "nobias" { if o.value != nil { diagnostics.error("'nobias' takes no value", at: o.location, notes: notes); failed = true }; return false }
        guard let v = o.value else {
            diagnostics.error("'bias' is on or off: write 'bias=on' or 'bias=off' ('nobias' for off)", at: o.nameLocation, notes: notes)
            failed = true
            return d
        }
        return onOff("bias", v, alone: false) ?? d
    }

    mutating func activation(default d: Activation) -> Activation {
        let result = activationAndSlope(default: d)
        // `slope=` with a ReLU or no activation was accepted and silently ignored.
        var isLeaky = false
        if case .leaky = result { isLeaky = true }
        if let (_, s) = slopeOption, !isLeaky {
            diagnostics.error("'slope' only applies to a leaky activation (add 'leaky' or 'act=leaky')", at: s.nameLocation, notes: notes)
            failed = true
        }
        return result
    }

    private var slopeOption: (Int, LayerOption)?

    private mutating func activationAndSlope(default d: Activation) -> Activation {
        var slope = 0.1
        slopeOption = take(["slope"])
        if let (_, s) = slopeOption {
            if let v = s.value, case .number(let x, _, _) = v, x >= 0, x <= 1 { slope = x }
            else { diagnostics.error("'slope' must be a number from 0 to 1", at: s.value?.location ?? s.nameLocation, notes: notes); failed = true }
        }
        guard let (_, o) = take(Set(["act", "leaky", "linear"]).union(Activation.plain.keys)) else { return d }
        var word = o.name
        if o.name == "act" {
            guard let v = o.value, case .name(let w, _) = v else {
                diagnostics.error("'act' must be one of \(OptionReader.activationWords.joined(separator: ", "))", at: o.value?.location ?? o.nameLocation, notes: notes)
                failed = true
                return d
            }
            word = w
        } else if let v = o.value {
            diagnostics.error("'\(o.name)' takes no value", at: v.location, notes: notes); failed = true
        }
        switch word {
        case "leaky": return .leaky(slope)
        case "linear", "none": return .none
        case _ where Activation.plain[word] != nil: return Activation.plain[word]!
        default:
            let expected = "expected " + OptionReader.activationWords.dropLast().joined(separator: ", ") + " or " + OptionReader.activationWords.last!
            let near = nearMiss(word, in: OptionReader.activationWords).map { "did you mean '\($0)'? (\(expected))" } ?? expected
            diagnostics.error("unknown activation '\(clipped(word))'; \(near)", at: o.value?.location ?? o.nameLocation, notes: notes)
            failed = true
            return d
        }
    }

    /// The words `act=` takes.
    static let activationWords = ["relu", "leaky", "linear", "none", "gelu", "silu", "swish", "relu6", "hardswish", "hardsigmoid", "sigmoid", "tanh"]

    /// A number-valued option `NAME=X` in `range` (an expression); nil when not given or wrong
    /// (reported, naming the option and `what` it means).
    mutating func numberValue(_ name: String, in range: ClosedRange<Double>, exclusiveLower: Bool = false, what: String) -> Double? {
        guard let (_, o) = take([name]) else { return nil }
        var e = ExprEvaluator(bindings: bindings)
        if let v = o.value, let x = e.evaluate(v), range.contains(x), !(exclusiveLower && x == range.lowerBound) { return x }
        let bounds = exclusiveLower ? "greater than \(fmt(range.lowerBound)) and at most \(fmt(range.upperBound))" : "from \(fmt(range.lowerBound)) to \(fmt(range.upperBound))"
        diagnostics.error("'\(name)' must be a number \(bounds) (\(what))", at: o.value?.location ?? o.nameLocation, notes: notes)
        failed = true
        return nil
    }

    /// A batch norm's `scale=on|off`, `momentum=X` and `eps=X`, each name after `prefix`
    /// (`bn-` on a convolution). Only read when the layer has a batch norm (`fused`): otherwise
    /// they are left for `finish` to report, with a hint to add `bn`.
    mutating func batchNormSettings(prefix: String, fused: Bool) -> BatchNormAttributes {
        var b = BatchNormAttributes()
        guard fused else {
            for name in ["scale", "momentum", "eps"] where location(prefix + name) != nil {
                let o = options.firstIndex { $0.name == prefix + name }!
                used.insert(o)
                diagnostics.error("'\(prefix + name)' sets the batch norm of the convolution, which has none; add 'bn'", at: options[o].nameLocation, notes: notes)
                failed = true
            }
            known.append(contentsOf: ["scale", "momentum", "eps"].map { prefix + $0 })
            return b
        }
        if let (_, o) = take([prefix + "scale"]) {
            if let v = o.value { b.scale = onOff(prefix + "scale", v, alone: false) ?? true }
            else {
                diagnostics.error("'\(prefix)scale' is on or off: write '\(prefix)scale=off' for a batch norm without a learned scale", at: o.nameLocation, notes: notes)
                failed = true
            }
        }
        if let m = numberValue(prefix + "momentum", in: 0...1, what: "PyTorch's momentum: the fraction of the batch statistic mixed into the running statistic") { b.momentum = m }
        if let e = numberValue(prefix + "eps", in: 0...1, exclusiveLower: true, what: "added to the variance") { b.epsilon = e }
        return b
    }

    /// `init=WORD` among `allowed` (default `he`) and, for `init=whiten`, `whiten-eps=X`
    /// (default 5e-4).
    mutating func weightInit(allowed: [String]) -> WeightInit {
        var result = WeightInit.he
        if let (_, o) = take(["init"]) {
            if let v = o.value, case .name(let w, _) = v, allowed.contains(w) {
                switch w {
                case "torch": result = .torch
                case "dirac": result = .dirac
                case "whiten": result = .whiten(epsilon: 5e-4)
                default: result = .he
                }
            } else {
                var near = ""
                if let v = o.value, case .name(let w, _) = v, let n = nearMiss(w, in: allowed) { near = "; did you mean '\(n)'?" }
                diagnostics.error("'init' must be one of \(allowed.joined(separator: ", "))\(near)", at: o.value?.location ?? o.nameLocation, notes: notes)
                failed = true
            }
        }
        if allowed.contains("whiten") {
            let eps = numberValue("whiten-eps", in: 0...1e6, exclusiveLower: true, what: "added to each eigenvalue of the patch covariance")
            if let eps {
                if case .whiten = result { result = .whiten(epsilon: eps) }
                else if !failed {
                    diagnostics.error("'whiten-eps' only applies to 'init=whiten'", at: location("whiten-eps") ?? .start, notes: notes)
                    failed = true
                }
            }
        }
        return result
    }

    /// `freeze` (everything), `freeze=weight|bias|all` and `train-epochs=N` (1 to 1,000,000).
    mutating func training() -> LayerTraining {
        var t = LayerTraining()
        if let (_, o) = take(["freeze"]) {
            var word = "all"
            if let v = o.value {
                if case .name(let w, _) = v, ["weight", "bias", "all"].contains(w) { word = w }
                else {
                    var near = ""
                    if case .name(let w, _) = v, let n = nearMiss(w, in: ["weight", "bias", "all"]) { near = "; did you mean '\(n)'?" }
                    diagnostics.error("'freeze' must be weight, bias or all ('freeze' alone is all)\(near)", at: v.location, notes: notes)
                    failed = true
                    word = ""
                }
            }
            t.frozenWeight = word == "weight" || word == "all"
            t.frozenBias = word == "bias" || word == "all"
        }
        if let (_, o) = take(["train-epochs"]) {
            var e = ExprEvaluator(bindings: bindings)
            if let v = o.value, let x = e.evaluate(v), x.rounded() == x, x >= 1, x <= 1_000_000 { t.epochs = Int(x) }
            else {
                diagnostics.error("'train-epochs' must be a whole number from 1 to 1000000 (the layer's parameters train in the first N epochs only; 'freeze' never trains them)", at: o.value?.location ?? o.nameLocation, notes: notes)
                failed = true
            }
        }
        return t
    }

    /// Where an option was written, if it was.
    func location(_ name: String) -> SourceLocation? {
        options.first { $0.name == name }?.location
    }

    /// A whole number or a `HEIGHTxWIDTH` size as an option value, each in `range`; nil after
    /// an error (reported, naming the option).
    private mutating func sizeValue(_ o: LayerOption, in range: ClosedRange<Int>, what: String) -> (Int, Int)? {
        var result: (Int, Int)?
        if let v = o.value {
            if case .dims(let d, _, _) = v {
                if d.count == 2 && d.allSatisfy(range.contains) { result = (d[0], d[1]) }
            } else {
                var e = ExprEvaluator(bindings: bindings)
                if let x = e.evaluate(v), x.rounded() == x, x >= Double(range.lowerBound), x <= Double(range.upperBound) { result = (Int(x), Int(x)) }
            }
        }
        if result == nil {
            diagnostics.error("'\(o.name)' must be a whole number from \(range.lowerBound) to \(range.upperBound)\(what)", at: o.value?.location ?? o.nameLocation, notes: notes)
            failed = true
        }
        return result
    }

    /// `dilation=D` or `dilation=DHxDW` (1 to 1024 each; default 1).
    mutating func dilation() -> (Int, Int)? {
        guard let (_, o) = take(["dilation"]) else { return (1, 1) }
        return sizeValue(o, in: 1...1024, what: ", or HEIGHTxWIDTH (1 is a dense kernel)")
    }

    /// `groups=G` (1 to 1,048,576); nil when not given or wrong (`failed` tells which).
    mutating func groups() -> Int? {
        guard let (_, o) = take(["groups"]) else { return nil }
        var e = ExprEvaluator(bindings: bindings)
        guard let v = o.value, let x = e.evaluate(v), x.rounded() == x, x >= 1, x <= 1_048_576 else {
            diagnostics.error("'groups' must be a whole number from 1 to 1048576 (input channels and filters are split into that many groups)", at: o.value?.location ?? o.nameLocation, notes: notes)
            failed = true
            return nil
        }
        return Int(x)
    }

    /// A convolution's padding per side (top, left, bottom, right): `pad=N` (all sides),
    /// `pad=PHxPW` (top and bottom, left and right), `pad=TxLxBxR` (each side), `same`
    /// (dilation·(K − 1)/2 per axis, odd kernels) or `valid` (0). Default: dilation·(K − 1)/2
    /// per axis, rounded down (any kernel; an even one shrinks the output by one).
    mutating func convPadding(kernel k: (Int, Int), dilation d: (Int, Int)) -> (top: Int, left: Int, bottom: Int, right: Int)? {
        let same = (top: d.0 * (k.0 - 1) / 2, left: d.1 * (k.1 - 1) / 2, bottom: d.0 * (k.0 - 1) / 2, right: d.1 * (k.1 - 1) / 2)
        guard let (_, o) = take(["pad", "same", "valid"]) else { return same }
        let forms = "same, valid or a whole number from 0 to 1024 (or PHxPW, rows x columns, or TOPxLEFTxBOTTOMxRIGHT)"
        var word: String? = o.name == "pad" ? nil : o.name
        if o.name == "pad" {
            guard let v = o.value else {
                diagnostics.error("'pad' needs a value: \(forms)", at: o.nameLocation, notes: notes)
                failed = true; return nil
            }
            switch v {
            case .dims(let p, _, _):
                guard (p.count == 2 || p.count == 4) && p.allSatisfy({ $0 <= 1024 }) else {
                    diagnostics.error("padding must be \(forms)", at: v.location, notes: notes)
                    failed = true; return nil
                }
                return p.count == 2 ? (p[0], p[1], p[0], p[1]) : (p[0], p[1], p[2], p[3])
            case .name(let w, _) where bindings[w] == nil:
                word = w
            default:
                var e = ExprEvaluator(bindings: bindings)
                guard let x = e.evaluate(v), x.rounded() == x, x >= 0, x <= 1024 else {
                    diagnostics.error("padding must be \(forms)", at: v.location, notes: notes)
                    failed = true; return nil
                }
                return (Int(x), Int(x), Int(x), Int(x))
            }
        } else if let v = o.value {
            diagnostics.error("'\(o.name)' takes no value", at: v.location, notes: notes); failed = true; return nil
        }
        switch word {
        case "same":
            if k.0 % 2 == 0 || k.1 % 2 == 0 {
                diagnostics.error("'same' padding needs an odd kernel size (got \(k.0 == k.1 ? "\(k.0)" : "\(k.0)x\(k.1)")); give pad=N explicitly", at: o.location, notes: notes)
                failed = true; return nil
            }
            return same
        case "valid": return (0, 0, 0, 0)
        default:
            let expected = "expected same, valid or a number (or a size such as 0x3)"
            let near = nearMiss(word ?? "", in: ["same", "valid"]).map { "did you mean '\($0)'? (\(expected))" } ?? expected
            diagnostics.error("unknown padding '\(clipped(word ?? ""))'; \(near)", at: o.value?.location ?? o.nameLocation, notes: notes)
            failed = true; return nil
        }
    }

    mutating func padding(kernel k: Int, defaultSame: Bool, defaultPad: Int = 0) -> Int? {
        guard let (_, o) = take(["pad", "same", "valid"]) else {
            // Default 'same' padding: (k-1)/2 each side; for an even kernel that is floor((k-1)/2),
            // so the output shrinks by one (Grammar.md documents it).
            if defaultSame { return (k - 1) / 2 }
            return defaultPad
        }
        var word: String? = o.name == "pad" ? nil : o.name
        if o.name == "pad" {
            guard let v = o.value else {
                diagnostics.error("'pad' needs a value: same, valid or a number", at: o.nameLocation, notes: notes)
                failed = true; return nil
            }
            switch v {
            case .name(let w, _) where bindings[w] == nil: word = w
            default:
                var e = ExprEvaluator(bindings: bindings)
                guard let x = e.evaluate(v), x.rounded() == x, x >= 0, x <= 1024 else {
                    diagnostics.error("padding must be same, valid or a whole number from 0 to 1024\(layer == "pool" ? " (a pooling's padding is the same on every side)" : "")", at: v.location, notes: notes)
                    failed = true; return nil
                }
                return Int(x)
            }
        } else if let v = o.value {
            diagnostics.error("'\(o.name)' takes no value", at: v.location, notes: notes); failed = true; return nil
        }
        switch word {
        case "same":
            if k % 2 == 0 {
                diagnostics.error("'same' padding needs an odd kernel size (got \(k)); give pad=N explicitly", at: o.location, notes: notes)
                failed = true; return nil
            }
            return (k - 1) / 2
        case "valid": return 0
        default:
            let expected = "expected same, valid or a number"
            let near = nearMiss(word ?? "", in: ["same", "valid"]).map { "did you mean '\($0)'? (\(expected))" } ?? expected
            diagnostics.error("unknown padding '\(clipped(word ?? ""))'; \(near)", at: o.value?.location ?? o.nameLocation, notes: notes)
            failed = true; return nil
        }
    }

    /// Option names of other frameworks (Keras, PyTorch, Caffe) and long forms, with the
    /// option that says the same here.
    static let aliases: [String: String] = [
        "padding": "pad", "activation": "act", "use_bias": "bias", "batchnorm": "bn", "batch_norm": "bn",
        "norm": "bn", "ceil_mode": "ceil", "negative_slope": "slope", "alpha": "slope",
    ]

    /// The known option an unknown one probably means: the nearest within two edits, else the
    /// alias of another framework's name, else a known option the name starts with
    /// (`activation` → `act`).
    static func suggestion(for name: String, in known: [String]) -> String? {
        if let n = nearest(name, in: known) { return n }
        let lower = name.lowercased()
        if let a = aliases[lower], known.contains(a) { return a }
        if lower.count <= 64, let p = known.filter({ $0.count >= 2 && lower.hasPrefix($0) }).max(by: { $0.count < $1.count }) { return p }
        return nil
    }

    /// Reports options nobody asked for; returns false if any option was wrong.
    mutating func finish() -> Bool {
        var expected: [String]?
        for (i, o) in options.enumerated() where !used.contains(i) && !duplicates.contains(i) {
            failed = true
            // Past the error limit the messages are dropped: do not build them.
            if diagnostics.truncated { break }
            if expected == nil { expected = Array(Set(known)).sorted() }
            let expected = expected!
            let near = OptionReader.suggestion(for: o.name, in: expected)
            let hint = near.map { "; did you mean '\($0)'?" } ?? (expected.isEmpty ? "; it takes no options" : "; expected one of \(expected.joined(separator: ", "))")
            diagnostics.error("unknown option '\(clipped(o.name))' for '\(layer)'\(hint)", at: o.nameLocation, notes: notes)
            failed = true
        }
        return !failed
    }
}

/// Evaluates constant expressions against parameter bindings (no diagnostics).
struct ExprEvaluator {
    var bindings: [String: Double]
    mutating func evaluate(_ e: Expr) -> Double? {
        try? evaluateExpression(e, bindings: bindings, checked: false).get()
    }
}

/// Why an expression has no value.
enum EvaluationError: Error {
    case unknownName(String, SourceLocation)
    /// A size (`3x3`) where a number is needed.
    case size(String, SourceLocation)
    case divisionByZero(SourceLocation)
    case tooLarge(SourceLocation)
}

/// The value of an expression, left operand first, stopping at the first error; `checked`
/// makes a result that is not finite or above 10^15 an error. Iterative (an explicit stack), so
/// a long expression cannot overflow the thread's stack, however small it is.
func evaluateExpression(_ e: Expr, bindings: [String: Double], checked: Bool) -> Result<Double, EvaluationError> {
    enum Step { case visit(Expr), negate, apply(String, SourceLocation) }
    var steps: [Step] = [.visit(e)]
    var values: [Double] = []
    while let step = steps.popLast() {
        switch step {
        case .visit(let x):
            switch x {
            case .number(let v, _, _): values.append(v)
            case .name(let n, let l):
                guard let v = bindings[n] else { return .failure(.unknownName(n, l)) }
                values.append(v)
            case .negate(let y, _): steps.append(.negate); steps.append(.visit(y))
            case .binary(let op, let a, let b, let l): steps.append(.apply(op, l)); steps.append(.visit(b)); steps.append(.visit(a))
            case .dims(_, let text, let l): return .failure(.size(text, l))
            }
        case .negate:
            values[values.count - 1] = -values[values.count - 1]
        case .apply(let op, let l):
            let y = values.removeLast(), x = values.removeLast()
            let r: Double
            switch op {
            case "+": r = x + y
            case "-": r = x - y
            case "*": r = x * y
            default:
                if y == 0 { return .failure(.divisionByZero(l)) }
                r = x / y
            }
            if checked && (!r.isFinite || abs(r) > 1e15) { return .failure(.tooLarge(l)) }
            values.append(r)
        }
    }
    return .success(values.last ?? 0)
}
