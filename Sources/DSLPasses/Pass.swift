import Foundation
import DSLIR
import DSLSyntax

/// A rewrite of a spec: one of the papers' transformations (strided, all-conv, convpool,
/// reduce, gap-head).
///
/// Design: a pass is a pure function `(SpecFile) -> (SpecFile, [Change], [Diagnostic])` on the
/// statement-level AST, not on the elaborated `Graph`. The AST is the hierarchical IR of this
/// compiler: it keeps blocks, repeats, branches and modules (inception, pyramid) folded, with
/// the user's labels, expressions and comments, so a rewrite can be printed back as a spec a
/// person would have written — one changed line where one layer changed — instead of an
/// expanded list of hundreds of layers. What the AST lacks is facts (shapes, channels, the
/// attributes a bare `pool` stands for), so a pass elaborates its input once (`Analysis`) and
/// reads those facts from the graph, mapping graph nodes back to the statements that made them
/// by source location (a statement in a block body or repeat gives one node per instance, and a
/// pass only rewrites it when every instance agrees).
///
/// Because a pass edits the folded form, nothing guarantees by construction that the rewritten
/// network is the one intended, so every pass is verified afterwards (`Verifier`): the new spec
/// is printed, parsed and elaborated again, and must infer every shape without errors, keep the
/// network's input and output shapes, and give each rewritten region the output shape of the
/// region it replaced. A failed verification aborts the rewrite with a diagnostic naming the pass
/// and the layer. Passes compose by running each on the printed and re-parsed output of the
/// previous one, so every pass sees real source locations and the printer is exercised on every
/// step.
public protocol RewritePass {
    /// The name used with `--pass`.
    var name: String { get }
    /// A one-line description for `--list-passes`.
    var summary: String { get }
    /// Rewrites a spec that elaborates without errors.
    func apply(_ spec: SpecFile) -> PassResult
}

/// A pass that can leave given places alone. When a change it makes fails verification (a
/// rewrite the front end's limits cannot take, say), `Rewriter` runs it again skipping that
/// change's statement and reports a located warning there instead (an error with --strict), so
/// the output of a pass always passes the verifier. Every pass of this module is one.
public protocol SkippingRewritePass: RewritePass {
    /// Rewrites a spec, leaving unchanged every statement whose location is in `skipping`
    /// (the `location` of a `Change` the pass made in an earlier run on the same spec).
    func apply(_ spec: SpecFile, skipping: Set<SourceLocation>) -> PassResult
}

extension SkippingRewritePass {
    /// Rewrites everything the pass can.
    public func apply(_ spec: SpecFile) -> PassResult { apply(spec, skipping: []) }
}

/// One rewrite made by a pass, with what the verifier needs to check it.
public struct Change: Sendable {
    /// The pass that made it.
    public var pass: String
    /// Where it is in the text the pass read (the replaced or anchoring statement).
    public var location: SourceLocation
    /// Canonical text of the statements before (`conv 3 1 96; pool`).
    public var before: String
    /// Canonical text after (`conv 3 2 96`, or `(removed)`).
    public var after: String
    /// Why, when a policy chose something (reduction widths).
    public var note: String?
    /// Locations (in the text the pass read) of the contiguous statements replaced, in order;
    /// the last one's output is what the new statements must reproduce.
    public var beforeRegion: [SourceLocation]
    /// Paths (see `StatementPath`) of the statements that replace them in the new AST, in order.
    public var afterRegion: [[Int]]
    /// Only the spatial size must be kept (a pool projection changes a module's width).
    public var spatialOnly = false
    /// Filled in by the verifier: change in parameters, MACs, and receptive field at the
    /// region's output.
    public var deltaParams = 0
    public var deltaMACs = 0
    public var deltaReceptiveField = 0

    /// Creates a change.
    public init(pass: String, location: SourceLocation, before: String, after: String, note: String? = nil,
                beforeRegion: [SourceLocation], afterRegion: [[Int]], spatialOnly: Bool = false) {
        self.pass = pass; self.location = location; self.before = before; self.after = after; self.note = note
        self.beforeRegion = beforeRegion; self.afterRegion = afterRegion; self.spatialOnly = spatialOnly
    }
}

/// What a pass returns.
public struct PassResult {
    /// The rewritten spec.
    public var spec: SpecFile
    /// Every change, in source order.
    public var changes: [Change] = []
    /// Warnings where the pass could not apply (errors under `--strict`), notes where it chose
    /// not to; located in the text the pass read.
    public var diagnostics: [Diagnostic] = []
    /// Lines explaining policy choices (reduction widths and why).
    public var summary: [String] = []
    /// A result that leaves the spec as it is, to which a pass adds its changes.
    public init(spec: SpecFile) { self.spec = spec }
}

