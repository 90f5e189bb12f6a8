// How an op is named in `dsl check`'s table and JSON ("description"), `dsl draw`'s boxes and
// the exported PyTorch module's comments: one spelling, written once.

extension Op {
    /// A short description of the op: `conv 3x3/2 96 pad 1 bn relu`, `maxpool 3x3/2 ceil`,
    /// `fc 10 nobias`. The padding is shown only when it is not the kernel's "same" padding.
    public var shortDescription: String {
        func act(_ a: Activation) -> String {
            switch a { case .none: return ""; case .relu: return " relu"; case .leaky(let s): return " leaky \(s)" }
        }
        switch self {
        case .input: return "input"
        case .conv(let c):
            return "conv \(c.kernel)x\(c.kernel)/\(c.stride) \(c.filters)" + (c.pad != (c.kernel - 1) / 2 ? " pad \(c.pad)" : "")
                + (c.bias ? "" : " nobias") + (c.batchNorm ? " bn" : "") + act(c.activation)
        case .pool(let p):
            return "\(p.kind.rawValue)pool \(p.kernel)x\(p.kernel)/\(p.stride)" + (p.pad > 0 ? " pad \(p.pad)" : "") + (p.ceil ? " ceil" : "")
        case .globalAvgPool: return "gap"
        case .batchNorm: return "bn"
        case .activation(let a): return a == .none ? "linear" : String(act(a).dropFirst())
        case .dropout(let p): return "dropout \(p)"
        case .linear(let l): return "fc \(l.units)" + (l.bias ? "" : " nobias") + act(l.activation)
        case .softmax: return "softmax"
        case .concat: return "concat"
        case .add: return "add"
        }
    }
}
