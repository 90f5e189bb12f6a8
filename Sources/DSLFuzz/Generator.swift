/// Writes random specs from the grammar (Grammar.md), tracking an estimate of the current
/// activation's shape so that most of them are valid networks small enough for the engine, while
/// a share is deliberately off (kernels larger than their input, mismatched branches, duplicate
/// labels, unknown names) to exercise the checker's errors. Every construct of the language
/// appears: all layers and options, labels, `inception<...>`, `pyramid`, `concat`/`add` with
/// empty branches, `repeat` (including 0), blocks with parameters used in expressions, comments
/// in every position, `;` separators, blank lines, tabs and CRLF line endings.
public struct SpecGenerator {
    private var r: FuzzRandom
    private var lines: [String] = []
    private var indent = 0
    private var blocks: [(name: String, parameters: [String], roles: [String])] = []
    private var labels = 0
    /// Current (height, width, channels) estimate.
    private var h = 8, w = 8, c = 3
    /// Block parameters in scope while writing a block body.
    private var parameters: [String] = []

    /// A generator drawing from `random`.
    public init(random: FuzzRandom) { r = random }

    /// A whole spec.
    public mutating func generate() -> String {
        lines = []; indent = 0; blocks = []; labels = 0; parameters = []
        if r.chance(0.3) { lines.append("# \(r.pick(commentTexts))") }
        if r.chance(0.5) { lines.append("network \(r.pick(["net", "fuzz-1", "a_b.c", "x"]))") }
        h = r.chance(0.85) ? r.int(1...12) : r.int(13...40)
        w = r.chance(0.8) ? h : r.int(1...16)
        c = r.chance(0.8) ? r.int(1...8) : r.int(9...64)
        if r.chance(0.98) { lines.append("input \(h)x\(w)x\(c)" + trailingComment()) }
        let blockCount = r.chance(0.3) ? r.int(1...3) : 0
        for i in 0..<blockCount { blockDefinition(i + 1) }
        let count = r.int(1...8)
        for _ in 0..<count { statement(depth: 0) }
        if r.chance(0.6) { classifierHead() }
        if r.chance(0.15) { lines.append("# \(r.pick(commentTexts))") }
        var text = lines.joined(separator: "\n")
        if r.chance(0.8) { text += "\n" }
        if r.chance(0.1) { text = text.replacingOccurrences(of: "\n", with: "\r\n") }
        if r.chance(0.05) { text = text.replacingOccurrences(of: "  ", with: "\t") }
        return text
    }

    private let commentTexts = ["a comment", "3×3, α = 48", "TODO: widen", "conv 3 1 8 { } # not code", "", "Latin-1 caf\u{E9}"]

    private mutating func trailingComment() -> String {
        r.chance(0.12) ? "  # \(r.pick(commentTexts))" : ""
    }

    private mutating func emit(_ s: String) {
        let pad = String(repeating: "  ", count: indent)
        if r.chance(0.05) { lines.append(pad + "# \(r.pick(commentTexts))") }
        if r.chance(0.04) { lines.append("") }
        lines.append(pad + s)
    }

    private mutating func label() -> String {
        guard r.chance(0.15) else { return "" }
        labels += 1
        let name = r.weighted([("l\(labels)", 20), ("l1", 1), ("3a", 1), ("conv1", 1), ("x_y", 1)])
        return name + ": "
    }

    /// A number, sometimes written as an expression or a block parameter.
    private mutating func number(_ v: Int) -> String {
        if !parameters.isEmpty && r.chance(0.1) { return r.pick(parameters) }
        switch r.int(0..<20) {
        case 0: return "(\(v - 1) + 1)"
        case 1: return "\(v * 2) / 2"
        case 2: return "(-(-\(v)))"
        case 3: return "1 * \(v)"
        default: return "\(v)"
        }
    }

    // MARK: Statements