/// A statement's position in a tree of statement lists: `[i0, b0, i1, b1, ..., ik]` —
/// statement `i0` of the top level, its body or branch `b0` (0 for a block or repeat body),
/// statement `i1` there, and so on.
public enum StatementPath {
    /// The statement at `path`, if it exists.
    public static func resolve(_ path: [Int], in list: [Statement]) -> Statement? {
        guard let first = path.first, first >= 0, first < list.count else { return nil }
        let s = list[first]
        if path.count == 1 { return s }
        guard path.count >= 3 else { return nil }
        let bodies = StatementPath.bodies(s)
        guard path[1] >= 0, path[1] < bodies.count else { return nil }
        return resolve(Array(path.dropFirst(2)), in: bodies[path[1]])
    }

    /// The nested lists of a statement: a block's or repeat's body, a merge's branches.
    public static func bodies(_ s: Statement) -> [[Statement]] {
        switch s.kind {
        case .block(let b): return [b.body]
        case .repeatLoop(_, let body): return [body]
        case .merge(_, let branches, _): return branches
        default: return []
        }
    }

    /// A statement with its nested lists replaced.
    static func withBodies(_ s: Statement, _ bodies: [[Statement]]) -> Statement {
        var s = s
        switch s.kind {
        case .block(var b): b.body = bodies[0]; s.kind = .block(b)
        case .repeatLoop(let c, _): s.kind = .repeatLoop(count: c, body: bodies[0])
        case .merge(let k, _, let o): s.kind = .merge(kind: k, branches: bodies, options: o)
        default: break
        }
        return s
    }
}

/// Where a statement list is.
public enum ListContext: Equatable {
    case top
    case block(String)
    case repeatBody
    case branch(String)

    /// For messages: `inside block 'b'`.
    var described: String {
        switch self {
        case .top: return "at the top level"
        case .block(let n): return "inside block '\(n)'"
        case .repeatBody: return "inside a repeat"
        case .branch(let k): return "inside a '\(k)' branch"
        }
    }
}

/// Rewrites every statement list of a spec top-down: `visit` sees a list (with the path prefix
/// of its statements and its context) and may replace, insert and remove statements; then the
/// lists nested in the resulting statements are visited with their final positions.
func rewriteLists(_ list: [Statement], prefix: [Int] = [], context: ListContext = .top,
                  _ visit: (inout [Statement], [Int], ListContext) -> Void) -> [Statement] {
    var list = list
    visit(&list, prefix, context)
    for i in list.indices {
        let bodies = StatementPath.bodies(list[i])
        if bodies.isEmpty { continue }
        let inner: ListContext
        switch list[i].kind {
        case .block(let b): inner = .block(b.name)
        case .repeatLoop: inner = .repeatBody
        case .merge(let k, _, _): inner = .branch(k)
        default: inner = context
        }
        let newBodies = bodies.enumerated().map { (b, body) in
            rewriteLists(body, prefix: prefix + [i, b], context: inner, visit)
        }
        list[i] = StatementPath.withBodies(list[i], newBodies)
    }
    return list
}

/// Facts about a spec from elaborating it: the graph, costs, and which nodes each statement
/// made (by source location).
public struct Analysis {
    /// The spec analysed.
    public let spec: SpecFile
    /// The graph (nil when the spec has errors).
    public let graph: Graph?
    /// Its costs.
    public let cost: NetworkCost?
    /// Elaboration diagnostics.
    public let diagnostics: DiagnosticBag
    private let byLocation: [SourceLocation: [Int]]

    /// Elaborates a spec.
    public init(_ spec: SpecFile) {
        self.spec = spec
        let r = Elaborator.elaborate(spec, defaultName: "network")
        diagnostics = r.diagnostics
        graph = r.diagnostics.hasErrors ? nil : r.graph
        cost = graph.map(CostModel.analyze)
        var map: [SourceLocation: [Int]] = [:]
        for n in graph?.nodes ?? [] where n.id > 0 { map[n.location, default: []].append(n.id) }
        byLocation = map
    }

    /// Every node a statement made, in order (all instances).
    public func nodes(_ location: SourceLocation) -> [Int] { byLocation[location] ?? [] }

    /// The nodes made by a statement, split per instance (a statement in a block body called
    /// twice, or in a repeat, has several). A layer makes one node per instance; an inception or
    /// pyramid statement makes a module per instance, whose nodes are grouped together. Each
    /// instance's last node is its output.
    public func instances(_ location: SourceLocation) -> [[Int]] {
        guard let g = graph else { return [] }
        var groups: [Int: [Int]] = [:]
        var order: [Int] = []
        for i in nodes(location) {
            // The outermost module created by this statement, if any; else the node alone.
            var key = -1 - i
            var m = g.nodes[i].module
            while let id = m {
                if g.modules[id].location == location { key = id }
                m = g.modules[id].parent
            }
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(i)
        }
        return order.map { groups[$0]! }
    }

    /// Per instance: the output node.
    public func outputs(_ location: SourceLocation) -> [Int] { instances(location).compactMap(\.last) }

