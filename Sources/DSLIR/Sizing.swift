import DSLSyntax

// The sizing pass: before a top-level statement is elaborated, how many layers, module
// instances, bytes of names and steps of work will it make? The answer is an upper bound,
// computed without building anything:
//
// * each statement is checked the way the elaborator checks it (arguments, options, block
//   arity, recursion, nesting), with its diagnostics discarded: a statement with an error
//   makes nothing, and the rest of its list is "poisoned" (the elaborator only checks
//   statements after an error, and a repeat after an error runs its body once);
// * shapes are not inferred (a shape error only makes the elaborator do less);
// * a repeat of COUNT makes COUNT times its body (once if the body makes nothing or fails);
// * a call makes one module and its block's body (after an error: no module, and the body is
//   only checked), sized once per (block, argument values, poisoned) and remembered, so a block called 3^40 times through a tree of calls is sized in
//   time linear in the spec; results that depend on the call stack (recursion or nesting
//   errors) are not remembered;
// * names are counted relative to the enclosing prefix: a call's body names are counted once
//   and then multiplied by the length of the instance prefix;
// * sizing itself counts the steps it takes and gives up (refusing the statement) past the
//   steps left: it never takes more steps than the size it computes (a remembered block adds
//   its steps without being walked again).
//
// If the statement does not fit in what is left of the limits, the error is reported at the
// innermost statement where the expansion first crosses a limit: the repeat whose later
// iterations cross it, or the layer or call that crosses it, with the notes of the calls that
// lead there. Nothing of the statement is elaborated.

/// What elaborating a statement makes (saturating; an upper bound).
struct Size: Equatable {
    /// Nodes (layers).
    var nodes = 0
    /// Module instances.
    var modules = 0
    /// Bytes of names (relative to the enclosing prefix) and module summaries, without the
    /// digits of the scope's counters (see `digitNames`).
    var names = 0
    /// Steps of work (`Elaborator.maxSteps`).
    var steps = 0
    /// Generated names (`conv3`, `stage2`) this makes in the current scope: every counter of
    /// the scope is at most this.
    var generated = 0
    /// Names that contain a counter of the current scope (a generated name and every name
    /// below a generated instance): each gets the counter's digits once the scope is closed.
    var digitNames = 0

    static func + (a: Size, b: Size) -> Size {
        Size(nodes: saturatingAdd(a.nodes, b.nodes), modules: saturatingAdd(a.modules, b.modules),
             names: saturatingAdd(a.names, b.names), steps: saturatingAdd(a.steps, b.steps),
             generated: saturatingAdd(a.generated, b.generated), digitNames: saturatingAdd(a.digitNames, b.digitNames))
    }
    static func * (a: Size, n: Int) -> Size {
        Size(nodes: saturatingMul(a.nodes, n), modules: saturatingMul(a.modules, n),
             names: saturatingMul(a.names, n), steps: saturatingMul(a.steps, n),
             generated: saturatingMul(a.generated, n), digitNames: saturatingMul(a.digitNames, n))
    }
    /// The size with the counter digits of its scope counted, `digits` bytes per counter.
    func closed(digits: Int) -> Size {
        var c = self
        c.names = saturatingAdd(names, saturatingMul(digitNames, digits))
        c.generated = 0; c.digitNames = 0
        return c
    }
    /// The bytes of names (of a closed size) once every name gets a prefix of `length` bytes.
    func names(prefix length: Int) -> Int { saturatingAdd(names, saturatingMul(saturatingAdd(nodes, modules), length)) }
    /// The number of digits of the largest counter in a scope with `generated` generated names.
    static func digits(_ generated: Int) -> Int { String(max(1, generated)).utf8.count }
}

/// The key of a remembered block size.
struct SizeKey: Hashable {
    var block: String
    var arguments: [Double]
    var poisoned: Bool
}

/// A remembered block size: the size and whether the body ends poisoned.
struct SizeResult {
    var size: Size
    var poisoned: Bool
}

