/// Parses a spec, following Grammar.md: one function per grammar rule, each rule in its doc
/// comment. Errors are reported where they are detected; after an error the parser skips to the
/// next statement, so one run reports every error in the file.
public struct Parser {
    private let file: SourceFile
    private var tokens: [Token]
    private var current = 0
    private var depth = 0
    private var comments: [Lexer.Comment]
    private var nextComment = 0
    /// Every diagnostic from lexing and parsing.
    public private(set) var diagnostics: DiagnosticBag
    /// Offsets of the text the lexer could not read (it already reported it there).
    private var invalidOffsets: Set<Int> = []

    /// Deepest nesting of braces, parentheses and blocks accepted.
    public static let maxNesting = 64
    /// The most operators (`+ - * /` and unary minus) in one expression, counting those inside
    /// parentheses. Expressions are trees, and every stage walks them recursively: a chain of
    /// 60,000 `+1` on one line overflowed the stack.
    public static let maxOperators = 1000
    /// Operators in the expression being parsed, and how many expressions are open (an
    /// expression inside parentheses counts for the outermost one).
    private var operators = 0, openExpressions = 0

    /// Statement keywords that take positional arguments (other words are block calls).
    public static let layerKinds: Set<String> = Set([
        "conv", "dwconv", "pool", "gap", "bn", "relu", "leaky", "dropout", "fc", "softmax", "inception", "pyramid",
        "scale",
    ]).union(Parser.activationNames)

    /// Activations without a parameter, each a standalone layer, a flag and an `act=` value
    /// (`swish` is another name for `silu`).
    public static let activationNames: Set<String> = [
        "relu", "gelu", "silu", "swish", "relu6", "hardswish", "hardsigmoid", "sigmoid", "tanh",
    ]

    private struct ParseError: Error {}

    /// Creates a parser over a file (lexing it first).
    public init(file: SourceFile) {
        self.file = file
        var lexer = Lexer(file: file)
        self.tokens = lexer.tokenize()
        self.diagnostics = lexer.diagnostics
        self.comments = lexer.comments
        self.invalidOffsets = Set(tokens.lazy.filter { $0.kind == .invalid }.map(\.location.offset))
    }

    /// Reports a parse error, unless it points at text the lexer already rejected: `conv 3 1 8 × 2`
    /// used to get a second error, "expected an option ..., found invalid text", at the '×'.
    private mutating func report(_ message: String, at location: SourceLocation, notes: [Diagnostic.Note] = []) {
        if invalidOffsets.contains(location.offset) { return }
        diagnostics.error(message, at: location, notes: notes)
    }

    /// Parses a whole file.
    public static func parse(_ file: SourceFile) -> (SpecFile, DiagnosticBag) {
        var p = Parser(file: file)
        let spec = p.parseFile()
        return (spec, p.diagnostics)
    }

    // MARK: - Rules

    /// file = { statement } EOF
    public mutating func parseFile() -> SpecFile {
        skipSeparators()
        var header: [String] = []
        let firstLine = peek.kind == .end ? Int.max : peek.location.line
        while nextComment < comments.count && comments[nextComment].line < firstLine {
            header.append(comments[nextComment].text); nextComment += 1
        }
        let statements = statementList(until: nil)
        // Whatever is left follows the last statement.
        let trailing = comments[nextComment...].map(\.text)
        nextComment = comments.count
        return SpecFile(source: file, statements: statements, headerComments: header, trailingComments: trailing)
    }

