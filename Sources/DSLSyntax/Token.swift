/// The kinds of token in a spec.
public enum TokenKind: Equatable, Sendable {
    /// A name: keywords, layer kinds, option names, block names (`conv`, `pad`, `stem`, `3a`).
    case word
    /// A number such as `3`, `0.5`, `1e-3`.
    case number
    /// Spatial dimensions such as `32x32x3`.
    case dims
    /// One of `( ) { } < > , = : ; + - * /`.
    case symbol
    /// The end of a line (statements end at newlines or `;`).
    case newline
    /// The end of the file.
    case end
    /// Text the lexer could not read; it already reported why.
    case invalid
}

/// One token with the text and location it came from.
public struct Token: Sendable, Equatable {
    /// What kind of token.
    public var kind: TokenKind
    /// The token's source text (for symbols, the symbol itself).
    public var text: String
    /// Where the token is.
    public var location: SourceLocation

    /// Creates a token.
    public init(_ kind: TokenKind, _ text: String, _ location: SourceLocation) {
        self.kind = kind; self.text = text; self.location = location
    }

    /// Whether this is the symbol `s`.
    public func isSymbol(_ s: String) -> Bool { kind == .symbol && text == s }
    /// Whether this is the word `w`.
    public func isWord(_ w: String) -> Bool { kind == .word && text == w }

    /// How the token is named in messages: `'conv'`, `end of line`, `end of file`.
    public var described: String {
        switch kind {
        case .newline: return "end of line"
        case .end: return "end of file"
        case .invalid: return "invalid text"
        default:
            let t = text.count > 24 ? String(text.prefix(24)) + "..." : text
            return "'\(t)'"
        }
    }
}
