/// Mutates spec bytes the way hostile or careless input does: deleted, inserted, duplicated,
/// swapped and spliced text, grammar tokens dropped in anywhere, numbers replaced by boundary
/// values, long lines and deep nesting, stray bytes (NUL, control bytes, Latin-1, UTF-8,
/// invalid UTF-8), truncation and line-ending changes. One to six mutations per input.
public struct Mutator {
    private var r: FuzzRandom

    /// A mutator drawing from `random`.
    public init(random: FuzzRandom) { r = random }

    /// Tokens and fragments of the language, and a few of other languages.
    static let dictionary: [String] = [
        "conv", "pool", "max", "avg", "gap", "bn", "relu", "leaky", "dropout", "fc", "softmax", "inception",
        "pyramid", "network", "input", "block", "repeat", "concat", "add", "bottleneck", "widen=mul", "widen=add",
        "{", "}", "(", ")", "<", ">", "=", ",", ";", ":", "+", "-", "*", "/", "\n", "\r\n", "\r", "\t", " ", "#", "# c\n",
        "conv 3 1 8", "conv 1 2 1", "pool max 2 2 ceil", "pool avg 3 1 pad=1", "repeat 3 {", "repeat 63 {", "} {", "concat {",
        "add {", "add { } {", "}\n", "block b(c) {", "block b() {", "b(2)", "b()", "a: ", "3a: ", "x.y", "pad=", "pad=same",
        "pad=valid", "pad=1", "act=", "act=leaky", "slope=0.3", "bias=off", "nobias", "ceil", "floor", "bn=on", "same",
        "valid", "linear", "input 1x1x1", "input 8x8x3\n", "input 32x32x3", "x", "X", "1x1", "3x3", "inception<1,2,3,4,5,6>",
        "inception<0,0,0,0,0,0>", "pyramid 2 1", "pyramid 1.5 1 bottleneck", "softmax\n", "gap\n", "fc 10\n",
        "dwconv", "dwconv 3 1", "dwconv 3 2 2", "groups=", "groups=2", "groups=1", "dilation=", "dilation=2", "dilation=1x3",
        "1x7", "7x1", "2x1", "0x3", "3x3x3", "1x1x1x1", "pad=0x3", "pad=3x0", "pad=0x0x1x1", "pad=1x2x3x4", "x", "zeropad",
        "add zeropad {", "mul {", "mul {} {", "mul { } { gap ; conv 1 1 8 act=hardsigmoid }", "pool avg to 2x2", "pool avg to 1",
        "pool avg to 7x7", "to", "gelu", "silu", "swish", "relu6", "hardswish", "hardsigmoid", "sigmoid", "tanh",
        "act=gelu", "act=silu", "act=relu6", "act=hardswish", "act=hardsigmoid", "act=sigmoid", "act=tanh", "act=swish",
        "scale", "scale 1/9", "scale -2", "bn scale=off momentum=0.4 eps=1e-12", "scale=off", "momentum=", "eps=1e-12",
        "bn-scale=off", "bn-momentum=0.2", "bn-eps=1e-3", "init=torch", "init=dirac", "init=whiten", "whiten-eps=1e-3",
        "conv 2 1 24 valid init=whiten", "freeze", "freeze=weight", "freeze=bias", "train-epochs=3", "train-epochs=", "-",
        "\u{0}", "\u{1}", "\u{7F}", "é", "×", "α", "\u{FEFF}",
    ]

    /// Numbers at the edges of the limits.
    static let numbers: [String] = [
        "0", "1", "2", "3", "7", "16", "17", "48", "50", "63", "64", "1023", "1024", "1025", "65535", "65536",
        "100000", "100001", "1048576", "1048577", "2147483647", "2147483648", "4294967296", "9223372036854775807",
        "9223372036854775808", "1e15", "1e16", "1e308", "1e309", "0.5", "0.999999", "1.5", "2.5", "-1", "-0", "1e-9",
        "0.0000001", "00", "007", "1.", ".5", "1e", "1e+", "99999999999999999999999",
    ]

    /// Mutates `input` one to six times.
    public mutating func mutate(_ input: [UInt8], other: [UInt8]) -> [UInt8] {
        var b = input
        for _ in 0..<r.int(1...6) { mutateOnce(&b, other: other) }
        // Keep inputs bounded: a mutated spec is at most 400 KB.
        if b.count > 400_000 { b.removeLast(b.count - 400_000) }
        return b
    }

    private mutating func position(_ b: [UInt8]) -> Int { b.isEmpty ? 0 : r.int(0...b.count) }

    private mutating func lineRanges(_ b: [UInt8]) -> [Range<Int>] {
        var ranges: [Range<Int>] = []
        var start = 0
        for (i, x) in b.enumerated() where x == 10 { ranges.append(start..<(i + 1)); start = i + 1 }
        if start < b.count { ranges.append(start..<b.count) }
        return ranges
    }