    /// statementList = { statement ( NEWLINE | ";" ) } — ends at `}` when inside braces.
    private mutating func statementList(until closer: String?) -> [Statement] {
        var list: [Statement] = []
        while true {
            skipSeparators()
            if peek.kind == .end { return list }
            if closer != nil && peek.isSymbol("}") { return list }
            if closer == nil && peek.isSymbol("}") {
                report("unmatched '}'", at: peek.location)
                advance()
                continue
            }
            let before = current
            // Comments above the statement belong to it, not to the first statement inside
            // its braces (taken before parsing the statement's body).
            var leading: [String] = []
            while nextComment < comments.count && comments[nextComment].line < peek.location.line {
                leading.append(comments[nextComment].text); nextComment += 1
            }
            do {
                var s = try statement()
                s.leadingComments = leading
                attachComments(&s)
                list.append(s)
                try endOfStatement()
            } catch {
                let start = tokens[before].location
                synchronize()
                if current == before { advance() }
                let end = tokens[max(before, current - 1)].location
                list.append(Statement(label: nil, labelLocation: nil, kind: .invalid, keywordLocation: start, location: start.through(end)))
            }
        }
    }

    /// statement = [ label ":" ] ( network | input | block | repeat | merge | layer | call )
    private mutating func statement() throws -> Statement {
        // The enclosing statement's body comments are set aside (moved, not copied: a merge of
        // 100,000 branches copied them at every branch).
        let outer = bodyComments
        bodyComments = []
        defer { bodyComments = outer }
        var label: String?
        var labelLocation: SourceLocation?
        if peek.kind == .word || peek.kind == .number, peekNext.isSymbol(":") {
            let t = advance()
            advance() // ':'
            label = t.text; labelLocation = t.location
            if Parser.keywords.contains(t.text) || Parser.layerKinds.contains(t.text) {
                report("'\(t.text)' is a keyword and cannot name a layer", at: t.location)
            }
        }
        let start = labelLocation ?? peek.location
        let keyword = peek
        guard keyword.kind == .word else {
            report("expected a layer or statement, found \(keyword.described)", at: keyword.location)
            throw ParseError()
        }
        let kind: StatementKind
        switch keyword.text {
        case "network": kind = try networkDeclaration()
        case "input": kind = try inputDeclaration()
        case "block": kind = try blockDefinition()
        case "repeat": kind = try repeatStatement()
        case "concat", "add", "mul": kind = try mergeStatement()
        case _ where Parser.layerKinds.contains(keyword.text): kind = try layer()
        default:
            if peekNext.isSymbol("(") { kind = try call() }
            else {
                advance()
                var hint = suggestion(for: keyword.text)
                if let alias = Parser.layerAlias(for: keyword.text) {
                    // `maxpool 2` → `pool max 2`: the arguments and options as written.
                    var i = current
                    while !(tokens[i].kind == .newline || tokens[i].kind == .end || tokens[i].isSymbol(";") || tokens[i].isSymbol("}") || tokens[i].isSymbol("{")) { i += 1 }
                    let rest = i > current ? file.text(tokens[current].location.through(tokens[i - 1].location)) : ""
                    hint = alias.isEmpty ? "; \(Parser.noFlattenHint)"
                        : "; did you mean '\(alias)\(rest.isEmpty || rest.utf8.count > 80 ? "" : " " + rest)'?"
                }
                report("unknown layer '\(clipped(keyword.text))'\(hint)", at: keyword.location)
                throw ParseError()
            }
        }
        if label != nil, case .network = kind { report("a network declaration cannot have a label", at: labelLocation!) }
        if label != nil, case .block = kind { report("a block definition cannot have a label", at: labelLocation!) }
        // A label on these named nothing and was silently dropped.
        if label != nil, case .input = kind { report("an input declaration cannot have a label", at: labelLocation!) }
        if label != nil, case .repeatLoop = kind { report("a repeat cannot have a label; label the layers inside it", at: labelLocation!) }
        let end = tokens[max(0, current - 1)].location
        var s = Statement(label: label, labelLocation: labelLocation, kind: kind, keywordLocation: keyword.location, location: start.through(end))
        if bodyComments.contains(where: { !$0.isEmpty }) { s.bodyComments = bodyComments }
        return s
    }

    /// The comments of the bodies of the braced statement being parsed, in order (appended by
    /// `braced`, read when the statement is complete; nested statements set it aside).
    private var bodyComments: [BodyComments] = []