    /// Per instance: the shape flowing into the statement (its first node's first input).
    public func inputShapes(_ location: SourceLocation) -> [Shape] {
        guard let g = graph else { return [] }
        return instances(location).compactMap { inst in
            let set = Set(inst)
            for i in inst { for x in g.nodes[i].inputs where !set.contains(x) { return g.nodes[x].shape } }
            return nil
        }
    }

    /// Per instance: the output shape.
    public func outputShapes(_ location: SourceLocation) -> [Shape] {
        guard let g = graph else { return [] }
        return outputs(location).map { g.nodes[$0].shape }
    }

    /// Per instance: the op of a single-node statement (a layer).
    public func ops(_ location: SourceLocation) -> [Op] {
        guard let g = graph else { return [] }
        return nodes(location).map { g.nodes[$0].op }
    }
}

// MARK: - Building statements

extension Statement {
    /// A new layer statement placed at `location` (which the printer uses for blank lines).
    static func layer(_ kind: String, _ args: [Int], options: [LayerOption] = [], at location: SourceLocation) -> Statement {
        let exprs = args.map { Expr.number(Double($0), text: String($0), location) }
        return Statement(label: nil, labelLocation: nil, kind: .layer(kind: kind, words: [], arguments: exprs, options: options), keywordLocation: location, location: location)
    }

    /// The layer kind (`conv`, `pool`), or nil for other statements.
    var layerKind: String? {
        if case .layer(let k, _, _, _) = kind { return k }
        return nil
    }

    /// Whether this is a max-pooling layer (`pool` or `pool max`).
    var isMaxPool: Bool {
        if case .layer("pool", let words, _, _) = kind { return words.first?.0 != "avg" }
        return false
    }

    /// The layer's options (empty for other statements).
    var options: [LayerOption] {
        if case .layer(_, _, _, let o) = kind { return o }
        return []
    }

    /// What a statement is, for messages: `conv`, `block call 'b'`, `concat`.
    var described: String {
        switch kind {
        case .layer(let k, _, _, _): return "'\(k)'"
        case .call(let n, _, _): return "a call of block '\(n)'"
        case .merge(let k, _, _): return "'\(k)'"
        case .repeatLoop: return "'repeat'"
        case .block: return "a block definition"
        case .network: return "'network'"
        case .input: return "'input'"
        case .invalid: return "an invalid statement"
        }
    }
}

/// Options that set a convolution's activation, copied onto convolutions
/// a pass adds so they match their neighbours ("the network's activation").
func activationOptions(_ options: [LayerOption]) -> [LayerOption] {
    options.filter { activationOptionNames.contains($0.name) }
}

/// The option names that set an activation (`act=`, the flags `relu`, `gelu`, ...) or its slope.
let activationOptionNames: Set<String> = Set(["act", "leaky", "linear", "slope"]).union(Parser.activationNames)

/// The trailing comment of a rewritten line: the pass's note, then the comments the old
/// line(s) had, quoted and named as comments (`old comment: "16x16"`): a bare `(was: 16x16)`
/// read as the shape the line used to have.
func passComment(_ text: String, replacing old: [String?]) -> String {
    let kept = old.compactMap { $0?.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard !kept.isEmpty else { return " " + text }
    return " " + text + " (old comment" + (kept.count == 1 ? "" : "s") + ": " + kept.map { "\"" + $0 + "\"" }.joined(separator: "; ") + ")"
}

/// Activation, batch norm and bias options: a reduction in front of a convolution is built like it.
func convStyleOptions(_ options: [LayerOption]) -> [LayerOption] {
    options.filter { activationOptionNames.contains($0.name) || ["bn", "nobias", "bias"].contains($0.name) }
}

/// A numeric literal expression.
func literal(_ v: Int, at location: SourceLocation) -> Expr { .number(Double(v), text: String(v), location) }

/// The value of a literal expression, if it is one.
func literalValue(_ e: Expr) -> Double? {
    if case .number(let v, _, _) = e { return v }
    return nil
}

/// `floor((size + 2·pad − k) / stride) + 1`, the convolution output size (nil if empty).
func convOutput(_ size: Int, kernel k: Int, stride s: Int, pad p: Int) -> Int? {
    let span = size + 2 * p
    guard span >= k else { return nil }
    return (span - k) / s + 1
}

/// A diagnostic located in the text a pass read.
func passWarning(_ pass: String, _ message: String, at location: SourceLocation) -> Diagnostic {
    .warning("\(pass): cannot apply: \(message)", at: location)
}

/// A note: the pass looked here and chose not to rewrite.
func passNote(_ pass: String, _ message: String, at location: SourceLocation) -> Diagnostic {
    Diagnostic(.note, "\(pass): \(message)", at: location)
}

/// Every inception statement in a spec (for the pooling passes' "cannot rewrite inside a
/// module" warnings), with its location.
func inceptionStatements(_ list: [Statement]) -> [Statement] {
    var out: [Statement] = []
    for s in list {
        if s.layerKind == "inception" { out.append(s) }
        for b in StatementPath.bodies(s) { out += inceptionStatements(b) }
    }
    return out
}
