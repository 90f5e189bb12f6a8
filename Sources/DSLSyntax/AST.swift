/// An arithmetic expression in a spec (block arguments may be computed: `c * 2`). Only the
/// recursive cases are boxed: a literal or a name is stored in place (an argument list of
/// 40,000 literals took 150 bytes of boxes per literal).
public enum Expr: Sendable, Equatable {
    /// A literal with its source text (`96`, `0.5`).
    case number(Double, text: String, SourceLocation)
    /// A name: a block parameter, or a keyword value such as `valid` in `pad=valid`.
    case name(String, SourceLocation)
    /// `-e`
    indirect case negate(Expr, SourceLocation)
    /// `a op b` with op one of + - * /.
    indirect case binary(String, Expr, Expr, SourceLocation)
    /// A size written as a DIMS token: `1x7` (a rectangular kernel or stride, rows x columns),
    /// `0x3` (padding per axis), `1x2x0x1` (padding per side), `7x7` (an adaptive pooling's
    /// output). Not part of arithmetic: only where a layer takes a size.
    case dims([Int], text: String, SourceLocation)

    /// Expressions compare by meaning: structure and literal text, not locations. Iterative (an
    /// expression may hold `Parser.maxOperators` operators in a chain).
    public static func == (a: Expr, b: Expr) -> Bool {
        var pairs = [(a, b)]
        while let (x, y) = pairs.popLast() {
            switch (x, y) {
            case let (.number(p, t1, _), .number(q, t2, _)): if p != q || t1 != t2 { return false }
            case let (.name(p, _), .name(q, _)): if p != q { return false }
            case let (.dims(p, t1, _), .dims(q, t2, _)): if p != q || t1 != t2 { return false }
            case let (.negate(p, _), .negate(q, _)): pairs.append((p, q))
            case let (.binary(o1, l1, r1, _), .binary(o2, l2, r2, _)):
                if o1 != o2 { return false }
                pairs.append((r1, r2)); pairs.append((l1, l2))
            default: return false
            }
        }
        return true
    }

    /// Where the whole expression is.
    public var location: SourceLocation {
        switch self {
        case .number(_, _, let l), .name(_, let l), .negate(_, let l), .binary(_, _, _, let l), .dims(_, _, let l): return l
        }
    }
}

/// `name` or `name=value` after a layer's positional arguments.
public struct LayerOption: Sendable, Equatable {
    /// The option's name (`pad`, `bn`, `act`).
    public var name: String
    /// Where the name is.
    public var nameLocation: SourceLocation
    /// The value after `=`, if any.
    public var value: Expr?
    /// Creates an option.
    public init(name: String, nameLocation: SourceLocation, value: Expr?) {
        self.name = name; self.nameLocation = nameLocation; self.value = value
    }
    /// Options compare by name and value, not location.
    public static func == (a: LayerOption, b: LayerOption) -> Bool { a.name == b.name && a.value == b.value }

    /// Whether two option lists say the same thing: options are read by name, so their order
    /// does not matter (the printer writes them in a canonical order).
    public static func sameOptions(_ a: [LayerOption], _ b: [LayerOption]) -> Bool {
        guard a.count == b.count else { return false }
        var unmatched = b
        for o in a {
            guard let i = unmatched.firstIndex(of: o) else { return false }
            unmatched.remove(at: i)
        }
        return true
    }

    /// The location of the whole option.
    public var location: SourceLocation { value.map { nameLocation.through($0.location) } ?? nameLocation }
}

/// A block definition: `block name(p, q) { ... }`.
public struct BlockDefinition: Sendable, Equatable {
    /// The block's name.
    public var name: String
    /// Where the name is.
    public var nameLocation: SourceLocation
    /// Parameter names with their locations.
    public var parameters: [(String, SourceLocation)]
    /// The body.
    public var body: [Statement]

    public static func == (a: BlockDefinition, b: BlockDefinition) -> Bool {
        a.name == b.name && a.parameters.map(\.0) == b.parameters.map(\.0) && a.body == b.body
    }
}

/// What a statement says.
public enum StatementKind: Sendable, Equatable {
    /// `network NAME`
    case network(String)
    /// `input HxWxC`
    case input(height: Int, width: Int, channels: Int)
    /// `block name(params) { ... }`
    case block(BlockDefinition)
    /// A layer with positional arguments and options: `conv 3 1 96 pad=valid`, `pool max 3 2`,
    /// `dropout 0.5`, `gap`, `inception<64, 96, 128, 16, 32, 32>`, `pyramid 48 18 bottleneck`.
    /// `words` holds leading keyword arguments such as `max` in `pool max 3 2`.
    case layer(kind: String, words: [(String, SourceLocation)], arguments: [Expr], options: [LayerOption])
    /// `repeat n { ... }`
    case repeatLoop(count: Expr, body: [Statement])
    /// `concat { ... } { ... }`, `add { ... } { ... }` or `mul { ... } { ... }`: parallel
    /// branches merged; options between the keyword and the first branch (`add zeropad`).
    case merge(kind: String, branches: [[Statement]], options: [LayerOption] = [])
    /// A use of a user-defined block: `vgg(64, 2)`.
    case call(name: String, arguments: [Expr], options: [LayerOption])
    /// A statement that failed to parse (already reported); later stages stop inferring
    /// shapes after it instead of guessing.
    case invalid