/// Where the sizing pass is: the elaborator's scope, reduced to what changes sizes.
struct SizeContext {
    var scope = Elaborator.Scope()
    /// Bytes of the repeat suffix (`.2.10`) labels get here.
    var suffixLength = 0
    /// Whether an earlier error lost the cursor (the elaborator's `from == nil`).
    var poisoned = false
    /// Whether the result depends on the call stack (a recursion or nesting error was met).
    var stackDependent = false
}

/// The limit a statement would cross.
enum SizeLimit { case nodes, modules, names, steps }

extension Elaborator {
    /// Upper bound of a module summary in bytes (`summaryClipped`, plus a replacement character).
    static let summaryBound = maxSummaryLength + 4
    /// Upper bound of the names an expanded module adds below its instance name.
    static let innerNameBound = 24

    /// The total size of a spec's statements as the sizing pass computes it, before anything is
    /// elaborated (for tests: it must bound what elaboration makes).
    static func estimatedSize(of spec: SpecFile) -> Size {
        var e = Elaborator(spec: spec)
        for s in spec.statements { if case .block(let b) = s.kind, e.blocks[b.name] == nil { e.blocks[b.name] = b } }
        e.quiet = true
        e.sizingBudget = Int.max
        var ctx = SizeContext()
        var total = Size()
        for s in spec.statements {
            switch s.kind {
            case .network, .input, .block: continue
            default: total = total + e.size(of: s, &ctx)
            }
        }
        return total.closed(digits: Size.digits(total.generated))
    }

    // MARK: - Admission

    /// Sizes the whole spec, statement after statement, before anything is elaborated. If it
    /// fits in the limits, returns nil (the caller elaborates it: it cannot cross a limit, as
    /// sizes are upper bounds); otherwise returns the index of the top-level statement where the
    /// expansion first crosses a limit, and the error, located at the innermost statement there.
    mutating func admit(_ statements: [Statement]) -> (index: Int, error: Diagnostic)? {
        // The checks the sizing repeats report into a bag that is thrown away.
        let saved = diagnostics
        diagnostics = DiagnosticBag()
        quiet = true
        defer { quiet = false }
        sizingWork = 0
        sizingBudget = Elaborator.maxSteps
        sizingAborted = false
        let base = Size(nodes: nodes.count, modules: modules.count, names: nameBytes)
        var ctx = SizeContext()
        var open = Size()
        for (index, s) in statements.enumerated() {
            switch s.kind {
            case .network, .input, .block: continue
            default: break
            }
            var probe = ctx
            let size = self.size(of: s, &probe)
            let total = open + size
            // The top-level scope's counters run on from statement to statement.
            let digits = Size.digits(total.generated)
            if sizingAborted || exceeded(base, total.closed(digits: digits), prefix: 0) != nil {
                let complete = !sizingAborted
                sizingWork = 0
                sizingBudget = 2 * Elaborator.maxSteps
                sizingAborted = false
                var used = base + open.closed(digits: digits)
                let (statement, message, notes) = locate(s, size: size.closed(digits: digits), complete: complete, &ctx, used: &used, prefix: 0, digits: digits, notes: [])
                diagnostics = saved
                return (index, .error(message, at: statement.location, notes: notes))
            }
            open = total
            ctx = probe
        }
        diagnostics = saved
        return nil
    }

    /// The first limit `used + size` crosses (names prefixed by `prefix` bytes each).
    func exceeded(_ used: Size, _ size: Size, prefix: Int) -> SizeLimit? {
        if saturatingAdd(used.nodes, size.nodes) > Elaborator.maxNodes { return .nodes }
        if saturatingAdd(used.modules, size.modules) > Elaborator.maxNodes { return .modules }
        if saturatingAdd(used.names, size.names(prefix: prefix)) > Elaborator.maxNameBytes { return .names }
        if saturatingAdd(used.steps, size.steps) > Elaborator.maxSteps { return .steps }
        return nil
    }