    private mutating func statement(depth: Int) {
        let kinds: [(String, Int)] = [
            ("conv", 30), ("pool", 10), ("bn", 4), ("relu", 3), ("leaky", 2), ("dropout", 3),
            ("fc", 2), ("gap", 2), ("softmax", 1), ("inception", 4), ("pyramid", 3),
            ("concat", depth < 3 ? 6 : 0), ("add", depth < 3 ? 6 : 0), ("repeat", depth < 3 ? 5 : 0),
            ("call", blocks.isEmpty ? 0 : 6), ("bad", 1), ("semicolon", 2),
        ]
        switch r.weighted(kinds) {
        case "conv": emit(label() + conv() + trailingComment())
        case "pool": emit(label() + pool() + trailingComment())
        case "bn": emit(label() + "bn")
        case "relu": emit(label() + "relu")
        case "leaky": emit(label() + (r.chance(0.5) ? "leaky" : "leaky \(r.pick(["0.2", "0", "1", "0.01"]))"))
        case "dropout": emit(label() + "dropout \(r.pick(["0.5", "0.2", "0", "0.999999"]))")
        case "fc":
            let n = r.small(24)
            emit(label() + "fc \(number(n))" + r.pick(["", " act=relu", " nobias", " act=leaky slope=0.2", " bias=off"]))
            h = 1; w = 1; c = n
        case "gap": emit(label() + "gap"); h = 1; w = 1
        case "softmax": emit(label() + "softmax")
        case "inception": emit(label() + inception())
        case "pyramid": emit(label() + pyramid())
        case "concat", "add": merge(depth: depth)
        case "repeat": repeatLoop(depth: depth)
        case "call": call()
        case "semicolon":
            let a = conv(stride: 1)
            emit(label() + a + " ; " + r.pick(["relu", "bn", "dropout 0.5", "pool max 1 1"]))
        default: emit(broken())
        }
    }

    private mutating func conv(stride forced: Int? = nil) -> String {
        var k = forced == nil ? r.weighted([(1, 6), (3, 10), (2, 1), (4, 1), (5, 2), (7, 1)]) : r.pick([1, 3])
        let s = forced ?? r.weighted([(1, 8), (2, 3), (3, 1)])
        let f = r.weighted([(1, 1), (2, 2), (3, 1), (5, 2), (8, 4), (13, 1), (16, 4), (17, 2), (24, 2), (32, 2), (48, 1), (50, 1), (64, 1), (97, 1)])
        // Padding: 0 default ((k-1)/2), 1 same, 2 valid, 3 explicit.
        var mode = forced == nil ? r.weighted([(0, 8), (1, 1), (2, 2), (3, 1)]) : 0
        var explicit = r.int(0...max(1, k))
        func pad(_ k: Int) -> Int { mode == 2 ? 0 : mode == 3 ? explicit : (k - 1) / 2 }
        // Mostly fit the input; sometimes (5 %) leave a kernel too large for it.
        if forced == nil && !r.chance(0.05) {
            while k > 1 && (h + 2 * pad(k) < k || w + 2 * pad(k) < k) { k -= 1 }
            explicit = min(explicit, k)
        }
        if mode == 1 && k % 2 == 0 && !r.chance(0.05) { mode = 0 }
        var options: [String] = []
        switch mode {
        case 1: options.append(r.chance(0.5) ? "pad=same" : "same")
        case 2: options.append(r.chance(0.5) ? "pad=valid" : "valid")
        case 3: options.append("pad=\(number(explicit))")
        default: break
        }
        if r.chance(0.3) { options.append(r.pick(["bn", "bn=on", "bn=off"])) }
        if r.chance(0.15) { options.append(r.pick(["nobias", "bias=on", "bias=off"])) }
        switch r.int(0..<10) {
        case 0: options.append("act=linear")
        case 1: options.append(r.pick(["act=leaky", "leaky"])); if r.chance(0.5) { options.append("slope=\(r.pick(["0.2", "0", "1"]))") }
        case 2: options.append(r.pick(["act=none", "linear", "relu", "act=relu"]))
        default: break
        }
        if r.chance(0.5) { options.shuffle(using: &r) }
        let p = pad(k)
        if h + 2 * p >= k && w + 2 * p >= k { h = max(1, (h + 2 * p - k) / s + 1); w = max(1, (w + 2 * p - k) / s + 1) }
        c = f
        return (["conv", number(k), number(s), number(f)] + options).joined(separator: " ")
    }