    private mutating func mutateOnce(_ b: inout [UInt8], other: [UInt8]) {
        switch r.int(0..<17) {
        case 0 where !b.isEmpty: // delete a range
            let i = r.int(0..<b.count)
            let n = min(b.count - i, r.chance(0.7) ? r.int(1...4) : r.int(1...64))
            b.removeSubrange(i..<(i + n))
        case 1: // insert a token
            b.insert(contentsOf: Array(r.pick(Mutator.dictionary).utf8), at: position(b))
        case 2: // replace a number with a boundary value
            let digits = b.indices.filter { b[$0] >= 48 && b[$0] <= 57 }
            guard let i = digits.isEmpty ? nil : r.pick(digits) else { return }
            var j = i
            while j < b.count && ((b[j] >= 48 && b[j] <= 57) || b[j] == 46) { j += 1 }
            var k = i
            while k > 0 && b[k - 1] >= 48 && b[k - 1] <= 57 { k -= 1 }
            b.replaceSubrange(k..<j, with: Array(r.pick(Mutator.numbers).utf8))
        case 3: // duplicate a line
            let lines = lineRanges(b)
            guard !lines.isEmpty else { return }
            let l = r.pick(lines)
            let copies = r.chance(0.9) ? r.int(1...3) : r.int(4...200)
            let text = Array(b[l])
            b.insert(contentsOf: Array(repeating: text, count: copies).joined(), at: l.upperBound)
        case 4: // swap two lines
            let lines = lineRanges(b)
            guard lines.count >= 2 else { return }
            var i = r.int(0..<lines.count), j = r.int(0..<lines.count)
            if i > j { swap(&i, &j) }
            if i == j { return }
            let a = Array(b[lines[i]]), c = Array(b[lines[j]])
            b.replaceSubrange(lines[j], with: a)
            b.replaceSubrange(lines[i], with: c)
        case 5: // splice from another input
            guard !other.isEmpty else { return }
            let s = r.int(0..<other.count)
            let n = min(other.count - s, r.int(1...200))
            b.insert(contentsOf: other[s..<(s + n)], at: position(b))
        case 6: // replace a byte with a random one
            guard !b.isEmpty else { return }
            b[r.int(0..<b.count)] = UInt8(truncatingIfNeeded: r.next())
        case 7: // truncate
            guard !b.isEmpty else { return }
            b.removeLast(r.int(1...b.count))
        case 8: // a long flat expression or a long run of a token
            let unit = r.pick(["+1", "*1", "-1", " relu", ";", "(", ")", "x", "{", "}", "# ", "a", "\n", "conv 1 1 1\n"])
            let count = r.chance(0.7) ? r.int(10...300) : r.chance(0.8) ? r.int(1000...20_000) : r.int(20_000...80_000)
            var at = position(b)
            // An operator chain goes right after a number, where it continues an expression.
            if "+*-".contains(unit.first!), let digit = b.indices.filter({ b[$0] >= 48 && b[$0] <= 57 }).randomElement(using: &r) { at = digit + 1 }
            b.insert(contentsOf: Array(String(repeating: unit, count: count).utf8), at: at)
        case 9: // deep nesting
            let depth = r.chance(0.5) ? r.int(10...80) : r.int(60...300)
            let (open, close) = r.pick([("(", ")"), ("-", ""), ("repeat 1 { ", " }"), ("add { ", " } { }"), ("concat { ", " }")])
            let i = position(b)
            b.insert(contentsOf: Array(String(repeating: open, count: depth).utf8) + Array("1".utf8) + Array(String(repeating: close, count: depth).utf8), at: i)
        case 10: // line endings
            if r.chance(0.5) {
                var out: [UInt8] = []
                for x in b { if x == 10 { out.append(13) }; out.append(x) }
                b = out
            } else {
                b.removeAll { $0 == 13 }
            }
        case 11: // a label
            let lines = lineRanges(b)
            guard let l = lines.isEmpty ? nil : r.pick(lines) else { return }
            let label = r.chance(0.9) ? r.pick(["a", "3a", "conv1", "x.y", "input", "l"]) : String(repeating: "z", count: r.int(100...5000))
            b.insert(contentsOf: Array((label + ": ").utf8), at: l.lowerBound)
        case 12: // a comment somewhere
            let i = position(b)
            b.insert(contentsOf: Array((" # " + r.pick(["c", "caf\u{E9}", "}", "{ x"]) + (r.chance(0.5) ? "\n" : "")).utf8), at: i)
        case 13: // Latin-1 or invalid UTF-8 bytes
            b.insert(contentsOf: r.pick([[0xE9], [0xFF], [0xC3], [0xC3, 0xA9], [0x80], [0xF0, 0x9F, 0x98], [0xFE, 0xFF]]), at: position(b))
        case 14: // duplicate a random range
            guard !b.isEmpty else { return }
            let i = r.int(0..<b.count)
            let n = min(b.count - i, r.int(1...80))
            b.insert(contentsOf: Array(b[i..<(i + n)]), at: position(b))
        case 15: // wrap the body in a repeat or a block
            let lines = lineRanges(b)
            guard lines.count >= 3 else { return }
            let i = r.int(1..<lines.count)
            let j = r.int(i..<lines.count)
            let (open, close) = r.pick([("repeat 2 {\n", "}\n"), ("add {\n", "} {\n}\n"), ("concat {\n", "} {\n}\n"), ("block w() {\n", "}\nw()\n")])
            b.insert(contentsOf: Array(close.utf8), at: lines[j].upperBound)
            b.insert(contentsOf: Array(open.utf8), at: lines[i].lowerBound)
        default: // insert a whole generated statement line
            b.insert(contentsOf: Array((r.pick(["conv 3 1 50", "conv 3 2 17", "pool max 2 2 ceil", "pool avg 2 2 ceil", "softmax", "gap", "bn", "dropout 0.5", "fc 3", "pyramid 1 1", "inception<2,1,2,1,2,0>",
                "conv 1x7 1 16 bn", "conv 7x1 2x1 8 pad=3x0", "conv 3 1 16 groups=4 dilation=2", "dwconv 3 2 act=relu6", "dwconv 5 1 3 pad=0x1x2x2",
                "conv 3 1 8 dilation=1024", "pool avg to 3x5", "pool avg to 64", "hardswish", "gelu", "mul {} { gap ; conv 1 1 4 ; conv 1 1 8 sigmoid }",
                "add zeropad { conv 3 2 32 } { pool avg 2 }", "add { conv 1 1 5 } { }"]) + "\n").utf8), at: position(b))
        }
    }
}