    /// Finds the innermost statement in `s` (which does not fit) where the expansion crosses a
    /// limit; returns it with the message and the call notes. `used` is what comes before;
    /// `size` is the statement's closed size; names here get `prefix` bytes before them and
    /// the scope's counters have at most `digits` digits.
    private mutating func locate(_ s: Statement, size: Size, complete: Bool, _ ctx: inout SizeContext, used: inout Size, prefix: Int, digits: Int, notes: [Diagnostic.Note]) -> (Statement, String, [Diagnostic.Note]) {
        let used0 = used
        func report(_ what: String?, _ total: Size) -> (Statement, String, [Diagnostic.Note]) {
            let limit = complete ? (exceeded(used0, total, prefix: prefix) ?? .steps) : .steps
            return (s, Elaborator.limitMessage(limit, what: what, total: total, prefix: prefix, known: complete), notes)
        }
        if sizingAborted { return report(nil, size) }
        switch s.kind {
        case .repeatLoop(let countExpr, let body):
            guard let count = integer(countExpr, "", in: 0...100_000, ctx.scope), count > 0, ctx.scope.depth < Elaborator.maxDepth else { return report("repeat", size) }
            var inner = ctx
            inner.scope.depth += 1
            inner.suffixLength += count > 1 ? 1 + String(count).utf8.count : 0
            var probe = inner
            let once = self.size(of: body, &probe).closed(digits: digits)
            // The first iteration fits: the repetition crosses the limit.
            if sizingAborted || exceeded(used, once, prefix: prefix) == nil { return report("repeat", size) }
            if let found = locate(in: body, &inner, used: &used, prefix: prefix, digits: digits, notes: notes) { return found }
            return report("repeat", size)
        case .merge(_, let branches, _):
            guard ctx.scope.depth < Elaborator.maxDepth else { return report(nil, size) }
            for b in branches {
                var inner = ctx
                inner.scope.depth += 1
                if let found = locate(in: b, &inner, used: &used, prefix: prefix, digits: digits, notes: notes) { return found }
            }
            return report(nil, size)
        case .call(let name, let args, let options):
            guard let (def, values) = callTarget(s, name: name, args: args, options: options, scope: ctx.scope) else { return report(nil, size) }
            let (length, generated) = instanceLength(s, name, ctx)
            let instance = saturatingAdd(length, generated ? digits : 0)
            let own = ctx.poisoned ? Size(steps: Elaborator.weight(s)) : Size(modules: 1, names: saturatingAdd(instance, callSummary(name, args).utf8.count), steps: Elaborator.weight(s))
            if exceeded(used, own, prefix: prefix) != nil { return report(nil, own) }
            used = used + Size(modules: own.modules, names: own.names(prefix: prefix), steps: own.steps)
            var inner = SizeContext(scope: bodyScope(def, values, caller: ctx.scope, name: name), poisoned: ctx.poisoned)
            var probe = inner
            let body = self.size(of: def.body, &probe)
            let innerNotes = [Diagnostic.Note("in block '\(name)' called here", at: s.location)] + notes
            if let found = locate(in: def.body, &inner, used: &used, prefix: saturatingAdd(prefix, instance + 1), digits: Size.digits(body.generated), notes: innerNotes) { return found }
            return report("call", size)
        case .layer(let kind, _, _, _):
            return report(kind == "pyramid" || kind == "inception" ? kind : nil, size)
        default:
            return report(nil, size)
        }
    }

    /// The statement of `list` where the expansion crosses a limit, if one does.
    private mutating func locate(in list: [Statement], _ ctx: inout SizeContext, used: inout Size, prefix: Int, digits: Int, notes: [Diagnostic.Note]) -> (Statement, String, [Diagnostic.Note])? {
        for t in list {
            var probe = ctx
            let size = self.size(of: t, &probe).closed(digits: digits)
            if sizingAborted || exceeded(used, size, prefix: prefix) != nil {
                let complete = !sizingAborted
                return locate(t, size: size, complete: complete, &ctx, used: &used, prefix: prefix, digits: digits, notes: notes)
            }
            used = used + Size(nodes: size.nodes, modules: size.modules, names: size.names(prefix: prefix), steps: size.steps)
            ctx = probe
        }
        return nil
    }