    public static func == (a: StatementKind, b: StatementKind) -> Bool {
        switch (a, b) {
        case let (.network(x), .network(y)): return x == y
        case let (.input(h1, w1, c1), .input(h2, w2, c2)): return h1 == h2 && w1 == w2 && c1 == c2
        case let (.block(x), .block(y)): return x == y
        case let (.layer(k1, w1, a1, o1), .layer(k2, w2, a2, o2)):
            return k1 == k2 && w1.map(\.0) == w2.map(\.0) && a1 == a2 && LayerOption.sameOptions(o1, o2)
        case let (.repeatLoop(c1, b1), .repeatLoop(c2, b2)): return c1 == c2 && b1 == b2
        case let (.merge(k1, b1, o1), .merge(k2, b2, o2)): return k1 == k2 && b1 == b2 && LayerOption.sameOptions(o1, o2)
        case let (.call(n1, a1, o1), .call(n2, a2, o2)): return n1 == n2 && a1 == a2 && LayerOption.sameOptions(o1, o2)
        case (.invalid, .invalid): return true
        default: return false
        }
    }
}

/// One statement of a spec, with its optional label (`stem: conv 7 2 64`) and location.
public struct Statement: Sendable, Equatable {
    /// The user's name for this layer or module, if given.
    public var label: String?
    /// Where the label is.
    public var labelLocation: SourceLocation?
    /// What the statement says.
    public var kind: StatementKind
    /// The keyword that starts the statement (`conv`), for pointing at it.
    public var keywordLocation: SourceLocation
    /// The whole statement, label to last token.
    public var location: SourceLocation
    /// Comment lines directly above the statement (kept by the printer).
    public var leadingComments: [String] = []
    /// A comment at the end of the statement's (last) line: after a layer or call, or after the
    /// closing `}` of a block, repeat or merge.
    public var trailingComment: String?
    /// Comments inside the braces of a block, repeat or merge, one entry per body (per branch
    /// for a merge); empty when there are none. Kept by the printer.
    public var bodyComments: [BodyComments] = []

    /// Creates a statement.
    public init(label: String?, labelLocation: SourceLocation?, kind: StatementKind, keywordLocation: SourceLocation, location: SourceLocation) {
        self.label = label; self.labelLocation = labelLocation; self.kind = kind
        self.keywordLocation = keywordLocation; self.location = location
    }

    /// Statements compare by meaning: label and content, not locations or comments.
    public static func == (a: Statement, b: Statement) -> Bool { a.label == b.label && a.kind == b.kind }
}

/// The comments inside one pair of braces that belong to no statement in them.
public struct BodyComments: Sendable, Equatable {
    /// The comment after the opening `{` when nothing else follows it on its line
    /// (`repeat 2 {  # twice`).
    public var opening: String?
    /// Comment lines after the last statement of the body, before the closing `}` (in an empty
    /// body: every comment line inside it).
    public var closing: [String]
    /// Creates body comments.
    public init(opening: String? = nil, closing: [String] = []) { self.opening = opening; self.closing = closing }
    /// Whether there is no comment.
    public var isEmpty: Bool { opening == nil && closing.isEmpty }
}

/// A parsed spec file.
public struct SpecFile: Sendable {
    /// The file it came from.
    public var source: SourceFile
    /// Top-level statements in order.
    public var statements: [Statement]
    /// Comment lines at the top of the file, before the first statement (the header).
    public var headerComments: [String]
    /// Comments after the last statement of the file.
    public var trailingComments: [String] = []

    /// Creates a spec file.
    public init(source: SourceFile, statements: [Statement], headerComments: [String], trailingComments: [String] = []) {
        self.source = source; self.statements = statements; self.headerComments = headerComments
        self.trailingComments = trailingComments
    }

    /// Every comment the spec keeps, in source order: the header, each statement's leading
    /// comments, the comments inside its braces and its trailing comment, then the comments at
    /// the end. For a file that parses without errors this is every comment of the file (the
    /// lexer's list), and printing the spec keeps it.
    public var comments: [String] {
        var out = headerComments
        // Statement trees are at most `Parser.maxNesting` deep.
        func visit(_ list: [Statement], into out: inout [String]) {
            for s in list {
                out += s.leadingComments
                let bodies: [[Statement]]
                switch s.kind {
                case .block(let b): bodies = [b.body]
                case .repeatLoop(_, let body): bodies = [body]
                case .merge(_, let branches, _): bodies = branches
                default: bodies = []
                }
                for (i, body) in bodies.enumerated() {
                    let c = i < s.bodyComments.count ? s.bodyComments[i] : BodyComments()
                    if let o = c.opening { out.append(o) }
                    visit(body, into: &out)
                    out += c.closing
                }
                if let t = s.trailingComment { out.append(t) }
            }
        }
        visit(statements, into: &out)
        return out + trailingComments
    }
}