    private mutating func pool() -> String {
        var parts = ["pool"]
        if r.chance(0.7) { parts.append(r.pick(["max", "avg"])) }
        // Form: 0 bare (3/2 pad 1), 1 `pool K`, 2 `pool K S`.
        let form = r.weighted([(0, 1), (1, 1), (2, 2)])
        var k = form == 0 ? 3 : r.pick([1, 2, 3, 4, 5])
        let s = form == 0 ? 2 : form == 1 ? k : r.pick([1, 2, 3])
        var pad = form == 0 ? 1 : 0
        var explicitPad = false
        if form > 0 && r.chance(0.2) { pad = r.int(0...(k / 2 + (r.chance(0.05) ? 1 : 0))); explicitPad = true }
        // Mostly a window that fits (ceil rounding lets it overhang by up to stride - 1).
        if form > 0 && !r.chance(0.05) && min(h, w) + 2 * pad < k {
            k = max(1, min(h, w) + 2 * pad)
            pad = min(pad, k / 2)
        }
        if form >= 1 { parts.append(number(k)) }
        if form == 2 { parts.append(number(s)) }
        if explicitPad { parts.append("pad=\(pad)") }
        let ceil = r.chance(0.3)
        if ceil { parts.append("ceil") } else if r.chance(0.05) { parts.append("floor") }
        func out(_ n: Int) -> Int {
            let span = n + 2 * pad
            if span < k { return 1 }
            var o = (span - k) / s + 1
            if ceil && (span - k) % s != 0 { o += 1; if (o - 1) * s >= n + pad { o -= 1 } }
            return max(1, o)
        }
        h = out(h); w = out(w)
        return parts.joined(separator: " ")
    }

    private mutating func inception() -> String {
        var widths: [Int] = []
        for _ in 0..<6 { widths.append(r.chance(0.25) ? 0 : r.small(16)) }
        if r.chance(0.05) { widths.removeLast() }
        let text = "inception<" + widths.map { number($0) }.joined(separator: r.pick([", ", ","])) + ">" + r.pick(["", "", " bn", " nobias", " act=leaky"])
        if widths.count == 6 {
            let proj = widths[5] > 0 ? widths[5] : c
            c = widths[0] + (widths[2]) + (widths[4]) + proj
        }
        return text
    }

    private mutating func pyramid() -> String {
        let alpha = r.pick(["0", "1", "2", "1.5", "6", "12", "0.5"])
        let n = r.int(1...2)
        var text = "pyramid \(alpha) \(n)"
        if r.chance(0.3) { text += " bottleneck" }
        if r.chance(0.2) { text += " widen=\(r.pick(["add", "mul"]))" }
        h = (h + 1) / 2; h = (h + 1) / 2; w = (w + 1) / 2; w = (w + 1) / 2
        c = text.contains("bottleneck") ? 4 * (c + 12) : c + 12
        return text
    }

    private mutating func merge(depth: Int) {
        let kind = r.chance(0.5) ? "concat" : "add"
        let branches = r.weighted([(1, kind == "add" ? 0 : 1), (2, 6), (3, 3), (4, 1)])
        let (h0, w0, c0) = (h, w, c)
        var widths: [Int] = []
        var header = label() + kind + " {"
        var headerLine = 0
        for b in 0..<branches {
            (h, w, c) = (h0, w0, c0)
            if b == 0 { emitOpen(header); headerLine = lines.count - 1 } else { closeAndOpen() }
            let empty = r.chance(kind == "add" ? 0.3 : 0.1)
            if !empty {
                for _ in 0..<r.int(1...3) {
                    // Branches keep the spatial size (stride 1, same padding), mostly.
                    if r.chance(0.9) { emit(r.chance(0.8) ? conv(stride: 1) : "pool max 3 1 pad=1") }
                    else { statement(depth: depth + 1) }
                }
            }
            widths.append(c)
        }
        closeBrace()
        header = ""
        // Branches of different widths are added only where zero-padding is stated (mostly
        // it is stated only then; sometimes also when the widths agree).
        if kind == "add" && (Set(widths).count > 1 || r.chance(0.1)), let brace = lines[headerLine].range(of: "add {") {
            lines[headerLine].replaceSubrange(brace, with: "add zeropad {")
        }
        c = kind == "concat" ? widths.reduce(0, +) : (widths.max() ?? c0)
    }

    private mutating func emitOpen(_ header: String) {
        emit(header)
        indent += 1
    }