    /// The message for a crossed limit; `what` names the statement kind for "this repeat alone
    /// would make N layers" (nil: no such clause).
    static func limitMessage(_ limit: SizeLimit, what: String?, total: Size, prefix: Int, known: Bool) -> String {
        func alone(_ n: Int, _ unit: String) -> String {
            guard let what, known else { return "" }
            let amount = n >= Int.max / 2 ? "more than 10^18" : String(n)
            return " (this \(what) alone would \(unit == "steps" ? "take" : "make") \(amount) \(unit))"
        }
        switch limit {
        case .nodes: return "the network expands to more than \(maxNodes) layers" + alone(total.nodes, "layers")
        case .modules: return "the network expands to more than \(maxNodes) module instances" + alone(total.modules, "module instances")
        case .names: return "the layer and module names take more than \(maxNameBytes) bytes" + alone(total.names(prefix: prefix), "bytes of names") + "; use shorter labels or fewer nested blocks"
        case .steps: return "the spec takes more than \(maxSteps) steps to expand" + alone(total.steps, "steps")
        }
    }

    // MARK: - Sizes

    /// The work of elaborating a statement once, without its body: one step, plus one per
    /// word, number, name, operator and option in it (one per branch of a merge).
    static func weight(_ s: Statement) -> Int {
        func exprSize(_ e: Expr) -> Int {
            var n = 0
            var stack = [e]
            while let x = stack.popLast() {
                n += 1
                switch x {
                case .number, .name, .dims: break
                case .negate(let y, _): stack.append(y)
                case .binary(_, let a, let b, _): stack.append(b); stack.append(a)
                }
            }
            return n
        }
        func options(_ o: [LayerOption]) -> Int { o.reduce(0) { $0 + 1 + ($1.value.map(exprSize) ?? 0) } }
        switch s.kind {
        case .layer(_, let words, let args, let opts): return 1 + words.count + args.reduce(0) { $0 + exprSize($1) } + options(opts)
        case .call(_, let args, let opts): return 1 + args.reduce(0) { $0 + exprSize($1) } + options(opts)
        case .repeatLoop(let count, _): return 1 + exprSize(count)
        case .merge(_, let branches, let opts): return 1 + branches.count + options(opts)
        default: return 1
        }
    }

    /// The length of the name a labelled or generated statement gets, relative to the scope's
    /// prefix and without the counter's digits; whether it is generated (has a counter).
    private func instanceLength(_ s: Statement, _ kind: String, _ ctx: SizeContext) -> (Int, Bool) {
        if let l = s.label { return (l.utf8.count + ctx.suffixLength, false) }
        return (kind.utf8.count, true)
    }

    /// The size of one named thing: `nodes` and `modules` whose names are `length` bytes
    /// (plus a counter's digits when `generated`) followed by `inner` bytes each, plus
    /// `extra` bytes (summaries).
    private func named(nodes: Int, modules: Int, _ instance: (Int, Bool), inner: Int, extra: Int) -> Size {
        let count = nodes + modules
        var size = Size(nodes: nodes, modules: modules, names: saturatingAdd(saturatingMul(count, instance.0), extra))
        size.names = saturatingAdd(size.names, saturatingMul(count - 1, inner))
        if instance.1 { size.generated = 1; size.digitNames = count }
        return size
    }

    /// The scope a call's body runs in (bindings and what sizing needs of the rest).
    private func bodyScope(_ def: BlockDefinition, _ values: [Double], caller: Scope, name: String) -> Scope {
        var scope = Scope()
        var bindings: [String: Double] = [:]
        bindings.reserveCapacity(values.count)
        for (p, v) in zip(def.parameters, values) { bindings[p.0] = v }
        scope.bindings = bindings
        scope.parameters = def.parameters.map(\.0)
        scope.callNotes = caller.callNotes
        scope.callStack = caller.callStack + [name]
        scope.depth = caller.depth + 1
        return scope
    }

