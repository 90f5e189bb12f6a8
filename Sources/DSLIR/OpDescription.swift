// How an op is named in `dsl check`'s table and JSON ("description"), `dsl draw`'s boxes and
// the exported PyTorch module's comments: one spelling, written once.

extension ConvAttributes {
    /// `3x3/2`, `1x7/1`, `3x3/2x1`: the kernel and the stride.
    public var windowDescription: String {
        "\(kernelHeight)x\(kernelWidth)/" + (strideHeight == strideWidth ? "\(strideHeight)" : "\(strideHeight)x\(strideWidth)")
    }

    /// The padding as a spec writes it, or nil when it is the default: dilation·(K − 1)/2 on
    /// each side of each axis (rounded down). `1` (all sides), `0x3` (rows x columns), or
    /// `1,2,1,2` (top, left, bottom, right).
    public var paddingDescription: String? {
        let sameH = dilationHeight * (kernelHeight - 1) / 2, sameW = dilationWidth * (kernelWidth - 1) / 2
        if padTop == sameH && padBottom == sameH && padLeft == sameW && padRight == sameW { return nil }
        if padTop == padBottom && padLeft == padRight {
            return padTop == padLeft ? "\(padTop)" : "\(padTop)x\(padLeft)"
        }
        return "\(padTop),\(padLeft),\(padBottom),\(padRight)"
    }
}

extension BatchNormAttributes {
    /// ` scale=off momentum 0.4 eps 1e-12`: the settings that differ from PyTorch's defaults.
    var suffix: String {
        (scale ? "" : " scale=off") + (momentum == 0.1 ? "" : " momentum \(fmt(momentum))") + (epsilon == 1e-5 ? "" : " eps \(fmt(epsilon))")
    }
}

extension WeightInit {
    /// ` init=torch`; empty for the default (`he`).
    var suffix: String { self == .he ? "" : " init=" + keyword }
}

extension LayerTraining {
    /// ` frozen`, ` frozen weight`, ` frozen bias`, ` 3 epochs`: empty for the default.
    var suffix: String {
        var s = frozenWeight && frozenBias ? " frozen" : frozenWeight ? " frozen weight" : frozenBias ? " frozen bias" : ""
        if let e = epochs, !(frozenWeight && frozenBias) { s += " \(e) epoch\(e == 1 ? "" : "s")" }
        return s
    }
}

extension Activation {
    /// ` relu`, ` leaky 0.1`, ` gelu`; empty for none.
    var suffix: String {
        switch self {
        case .none: return ""
        case .leaky(let s): return " leaky \(s)"
        default: return " " + keyword
        }
    }
}

extension Op {
    /// A short description of the op: `conv 3x3/2 96 pad 1 bn relu`, `conv 1x7/1 192`,
    /// `conv 3x3/1 32 groups 32 relu6`, `maxpool 3x3/2 ceil`, `avgpool to 7x7`, `fc 10 nobias`.
    /// The padding is shown only when it is not the kernel's "same" padding.
    public var shortDescription: String {
        switch self {
        case .input: return "input"
        case .conv(let c):
            var d = "conv \(c.windowDescription) \(c.filters)"
            if let p = c.paddingDescription { d += " pad \(p)" }
            if c.dilationHeight != 1 || c.dilationWidth != 1 {
                d += " dilation " + (c.dilationHeight == c.dilationWidth ? "\(c.dilationHeight)" : "\(c.dilationHeight)x\(c.dilationWidth)")
            }
            if c.groups != 1 { d += " groups \(c.groups)" }
            return d + (c.bias ? "" : " nobias") + (c.batchNorm ? " bn" + c.norm.suffix : "") + c.activation.suffix
                + c.initializer.suffix + c.training.suffix
        case .pool(let p):
            return "\(p.kind.rawValue)pool \(p.kernel)x\(p.kernel)/\(p.stride)" + (p.pad > 0 ? " pad \(p.pad)" : "") + (p.ceil ? " ceil" : "")
        case .globalAvgPool: return "gap"
        case .adaptiveAvgPool(let h, let w): return "avgpool to \(h)x\(w)"
        case .batchNorm(let b): return "bn" + b.suffix + b.training.suffix
        case .scale(let x): return "scale \(fmt(x))"
        case .activation(let a): return a == .none ? "linear" : String(a.suffix.dropFirst())
        case .dropout(let p): return "dropout \(p)"
        case .linear(let l): return "fc \(l.units)" + (l.bias ? "" : " nobias") + l.activation.suffix + l.initializer.suffix + l.training.suffix
        case .softmax: return "softmax"
        case .concat: return "concat"
        case .add(let zeroPad): return zeroPad ? "add zeropad" : "add"
        case .mul: return "mul"
        }
    }
}
