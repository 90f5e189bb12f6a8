/// Writes random specs from the grammar (Grammar.md), tracking an estimate of the current
/// activation's shape so that most of them are valid networks small enough for the engine, while
/// a share is deliberately off (kernels larger than their input, mismatched branches, duplicate
/// labels, unknown names) to exercise the checker's errors. Every construct of the language
/// appears: all layers and options, labels, `inception<...>`, `pyramid`, `concat`/`add`/`mul` with
/// empty branches, `repeat` (including 0), blocks with parameters used in expressions, comments
/// in every position, `;` separators, blank lines, tabs and CRLF line endings. Issue #13's
/// constructs with valid and boundary values: rectangular kernels and strides (`1x7`, `7x1`,
/// `2x1`), `dilation=` 1-3, rectangular, large (17, 1024), `groups=` dividing the channels or not,
/// `dwconv` with and without a multiplier, `pad=N|PHxPW|TxLxBxR|same|valid`, the seven
/// activations as `act=`, flags and layers, `mul` with full-size, identity, squeeze-and-excitation
/// (1x1xC) and non-broadcasting branches, `pool avg to` within, at and beyond the input's size,
/// and `add zeropad` (also an unequal `add` without it).
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
            ("fc", 2), ("gap", 2), ("softmax", 1), ("dwconv", 8), ("activation", 5), ("inception", 4), ("pyramid", 3),
            ("concat", depth < 3 ? 6 : 0), ("add", depth < 3 ? 8 : 0), ("repeat", depth < 3 ? 5 : 0),
            ("call", blocks.isEmpty ? 0 : 6), ("bad", 1), ("semicolon", 2),
        ]
        switch r.weighted(kinds) {
        case "conv": emit(label() + conv() + trailingComment())
        case "pool": emit(label() + pool() + trailingComment())
        case "dwconv": emit(label() + conv(depthwise: true) + trailingComment())
        case "activation": emit(label() + r.pick(activations))
        case "bn": emit(label() + "bn")
        case "relu": emit(label() + "relu")
        case "leaky": emit(label() + (r.chance(0.5) ? "leaky" : "leaky \(r.pick(["0.2", "0", "1", "0.01"]))"))
        case "dropout": emit(label() + "dropout \(r.pick(["0.5", "0.2", "0", "0.999999"]))")
        case "fc":
            let n = r.small(24)
            emit(label() + "fc \(number(n))" + r.pick(["", " act=relu", " nobias", " act=leaky slope=0.2", " bias=off", " act=\(r.pick(activations))", " \(r.pick(activations))"]))
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

    /// The activations besides relu/leaky/linear, and the spellings of each.
    private let activations = ["gelu", "silu", "swish", "relu6", "hardswish", "hardsigmoid", "sigmoid", "tanh"]

    /// A size `AxB`, or `A` when square (sometimes written `AxA`).
    private mutating func size(_ a: Int, _ b: Int) -> String {
        a == b && r.chance(0.7) ? number(a) : "\(a)x\(b)"
    }

    /// A convolution, or (`depthwise`) a `dwconv`. `forced` writes stride 1 with an odd kernel
    /// and the default padding, keeping the spatial size; `filters` fixes the filter count.
    private mutating func conv(stride forced: Int? = nil, filters: Int? = nil, depthwise: Bool = false) -> String {
        var kh: Int, kw: Int
        if forced != nil {
            (kh, kw) = r.weighted([((1, 1), 6), ((3, 3), 6), ((1, 3), 1), ((3, 1), 1), ((1, 7), 1), ((7, 1), 1), ((5, 5), 1)])
        } else if r.chance(0.75) {
            kh = r.weighted([(1, 6), (3, 10), (2, 1), (4, 1), (5, 2), (7, 1)]); kw = kh
        } else {
            (kh, kw) = r.pick([(1, 7), (7, 1), (1, 3), (3, 1), (1, 5), (5, 1), (2, 3), (3, 2), (1, 2), (2, 1), (3, 5), (7, 3)])
        }
        var sh = 1, sw = 1
        if forced == nil {
            if r.chance(0.85) { sh = r.weighted([(1, 8), (2, 3), (3, 1)]); sw = sh } else { sh = r.int(1...3); sw = r.int(1...3) }
        }
        // Dilation: mostly none; small, rectangular, large (spanning the whole input and more).
        var (dh, dw) = r.weighted([((1, 1), 40), ((2, 2), 5), ((3, 3), 3), ((1, 2), 1), ((2, 1), 1), ((3, 2), 1), ((1, 1), 1), ((6, 6), 1), ((17, 17), 1)])
        if forced == nil && r.chance(0.003) { (dh, dw) = (1024, 1024) }
        let explicitDilation = dh != 1 || dw != 1 || r.chance(0.02)
        let f = filters ?? r.weighted([(1, 1), (2, 2), (3, 1), (5, 2), (8, 4), (13, 1), (16, 4), (17, 2), (24, 2), (32, 2), (48, 1), (50, 1), (64, 1), (97, 1)])
        // Padding: 0 default (d(k-1)/2), 1 same, 2 valid, 3 pad=N, 4 pad=PHxPW, 5 pad=TxLxBxR.
        var mode = forced == nil ? r.weighted([(0, 8), (1, 1), (2, 2), (3, 1), (4, 1), (5, 1)]) : 0
        let sides = (r.int(0...max(1, kh)), r.int(0...max(1, kw)), r.int(0...max(1, kh)), r.int(0...max(1, kw)))
        func pads() -> (Int, Int, Int, Int) {
            let ph = dh * (kh - 1) / 2, pw = dw * (kw - 1) / 2
            switch mode {
            case 2: return (0, 0, 0, 0)
            case 3: return (sides.0, sides.0, sides.0, sides.0)
            case 4: return (sides.0, sides.1, sides.0, sides.1)
            case 5: return sides
            default: return (ph, pw, ph, pw)
            }
        }
        // Mostly fit the input; sometimes (5 %) leave a kernel too large for it.
        if forced == nil && !r.chance(0.05) {
            for _ in 0..<4096 {
                let p = pads()
                let rowsFit = h + p.0 + p.2 >= dh * (kh - 1) + 1, columnsFit = w + p.1 + p.3 >= dw * (kw - 1) + 1
                if rowsFit && columnsFit { break }
                if !rowsFit { if dh > 1 { dh = max(1, dh / 2) } else { kh -= 1 } }
                if !columnsFit { if dw > 1 { dw = max(1, dw / 2) } else { kw -= 1 } }
            }
        }
        if mode == 1 && (kh % 2 == 0 || kw % 2 == 0) && !r.chance(0.05) { mode = 0 }
        var options: [String] = []
        switch mode {
        case 1: options.append(r.chance(0.5) ? "pad=same" : "same")
        case 2: options.append(r.chance(0.5) ? "pad=valid" : "valid")
        case 3: options.append("pad=\(number(sides.0))")
        case 4: options.append("pad=\(sides.0)x\(sides.1)")
        case 5: options.append("pad=\(sides.0)x\(sides.1)x\(sides.2)x\(sides.3)")
        default: break
        }
        if explicitDilation { options.append("dilation=\(size(dh, dw))") }
        // Groups: mostly a common divisor of the input channels and the filters (1, all of
        // them, or between), sometimes one that does not divide (an error).
        if !depthwise && r.chance(0.2) {
            let common = (1...max(1, min(c, f))).filter { c % $0 == 0 && f % $0 == 0 }
            let g = r.chance(0.9) ? r.pick(common) : r.pick([2, 3, 4, c + 1, f, c])
            options.append("groups=\(number(g))")
        }
        if r.chance(0.3) { options.append(r.pick(["bn", "bn=on", "bn=off"])) }
        if r.chance(0.15) { options.append(r.pick(["nobias", "bias=on", "bias=off"])) }
        switch r.int(0..<10) {
        case 0: options.append("act=linear")
        case 1: options.append(r.pick(["act=leaky", "leaky"])); if r.chance(0.5) { options.append("slope=\(r.pick(["0.2", "0", "1"]))") }
        case 2: options.append(r.pick(["act=none", "linear", "relu", "act=relu"]))
        case 3, 4: let a = r.pick(activations); options.append(r.chance(0.5) ? "act=\(a)" : a)
        default: break
        }
        if r.chance(0.5) { options.shuffle(using: &r) }
        let p = pads()
        let (spanH, spanW) = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
        if h + p.0 + p.2 >= spanH && w + p.1 + p.3 >= spanW {
            h = max(1, (h + p.0 + p.2 - spanH) / sh + 1); w = max(1, (w + p.1 + p.3 - spanW) / sw + 1)
        }
        let kernel = kh == kw && r.chance(0.8) ? number(kh) : "\(kh)x\(kw)"
        let stride = sh == sw && r.chance(0.8) ? number(sh) : "\(sh)x\(sw)"
        if depthwise {
            // Channel multiplier: mostly absent (1), sometimes stated.
            let m = r.weighted([(0, 6), (1, 1), (2, 2), (3, 1), (4, 1)])
            c *= max(1, m)
            return (["dwconv", kernel, stride] + (m > 0 ? [number(m)] : []) + options).joined(separator: " ")
        }
        c = f
        return (["conv", kernel, stride, number(f)] + options).joined(separator: " ")
    }

    private mutating func pool() -> String {
        // Adaptive average pooling: mostly to a size within the input, sometimes 1x1 (gap),
        // the input's own size, or (an error) beyond it; rarely `max` or no kind (errors).
        if r.chance(0.2) {
            var (oh, ow) = r.weighted([((r.int(1...h), r.int(1...w)), 6), ((1, 1), 2), ((h, w), 2), ((h + r.int(1...3), w), 1), ((h, w + 1), 1)])
            if r.chance(0.5) { ow = oh }
            let kind = r.weighted([("avg", 30), ("max", 1), ("", 1)])
            let target = oh == ow && r.chance(0.5) ? number(oh) : "\(oh)x\(ow)"
            if kind == "avg" && oh <= h && ow <= w { h = oh; w = ow }
            return "pool \(kind)\(kind.isEmpty ? "" : " ")to \(target)"
        }
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
        let kind = r.weighted([("concat", 4), ("add", 4), ("mul", 4)])
        let branches = r.weighted([(1, kind == "concat" ? 1 : 0), (2, 6), (3, 3), (4, 1)])
        let (h0, w0, c0) = (h, w, c)
        var widths: [Int] = []
        var sizes: [(Int, Int)] = []
        let header = label() + kind + " {"
        var headerLine = 0
        for b in 0..<branches {
            (h, w, c) = (h0, w0, c0)
            if b == 0 { emitOpen(header); headerLine = lines.count - 1 } else { closeAndOpen() }
            if kind == "mul" { mulBranch(depth: depth) } else if !r.chance(kind == "add" ? 0.3 : 0.1) {
                for _ in 0..<r.int(1...3) {
                    // Branches keep the spatial size (stride 1, same padding), mostly.
                    if r.chance(0.9) {
                        switch r.weighted([(0, 16), (1, 4), (2, 3), (3, 1)]) {
                        case 0: emit(conv(stride: 1))
                        case 1: emit("pool max 3 1 pad=1")
                        case 2: emit(conv(stride: 1, depthwise: true))
                        default: emit(r.pick(activations))
                        }
                    } else { statement(depth: depth + 1) }
                }
            }
            widths.append(c)
            sizes.append((h, w))
        }
        closeBrace()
        // Branches of different widths are added mostly where zero-padding is stated (an error
        // without it); sometimes it is also stated when the widths agree.
        if kind == "add" && (Set(widths).count > 1 ? r.chance(0.9) : r.chance(0.1)), let brace = lines[headerLine].range(of: "add {") {
            lines[headerLine].replaceSubrange(brace, with: "add zeropad {")
        }
        switch kind {
        case "concat": c = widths.reduce(0, +)
        case "add": c = widths.max() ?? c0
        default: // mul: the full-size branches' shape (1x1 when every branch is 1x1)
            c = widths.max() ?? c0
            (h, w) = sizes.first(where: { $0 != (1, 1) }) ?? (1, 1)
        }
    }

    /// One branch of a `mul`: the identity, a full-size branch keeping H×W×C, a
    /// squeeze-and-excitation branch (1×1×C, broadcast), or (rarely) a shape that does not
    /// broadcast (an error): other channels, or pooled to 2×2.
    private mutating func mulBranch(depth: Int) {
        let c0 = c
        switch r.weighted([("empty", 3), ("full", 3), ("se", 4), ("gate", 1), ("wrong", 1), ("any", 1)]) {
        case "empty": break
        case "full":
            for _ in 0..<r.int(1...2) {
                switch r.weighted([(0, 4), (1, 2), (2, 2), (3, 1)]) {
                case 0: emit(conv(stride: 1, filters: c0))
                case 1: emit(conv(stride: 1, depthwise: true))
                case 2: emit(r.pick(activations))
                default: emit("pool avg 3 1 pad=1")
                }
            }
            if c != c0 { emit(conv(stride: 1, filters: c0)) }
        case "se":
            let squeeze = r.pick(["gap", "pool avg to 1x1", "pool avg to 1"])
            let hidden = max(1, c0 / r.pick([1, 2, 4, 16]))
            let a1 = r.pick(["relu", "act=relu", "silu", "act=swish", "gelu", "relu6"])
            let a2 = r.pick(["hardsigmoid", "act=hardsigmoid", "sigmoid", "act=sigmoid", "tanh", "act=linear"])
            let parts = [squeeze, "conv 1 1 \(number(hidden)) \(a1)", "conv 1 1 \(number(c0)) \(a2)"]
            if r.chance(0.5) { emit(parts.joined(separator: " ; ")) } else { for p in parts { emit(p) } }
            h = 1; w = 1; c = c0
        case "gate": // 1x1xC straight from the pooled input, or a 1x1 conv on it
            emit(r.pick(["gap", "pool avg to 1x1"]))
            if r.chance(0.5) { emit(r.pick(["sigmoid", "hardsigmoid", "conv 1 1 \(c0) sigmoid"])) }
            h = 1; w = 1; c = c0
        case "wrong":
            emit(r.pick(["conv 1 1 \(c0 + 1)", "pool avg to 2x2", "gap ; conv 1 1 \(c0 + 1)", "fc \(c0)", "conv 3 2 \(c0)"]))
        default:
            statement(depth: depth + 1)
        }
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
            "conv 0x3 1 8", "conv 3 1 8 groups=0", "conv 3 1 8 dilation=1025", "conv 3 1 8 pad=1x2x3", "conv 3 1 8 pad=-1x0",
            "dwconv 3 1 groups=2", "dwconv 3 1 0", "dwconv 3", "conv 2x4 1 8 same", "pool avg to 0x2", "pool avg to", "pool avg to 2x2x2",
            "mul { relu }", "mul", "gelu 1", "add zeropad", "concat zeropad { } { }", "mul zeropad { } { }", "conv 3 1x0 8",
            "pool max 3x3 1", "sigmoid act=relu", "conv 3 1 8 act=swish slope=0.2", "dwconv 3 1 1025",
        ])
    }
}