    /// The size of a statement list; `ctx.poisoned` follows the list.
    mutating func size(of list: [Statement], _ ctx: inout SizeContext) -> Size {
        var total = Size()
        for s in list {
            if sizingAborted { break }
            total = total + size(of: s, &ctx)
        }
        return total
    }

    /// The size of one statement (see the top of this file). Each kind has its own function,
    /// so the frame of this one, on the stack once per level of nesting, stays small.
    mutating func size(of s: Statement, _ ctx: inout SizeContext) -> Size {
        let w = Elaborator.weight(s)
        sizingWork = saturatingAdd(sizingWork, w)
        if sizingWork > sizingBudget { sizingAborted = true }
        let own = Size(steps: w)
        if sizingAborted { return own }
        switch s.kind {
        case .invalid:
            ctx.poisoned = true
            return own
        case .network, .input, .block:
            return own
        case .repeatLoop(let countExpr, let body):
            return own + sizeOfRepeat(count: countExpr, body: body, &ctx)
        case .merge(let kind, let branches, let mergeOptions):
            return own + sizeOfMerge(s, kind: kind, branches: branches, options: mergeOptions, &ctx)
        case .call(let name, let args, let options):
            return own + sizeOfCall(s, name: name, args: args, options: options, &ctx)
        case .layer(let kind, let words, let args, let options):
            return own + sizeOfLayer(s, kind: kind, words: words, args: args, options: options, &ctx)
        }
    }

    private mutating func sizeOfRepeat(count countExpr: Expr, body: [Statement], _ ctx: inout SizeContext) -> Size {
        guard let count = integer(countExpr, "repeat count", in: 0...100_000, ctx.scope) else { ctx.poisoned = true; return Size() }
        if count == 0 { return Size() }
        if ctx.scope.depth >= Elaborator.maxDepth { ctx.poisoned = true; ctx.stackDependent = true; return Size() }
        var inner = ctx
        inner.scope.depth += 1
        inner.suffixLength += count > 1 ? 1 + String(count).utf8.count : 0
        let b = size(of: body, &inner)
        ctx.stackDependent = ctx.stackDependent || inner.stackDependent
        // After an error the elaborator runs the body once; a body that makes nothing, too.
        if inner.poisoned { ctx.poisoned = true; return b }
        if b.nodes == 0 && b.modules == 0 { return b }
        return b * count
    }

    private mutating func sizeOfMerge(_ s: Statement, kind: String, branches: [[Statement]], options: [LayerOption], _ ctx: inout SizeContext) -> Size {
        if ctx.scope.depth >= Elaborator.maxDepth { ctx.poisoned = true; ctx.stackDependent = true; return Size() }
        let op = mergeOp(s, kind: kind, options: options, scope: ctx.scope)
        var total = Size()
        var anyPoisoned = ctx.poisoned
        for b in branches {
            var inner = ctx
            inner.scope.depth += 1
            total = total + size(of: b, &inner)
            anyPoisoned = anyPoisoned || inner.poisoned
            ctx.stackDependent = ctx.stackDependent || inner.stackDependent
        }
        if anyPoisoned || op == nil || (kind != "concat" && branches.count < 2) { ctx.poisoned = true; return total }
        return total + named(nodes: 1, modules: 0, instanceLength(s, kind, ctx), inner: 0, extra: 0)
    }