    /// network = "network" name — the name is the rest of the line (letters, digits, `-`, `_`, `.`).
    private mutating func networkDeclaration() throws -> StatementKind {
        let kw = advance()
        guard !atStatementEnd else {
            report("expected a network name after 'network'", at: kw.location)
            throw ParseError()
        }
        let first = peek
        var last = first
        var sawInvalid = false
        while !atStatementEnd { last = advance(); if last.kind == .invalid { sawInvalid = true } }
        let loc = first.location.through(last.location)
        let name = file.text(loc)
        if !sawInvalid, !name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) || name.contains(where: { !$0.isASCII }) {
            report("network name may contain only letters, digits, '-', '_' and '.'", at: loc)
        }
        return .network(name)
    }

    /// input = "input" DIMS — height x width x channels, e.g. `input 32x32x3`.
    private mutating func inputDeclaration() throws -> StatementKind {
        let kw = advance()
        let t = peek
        guard t.kind == .dims else {
            report("expected input size like 32x32x3 (height x width x channels) after 'input'", at: t.kind == .newline || t.kind == .end ? kw.location : t.location)
            throw ParseError()
        }
        advance()
        let parts = t.text.lowercased().split(separator: "x").map(String.init)
        guard parts.count == 3 else {
            report("input size needs three numbers, height x width x channels (got \(parts.count))", at: t.location)
            throw ParseError()
        }
        var values: [Int] = []
        for p in parts {
            guard let v = Int(p), v >= 1, v <= 1 << 20 else {
                report("input dimension '\(clipped(p))' must be a whole number from 1 to \(1 << 20)", at: t.location)
                throw ParseError()
            }
            values.append(v)
        }
        return .input(height: values[0], width: values[1], channels: values[2])
    }

    /// block = "block" WORD "(" [ WORD { "," WORD } ] ")" "{" statementList "}"
    private mutating func blockDefinition() throws -> StatementKind {
        let kw = advance()
        guard peek.kind == .word else {
            report("expected a block name after 'block'", at: peek.kind == .newline ? kw.location : peek.location)
            throw ParseError()
        }
        let name = advance()
        if Parser.keywords.contains(name.text) || Parser.layerKinds.contains(name.text) {
            report("'\(name.text)' is a built-in layer and cannot name a block", at: name.location)
        }
        try expect("(", "expected '(' after block name")
        var params: [(String, SourceLocation)] = []
        var seen: Set<String> = []
        if !peek.isSymbol(")") {
            repeat {
                guard peek.kind == .word, !(peek.text.first?.isNumber ?? false) else {
                    report("expected a parameter name", at: peek.location)
                    throw ParseError()
                }
                let p = advance()
                // A set, not a scan of the list: 100,000 parameters took 20 s.
                if !seen.insert(p.text).inserted {
                    report("duplicate parameter '\(p.text)'", at: p.location)
                }
                params.append((p.text, p.location))
            } while match(",")
        }
        try expect(")", "expected ')' after block parameters")
        let body = try braced(what: "block body", label: "the body of block '\(clipped(name.text))'")
        return .block(BlockDefinition(name: name.text, nameLocation: name.location, parameters: params, body: body))
    }

    /// repeat = "repeat" expr "{" statementList "}"
    private mutating func repeatStatement() throws -> StatementKind {
        let kw = advance()
        guard startsExpression else {
            report("expected a repeat count after 'repeat'", at: atStatementEnd ? kw.location : peek.location)
            throw ParseError()
        }
        let count = try expression()
        let body = try braced(what: "repeat body")
        return .repeatLoop(count: count, body: body)
    }

    /// merge = ( "concat" | "add" | "mul" ) options branch { branch } ; branch = "{" statementList "}"
    private mutating func mergeStatement() throws -> StatementKind {
        let kw = advance()
        let options = try optionList()
        var branches: [[Statement]] = []
        while peek.isSymbol("{") {
            branches.append(try braced(what: "branch", label: "branch \(branches.count + 1) of '\(kw.text)'"))
        }
        if branches.isEmpty {
            report("expected '{' to start the first branch of '\(kw.text)'", at: atStatementEnd ? (options.last?.location ?? kw.location) : peek.location)
            throw ParseError()
        }
        return .merge(kind: kw.text, branches: branches, options: options)
    }

    /// layer = KIND { keyword } { expr } { option } | "inception" "<" expr { "," expr } ">" { option }
    /// — the keywords are `pool`'s kind (`max`, `avg`) and `to` (`pool avg to 7x7`).
    private mutating func layer() throws -> StatementKind {
        let kw = advance()
        var words: [(String, SourceLocation)] = []
        var args: [Expr] = []
        if kw.text == "inception" {
            try expect("<", "expected '<' after 'inception' (inception<#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj>)")
            if !peek.isSymbol(">") {
                repeat {
                    guard startsExpression else {
                        report("expected a column width in 'inception<...>', found \(peek.described)", at: peek.location)
                        throw ParseError()
                    }
                    args.append(try expression(allowGreater: false))
                } while match(",")
            }
            try expect(">", "expected '>' after inception columns")
        } else {
            if kw.text == "pool" && peek.kind == .word && (peek.text == "max" || peek.text == "avg") {
                let w = advance(); words.append((w.text, w.location))
            }
            if kw.text == "pool" && peek.kind == .word && peek.text == "to" && !peekNext.isSymbol("=") {
                let w = advance(); words.append((w.text, w.location))
            }
            while startsExpression && !startsOption { args.append(try expression()) }
        }
        let options = try optionList()
        return .layer(kind: kw.text, words: words, arguments: args, options: options)
    }

    /// call = WORD "(" [ expr { "," expr } ] ")" { option }
    private mutating func call() throws -> StatementKind {
        let name = advance()
        try expect("(", "expected '(' after block name")
        var args: [Expr] = []
        if !peek.isSymbol(")") {
            repeat { args.append(try expression()) } while match(",")
        }
        try expect(")", "expected ')' after block arguments")
        let options = try optionList()
        return .call(name: name.text, arguments: args, options: options)
    }

    /// options = { WORD [ "=" expr ] }
    private mutating func optionList() throws -> [LayerOption] {
        var options: [LayerOption] = []
        while !atStatementEnd && !peek.isSymbol("{") {
            guard peek.kind == .word else {
                report("expected an option such as 'pad=valid' or 'bn', found \(peek.described)", at: peek.location)
                throw ParseError()
            }
            // A hyphenated option name (`train-epochs`, `bn-scale`): words and '-' with no blank between.
            let parts = hyphenatedWordTokens()
            var name = advance()
            if parts > 1 {
                for _ in 1..<parts {
                    let dash = advance(), word = advance()
                    name.text += dash.text + word.text
                    name.location = name.location.through(word.location)
                }
            }
            var value: Expr?
            if match("=") {
                guard startsExpression else {
                    report("expected a value after '\(name.text)='", at: peek.kind == .newline || peek.kind == .end ? name.location : peek.location)
                    throw ParseError()
                }
                value = try expression()
            }
            options.append(LayerOption(name: name.text, nameLocation: name.location, value: value))
        }
        return options
    }

    /// expr = term { ( "+" | "-" ) term }
    private mutating func expression(allowGreater: Bool = true) throws -> Expr {
        try nest()
        if openExpressions == 0 { operators = 0 }
        openExpressions += 1
        defer { depth -= 1; openExpressions -= 1 }
        var left = try term()
        while peek.isSymbol("+") || peek.isSymbol("-") {
            let op = advance()
            try countOperator(op)
            try notASize(left, op)
            let right = try term()
            try notASize(right, op)
            left = .binary(op.text, left, right, left.location.through(right.location))
        }
        return left
    }

    /// term = factor { ( "*" | "/" ) factor }
    private mutating func term() throws -> Expr {
        var left = try factor()
        while peek.isSymbol("*") || peek.isSymbol("/") {
            let op = advance()
            try countOperator(op)
            try notASize(left, op)
            let right = try factor()
            try notASize(right, op)
            left = .binary(op.text, left, right, left.location.through(right.location))
        }
        return left
    }

    /// A size (`1x7`) is not a number: arithmetic on it is an error.
    private mutating func notASize(_ e: Expr, _ op: Token) throws {
        guard case .dims(_, let text, let l) = e else { return }
        report("'\(clipped(text))' is a size, not a number; '\(op.text)' cannot apply to it", at: l)
        throw ParseError()
    }

    /// factor = NUMBER | WORD | DIMS | "(" expr ")" | "-" factor — a DIMS factor (`1x7`) only
    /// as a whole argument or option value, not in arithmetic.
    private mutating func factor() throws -> Expr {
        let t = peek
        switch t.kind {
        case .number:
            advance()
            guard let v = Double(t.text), v.isFinite, v <= 1e15 else {
                report("number '\(t.text.prefix(30))' is too large", at: t.location)
                throw ParseError()
            }
            return .number(v, text: t.text, t.location)
        case .word:
            advance()
            if t.text.first!.isNumber {
                report("'\(t.text.prefix(30))' is not a number", at: t.location)
                throw ParseError()
            }
            return .name(t.text, t.location)
        case .dims:
            advance()
            var values: [Int] = []
            for part in t.text.split(whereSeparator: { $0 == "x" || $0 == "X" }) {
                guard let v = Int(part), v <= 1_000_000_000_000_000 else {
                    report("number '\(part.prefix(30))' in '\(clipped(t.text))' is too large", at: t.location)
                    throw ParseError()
                }
                values.append(v)
            }
            return .dims(values, text: t.text, t.location)
        default:
            if t.isSymbol("(") {
                try nest()
                defer { depth -= 1 }
                advance()
                let e = try expression()
                try expect(")", "expected ')' to close '('")
                return e
            }
            if t.isSymbol("-") {
                advance()
                try countOperator(t)
                try nest()
                defer { depth -= 1 }
                let e = try factor()
                try notASize(e, t)
                return .negate(e, t.location.through(e.location))
            }
            report("expected a number or name, found \(t.described)", at: t.location)
            throw ParseError()
        }
    }

    /// Counts an operator of the current expression against `maxOperators`.
    private mutating func countOperator(_ op: Token) throws {
        operators += 1
        if operators > Parser.maxOperators {
            report("expression is too long (more than \(Parser.maxOperators) operators)", at: op.location)
            throw ParseError()
        }
    }

    /// What each `{` parsed so far opens (by token index), for the error of a brace that is
    /// never closed: `the repeat body`, `branch 2 of 'add'`, `the body of block 'down'`.
    private var opened: [Int: String] = [:]
    /// Set once a brace left open at the end of the file is reported (the braces around it
    /// reach the end too, and would each report it again).
    private var reportedUnclosed = false

    /// "{" statementList "}" — also collects the comments of the body into `bodyComments`.
    /// `label` names what the braces hold in the error of a `{` that is never closed.
    private mutating func braced(what: String, label: String? = nil) throws -> [Statement] {
        // `{` on the next line (Allman style): one clear error, then the body is parsed as if
        // it were on the same line. It used to give a second error at the `{` itself.
        if peek.kind == .newline {
            var i = current
            while tokens[i].kind == .newline { i += 1 }
            if tokens[i].isSymbol("{") {
                report("'{' must be on the same line as the \(what == "branch" ? "merge" : what.replacingOccurrences(of: " body", with: "")) it opens", at: tokens[i].location)
                current = i
            }
        }
        let open = peek
        let openIndex = current
        try expect("{", "expected '{' to start the \(what)")
        opened[openIndex] = label ?? "the \(what)"
        try nest()
        defer { depth -= 1 }
        var comments = BodyComments()
        // A comment after the `{`, with nothing but separators between them, is the body's
        // opening comment (`repeat 2 {  # twice`).
        var i = current
        while tokens[i].isSymbol(";") || tokens[i].kind == .invalid { i += 1 }
        if tokens[i].kind == .newline || tokens[i].kind == .end,
           nextComment < self.comments.count, self.comments[nextComment].line == open.location.line {
            comments.opening = self.comments[nextComment].text; nextComment += 1
        }
        let body = statementList(until: "}")
        guard peek.isSymbol("}") else {
            // Only the end of the file stops a body before its '}'.
            if !reportedUnclosed {
                reportedUnclosed = true
                reportUnclosed(innermost: openIndex)
            }
            throw ParseError()
        }
        // Comment lines after the last statement belong to the body, not to whatever follows it.
        while nextComment < self.comments.count && self.comments[nextComment].line < peek.location.line {
            comments.closing.append(self.comments[nextComment].text); nextComment += 1
        }
        advance()
        bodyComments.append(comments)
        return body
    }

    /// Reports the `{` that is never closed, found by the file's indentation rather than
    /// taken to be the innermost one open at the end of the file (`innermost`): a `}` indented
    /// less than the line of the `{` it closes was meant for an outer one, so that `{` is the
    /// one missing its `}` (a branch left open makes the next `}` close it, and the block
    /// around it runs to the end of the file). The error is at that `{`, with a note at the
    /// first later line indented no deeper than the `{`'s line, where the `}` probably belongs.
    private mutating func reportUnclosed(innermost: Int) {
        // Leading blanks only, read in place (a line may be megabytes long).
        func indentation(ofLineAt i: Int) -> Int {
            let line = tokens[i].location.line
            guard line >= 1 && line <= file.lineStarts.count else { return 0 }
            var k = file.lineStarts[line - 1]
            let start = k
            while k < file.bytes.count && (file.bytes[k] == UInt8(ascii: " ") || file.bytes[k] == UInt8(ascii: "\t")) { k += 1 }
            return k - start
        }
        func firstOnLine(_ i: Int) -> Bool { i == 0 || tokens[i - 1].location.line < tokens[i].location.line }
        var stack: [Int] = []
        var culprit: (open: Int, closedBy: Int)?
        for i in tokens.indices {
            if tokens[i].isSymbol("{") { stack.append(i) }
            else if tokens[i].isSymbol("}"), let o = stack.popLast(), culprit == nil,
                    firstOnLine(i), indentation(ofLineAt: i) < indentation(ofLineAt: o) {
                culprit = (o, i)
            }
        }
        let open = culprit?.open ?? innermost
        let label = opened[open] ?? "this '{'"
        var notes: [Diagnostic.Note] = []
        let openIndent = indentation(ofLineAt: open)
        var j = open + 1
        while j < tokens.count && tokens[j].kind != .end {
            if tokens[j].kind != .newline && firstOnLine(j) && indentation(ofLineAt: j) <= openIndent { break }
            j += 1
        }
        if j < tokens.count && tokens[j].kind != .end {
            notes.append(.init("'}' is probably missing before this line (the first after the '{' indented no deeper than its line)", at: tokens[j].location))
        } else {
            notes.append(.init("the file ends here", at: tokens[tokens.count - 1].location))
        }
        if let c = culprit {
            notes.append(.init("this '}' closes \(label) instead, which leaves \(opened[innermost] ?? "the '{' before it") open to the end of the file", at: tokens[c.closedBy].location))
        }
        report("\(label) is not closed: expected '}'", at: tokens[open].location, notes: notes)
    }

    // MARK: - Helpers

    /// Words that start statements or are reserved.
    static let keywords: Set<String> = ["network", "input", "block", "repeat", "concat", "add", "mul"]

    private var peek: Token { tokens[current] }
    private var peekNext: Token { tokens[min(current + 1, tokens.count - 1)] }

    @discardableResult private mutating func advance() -> Token {
        let t = tokens[current]
        if current < tokens.count - 1 { current += 1 }
        return t
    }

    private mutating func match(_ symbol: String) -> Bool {
        if peek.isSymbol(symbol) { advance(); return true }
        return false
    }

    private mutating func expect(_ symbol: String, _ message: String) throws {
        if match(symbol) { return }
        let at = peek.kind == .newline || peek.kind == .end ? tokens[max(0, current - 1)].location : peek.location
        report(message + (peek.kind == .newline || peek.kind == .end ? "" : ", found \(peek.described)"), at: at)
        throw ParseError()
    }

    private mutating func nest() throws {
        depth += 1
        if depth > Parser.maxNesting {
            report("nesting is too deep (more than \(Parser.maxNesting) levels)", at: peek.location)
            throw ParseError()
        }
    }

    private var atStatementEnd: Bool {
        peek.kind == .newline || peek.kind == .end || peek.isSymbol(";") || peek.isSymbol("}")
    }

    private var startsExpression: Bool {
        peek.kind == .number || peek.kind == .dims || peek.isSymbol("(") || peek.isSymbol("-") || (peek.kind == .word && !peekNext.isSymbol("="))
    }

    /// A word that is an option (followed by `=`, or a known flag, or a hyphenated name such as
    /// `train-epochs=`) rather than a positional name.
    private var startsOption: Bool {
        guard peek.kind == .word else { return false }
        return peekNext.isSymbol("=") || Parser.flagNames.contains(peek.text) || hyphenatedOption
    }

    /// A hyphenated word followed by `=` (`train-epochs=3`); `c-d` alone stays a subtraction.
    private var hyphenatedOption: Bool {
        let parts = hyphenatedWordTokens()
        return parts > 1 && current + 2 * parts - 1 < tokens.count && tokens[current + 2 * parts - 1].isSymbol("=")
    }

    /// How many words, joined by '-' with no blank on either side, start at the current token
    /// (1 for a plain word): `train-epochs` is 2. Option names only (in arithmetic `c-1` is a
    /// subtraction: it is not followed by a word).
    private func hyphenatedWordTokens() -> Int {
        guard peek.kind == .word else { return 0 }
        var parts = 1, i = current
        while i + 2 < tokens.count, tokens[i + 1].isSymbol("-"), tokens[i + 2].kind == .word,
              tokens[i + 1].location.offset == tokens[i].location.offset + tokens[i].location.length,
              tokens[i + 2].location.offset == tokens[i + 1].location.offset + 1 {
            parts += 1; i += 2
        }
        return parts
    }

    /// Options that may be written without a value.
    public static let flagNames: Set<String> = Set(["bn", "nobias", "ceil", "floor", "bottleneck", "same", "valid", "linear", "leaky", "zeropad", "freeze"])
        .union(Parser.activationNames)

    private mutating func endOfStatement() throws {
        if peek.kind == .newline || peek.isSymbol(";") { advance(); return }
        if peek.kind == .end || peek.isSymbol("}") { return }
        report("expected end of line after statement, found \(peek.described)", at: peek.location)
        throw ParseError()
    }

    private mutating func skipSeparators() {
        while peek.kind == .newline || peek.isSymbol(";") || peek.kind == .invalid { advance() }
    }

    /// Skips to the start of the next statement: past the end of the line, skipping whole
    /// braced groups opened on the way, stopping before a `}` that closes an enclosing group.
    private mutating func synchronize() {
        var braces = 0
        while peek.kind != .end {
            if peek.isSymbol("{") { braces += 1 }
            else if peek.isSymbol("}") {
                if braces == 0 { return }
                braces -= 1
                if braces == 0 { advance(); if peek.kind == .newline || peek.isSymbol(";") { advance() }; return }
            } else if (peek.kind == .newline || peek.isSymbol(";")) && braces == 0 {
                advance(); return
            }
            advance()
        }
    }

    /// Takes the comment at the end of the statement's last line (for a block, repeat or merge:
    /// after its closing `}`) as its trailing comment, when nothing but `;` separates them: in
    /// `gap ; softmax  # c` the comment is softmax's, in `repeat 2 { relu }  # c` the repeat's.
    private mutating func attachComments(_ s: inout Statement) {
        while nextComment < comments.count && comments[nextComment].line < s.location.line {
            s.leadingComments.append(comments[nextComment].text); nextComment += 1
        }
        if case .invalid = s.kind { return }
        var i = current
        while tokens[i].isSymbol(";") || tokens[i].kind == .invalid { i += 1 }
        guard tokens[i].kind == .newline || tokens[i].kind == .end else { return }
        let endLine = file.line(of: s.location.offset + max(0, s.location.length - 1))
        if nextComment < comments.count && comments[nextComment].line == endLine && !comments[nextComment].wholeLine {
            s.trailingComment = comments[nextComment].text; nextComment += 1
        }
    }

    /// What `fc` does that a flatten layer does in other frameworks.
    public static let noFlattenHint = "'fc' flattens its input itself (there is no flatten layer)"

    /// Layer names of other frameworks (Keras, PyTorch, Caffe), lowercased without `_`, and how
    /// the layer is written here ("" for flatten, which is not needed).
    static let layerAliases: [String: String] = [
        "maxpool": "pool max", "maxpool2d": "pool max", "maxpooling": "pool max", "maxpooling2d": "pool max",
        "avgpool": "pool avg", "avgpool2d": "pool avg", "averagepool": "pool avg", "averagepooling2d": "pool avg",
        "averagepooling": "pool avg",
        "globalavgpool": "gap", "globalaveragepool": "gap", "globalaveragepooling2d": "gap", "globalavgpool2d": "gap",
        "adaptiveavgpool2d": "pool avg to", "adaptiveavgpool": "pool avg to", "globalpool": "gap",
        "depthwiseconv2d": "dwconv", "depthwiseconv": "dwconv", "hswish": "hardswish", "hsigmoid": "hardsigmoid",
        "batchnorm": "bn", "batchnorm2d": "bn", "batchnormalization": "bn",
        "dense": "fc", "linear": "fc", "fullyconnected": "fc", "innerproduct": "fc",
        "conv2d": "conv", "convolution": "conv", "convolution2d": "conv",
        "leakyrelu": "leaky", "flatten": "",
    ]

    /// How a layer of another framework (`maxpool`, `MaxPool2d`, `Dense`) is written here, if
    /// it is one: `pool max`, `fc`; "" for flatten.
    public static func layerAlias(for word: String) -> String? {
        guard word.utf8.count <= 64 else { return nil }
        return layerAliases[word.lowercased().replacingOccurrences(of: "_", with: "")]
    }

    private func suggestion(for word: String) -> String {
        // Once errors are no longer kept, the message is dropped: do not compare names for it.
        if diagnostics.truncated { return "" }
        let all = Array(Parser.layerKinds) + ["network", "input", "block", "repeat", "concat", "add", "mul"]
        let best = all.map { ($0, editDistance($0, word)) }.min { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }
        if word.count <= 64, let (w, d) = best, d <= max(1, word.count / 3) { return "; did you mean '\(w)'?" }
        return "; a block call needs parentheses, e.g. '\(word.prefix(20))()'"
    }
}

/// A name cut to 30 characters for a message (a 10 MB word must not become a 10 MB message).
public func clipped(_ name: String) -> String {
    name.utf8.count > 30 ? String(decoding: Array(name.utf8.prefix(30)), as: UTF8.self) + "..." : name
}

/// Edit distance between two short strings (used for "did you mean" hints): insertions,
/// deletions, substitutions and swaps of adjacent characters each count 1 (optimal string
/// alignment), so the common typo `cnov` is one edit from `conv`, not two.
public func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.prefix(64)), y = Array(b.prefix(64))
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev2 = [Int](repeating: 0, count: y.count + 1)
    var prev = Array(0...y.count)
    var cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            if i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1] { cur[j] = min(cur[j], prev2[j - 2] + 1) }
        }
        (prev2, prev, cur) = (prev, cur, prev2)
    }
    return prev[y.count]
}