    private mutating func closeAndOpen() {
        indent -= 1
        lines.append(String(repeating: "  ", count: indent) + "} {" + (r.chance(0.05) ? "  # next branch" : ""))
        indent += 1
    }

    private mutating func closeBrace() {
        indent -= 1
        lines.append(String(repeating: "  ", count: indent) + "}" + (r.chance(0.1) ? "  # end" : ""))
    }

    private mutating func repeatLoop(depth: Int) {
        let n = r.weighted([(0, 1), (1, 2), (2, 4), (3, 2), (5, 1)])
        emitOpen("repeat \(number(n)) {")
        for _ in 0..<r.int(0...3) {
            if r.chance(0.8) { emit(label() + conv(stride: 1)) } else { statement(depth: depth + 1) }
        }
        closeBrace()
    }

    private mutating func blockDefinition(_ i: Int) {
        let name = "b\(i)"
        // Parameters play the roles c (filters), k (kernel) and n (repeat count); a name is
        // mostly the role's letter, sometimes a word that is also a flag or keyword value
        // (`floor`, `bn`, `valid`, ...), which the printer must keep reading as an argument.
        let roles = Array(["c", "k", "n"].prefix(r.int(0...3)))
        var spelled: [String] = []
        for role in roles {
            let candidates = [role, role, role, role, "floor", "bn", "max", "avg", "valid", "relu", "same", "x_1"].filter { !spelled.contains($0) }
            spelled.append(r.pick(candidates))
        }
        let named = Dictionary(uniqueKeysWithValues: zip(roles, spelled))
        blocks.append((name, spelled, roles))
        parameters = spelled
        let saved = (h, w, c)
        emitOpen("block \(name)(\(spelled.joined(separator: ", "))) {")
        for _ in 0..<r.int(0...3) {
            switch r.int(0..<6) {
            case 0 where named["n"] != nil: emitOpen("repeat \(named["n"]!) {"); emit("conv 1 1 8"); closeBrace()
            case 1 where named["c"] != nil: emit("conv \(named["k"] ?? "3") 1 \(r.chance(0.2) ? "(\(named["c"]!) + 0)" : named["c"]!)")
            case 2 where i > 1: emit("b\(i - 1)(\(blocks[i - 2].parameters.map { _ in String(r.int(1...4)) }.joined(separator: ", ")))")
            default: emit(conv(stride: 1))
            }
        }
        closeBrace()
        parameters = []
        (h, w, c) = saved
    }

    private mutating func call() {
        let b = r.pick(blocks)
        let args = b.roles.map { role -> String in
            switch role {
            case "k": return number(r.pick([1, 3]))
            case "n": return number(r.int(0...3))
            default: return number(r.small(16))
            }
        }
        emit(label() + "\(b.name)(\(args.joined(separator: ", ")))")
        if let i = b.roles.firstIndex(of: "c"), let v = Int(args[i]) { c = v }
    }

    private mutating func classifierHead() {
        let classes = r.int(1...12)
        switch r.int(0..<3) {
        case 0: emit("gap"); emit("fc \(classes)")
        case 1: emit("conv 1 1 \(classes)"); emit("gap")
        default: emit("fc \(classes)")
        }
        emit("softmax")
        h = 1; w = 1; c = classes
    }

    /// A statement that is wrong on purpose.
    private mutating func broken() -> String {
        r.pick([
            "conv 3 1", "conv 3 1 8 padd=1", "pool max 2 2 pad=2", "relu 3", "dropout 1", "cnov 3 1 8",
            "unknown(1)", "conv 3x3 1 8", "conv 3 1 8 / 0", "conv 3 1 width", "input 4x4x4", "repeat -1 { relu }",
            "conv 2.5 1 8", "conv 4 1 8 pad=same", "fc 0", "leaky 2", "inception<1, 2>", "pyramid 0.5 1 widen=mul",
            "conv 3 1 8 slope=0.2", "conv 1025 1 1", "conv 3 1 8 bn bn", "concat", "add { relu }", "x: y: relu",
            "conv 3 1 1e16", "repeat 100001 { relu }", "b9()", "conv 3 1 8 }", "{ relu }", "conv 3 1 8 act=softplus",
        ])
    }
}