    private mutating func sizeOfCall(_ s: Statement, name: String, args: [Expr], options: [LayerOption], _ ctx: inout SizeContext) -> Size {
        let stackDependent = ctx.scope.callStack.count >= Elaborator.maxCallDepth || ctx.scope.callStack.contains(name) || ctx.scope.depth >= Elaborator.maxDepth
        guard let (def, values) = callTarget(s, name: name, args: args, options: options, scope: ctx.scope) else {
            ctx.poisoned = true
            ctx.stackDependent = ctx.stackDependent || stackDependent
            return Size()
        }
        let poisoned = ctx.poisoned
        let key = SizeKey(block: name, arguments: values, poisoned: poisoned)
        let body: SizeResult
        if let known = sizeMemo[key] {
            body = known
        } else {
            var inner = SizeContext(scope: bodyScope(def, values, caller: ctx.scope, name: name), poisoned: ctx.poisoned)
            let b = size(of: def.body, &inner)
            body = SizeResult(size: b.closed(digits: Size.digits(b.generated)), poisoned: inner.poisoned)
            if inner.stackDependent { ctx.stackDependent = true } else if !sizingAborted { sizeMemo[key] = body }
        }
        ctx.poisoned = body.poisoned
        // After an error a call builds nothing (no module instance), it only checks its body.
        if poisoned { return Size(steps: body.size.steps) }
        // The instance, then every name of the body below it: `instance.` + name.
        let b = body.size
        let instance = instanceLength(s, name, ctx)
        var size = named(nodes: 0, modules: 1, instance, inner: 0, extra: callSummary(name, args).utf8.count)
        size.nodes = b.nodes
        size.modules = saturatingAdd(b.modules, 1)
        size.names = saturatingAdd(size.names, b.names(prefix: instance.0 + 1))
        size.steps = b.steps
        if instance.1 { size.digitNames = saturatingAdd(size.modules, size.nodes) }
        return size
    }

    private mutating func sizeOfLayer(_ s: Statement, kind: String, words: [(String, SourceLocation)], args: [Expr], options: [LayerOption], _ ctx: inout SizeContext) -> Size {
        switch kind {
        case "inception":
            guard let spec = inceptionSpec(s, args: args, options: options, scope: ctx.scope) else { ctx.poisoned = true; return Size() }
            if ctx.poisoned { return Size() }
            let w = spec.widths
            var n = 2 + (w[0] > 0 ? 1 : 0) + (w[5] > 0 ? 1 : 0)
            for (red, out) in [(w[1], w[2]), (w[3], w[4])] where out > 0 { n += red > 0 ? 2 : 1 }
            return named(nodes: n, modules: 1, instanceLength(s, kind, ctx), inner: Elaborator.innerNameBound, extra: Elaborator.summaryBound)
        case "pyramid":
            guard let spec = pyramidSpec(s, args: args, options: options, scope: ctx.scope) else { ctx.poisoned = true; return Size() }
            if ctx.poisoned { return Size() }
            let perUnit = spec.bottleneck ? 5 : 4
            let n = 3 * spec.units * perUnit + 2
            let m = 1 + 3 + 3 * spec.units
            return named(nodes: n, modules: m, instanceLength(s, kind, ctx), inner: Elaborator.innerNameBound, extra: m * Elaborator.summaryBound)
        default:
            guard let op = layerOp(s, kind: kind, words: words, args: args, options: options, scope: ctx.scope) else { ctx.poisoned = true; return Size() }
            if ctx.poisoned { return Size() }
            return named(nodes: 1, modules: 0, instanceLength(s, op.kindName, ctx), inner: 0, extra: 0)
        }
    }
}

/// The candidate within edit distance 2 of `word` (the closest, the first in order on ties),
/// for "did you mean" hints. Candidates whose length differs by more than 2 are skipped
/// without comparing them.
func nearest(_ word: String, in candidates: [String]) -> String? {
    let n = min(64, word.count)
    var best: (String, Int)?
    for c in candidates where abs(min(64, c.count) - n) <= 2 {
        let d = editDistance(c, word)
        if d <= 2 && (best == nil || d < best!.1) { best = (c, d) }
    }
    return best?.0
}

/// A "did you mean" for a value or a name: the nearest candidate (see `nearest`), but for a
/// word of one or two letters only a longer candidate one edit away (`of` → `off`; not
/// `x` → `bn`, nor `q` → `c`), and for three or four letters one edit at most.
func nearMiss(_ word: String, in candidates: [String]) -> String? {
    let n = word.count
    if n <= 4 {
        let limit = 1
        let near = candidates.filter { c in abs(c.count - n) <= limit && (n > 2 || c.count > n) && c != word && editDistance(c, word) <= limit }
        // `of` is one edit from `on` and from `off`: the one it begins is the likelier.
        return near.first { $0.hasPrefix(word) } ?? near.first
    }
    return nearest(word, in: candidates)
}
