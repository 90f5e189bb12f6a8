/// The shape rules of every op (Grammar.md, "Shapes"): convolution and pooling output
/// `floor((H + pad_top + pad_bottom − span) / stride) + 1` per axis, span = dilation·(k − 1) + 1
/// (pooling with `ceil`: rounded up, but a window may not start in the bottom/right padding, as
/// in PyTorch); `gap` and `fc` give 1×1; adaptive pooling gives its stated size; `concat` sums
/// channels; `add` takes the widest input (narrower ones are zero-padded only when stated);
/// `mul` takes the inputs' common shape, 1×1×C inputs broadcast over height and width.
public enum ShapeRules {
    /// The output shape of `op` on inputs of the given shapes, or nil with messages in `errors`.
    public static func infer(_ op: Op, inputs: [Shape], errors: inout [String], warnings: inout [String]) -> Shape? {
        switch op {
        case .input:
            return inputs.first
        case .conv(let c):
            let x = inputs[0]
            if x.channels % c.groups != 0 || c.filters % c.groups != 0 {
                let what = x.channels % c.groups != 0 ? "the input's \(x.channels) channels" : "the \(c.filters) filters"
                errors.append("groups=\(c.groups) does not divide \(what) (groups must divide the input channels and the filters)")
                return nil
            }
            let dilated = c.dilationHeight > 1 || c.dilationWidth > 1
            let kernel = (c.kernelHeight == c.kernelWidth ? "\(c.kernelHeight)" : "\(c.kernelHeight)x\(c.kernelWidth)")
                + (dilated ? " (dilated to \(c.spanHeight)x\(c.spanWidth))" : "")
            guard let (h, w) = window(x, kernel: (c.spanHeight, c.spanWidth), stride: (c.strideHeight, c.strideWidth),
                                      pad: (c.padTop, c.padLeft, c.padBottom, c.padRight), ceil: false,
                                      what: "kernel \(kernel)", errors: &errors, warnings: &warnings) else { return nil }
            return Shape(h, w, c.filters)
        case .pool(let p):
            let x = inputs[0]
            // An explicit `floor` says the dropped border is intended: no warning about it.
            var dropWarnings: [String] = []
            guard let (h, w) = window(x, kernel: (p.kernel, p.kernel), stride: (p.stride, p.stride), pad: (p.pad, p.pad, p.pad, p.pad),
                                      ceil: p.ceil, what: "pooling window \(p.kernel)", errors: &errors, warnings: &dropWarnings) else { return nil }
            if !p.statedFloor { warnings += dropWarnings }
            if p.stride > p.kernel { warnings.append("pooling stride \(p.stride) is larger than its window \(p.kernel); pixels between windows are never seen") }
            return Shape(h, w, x.channels)
        case .globalAvgPool:
            return Shape(1, 1, inputs[0].channels)
        case .adaptiveAvgPool(let oh, let ow):
            let x = inputs[0]
            // Larger than the input, PyTorch's bins repeat input pixels (torchvision's VGG head,
            // `AdaptiveAvgPool2d((7, 7))`, on a feature map below 7x7): allowed, and said.
            if oh > x.height || ow > x.width {
                warnings.append("adaptive pooling to \(oh)x\(ow) is larger than its \(x.height)x\(x.width) input: its bins repeat input pixels (as PyTorch's AdaptiveAvgPool2d)")
            }
            return Shape(oh, ow, x.channels)
        case .batchNorm, .activation, .dropout, .softmax, .scale:
            return inputs[0]
        case .linear(let l):
            return Shape(1, 1, l.units)
        case .concat:
            let first = inputs[0]
            var channels = 0
            for (i, s) in inputs.enumerated() {
                if s.height != first.height || s.width != first.width {
                    errors.append("cannot concatenate branches of different sizes: branch 1 is \(first.height)x\(first.width), branch \(i + 1) is \(s.height)x\(s.width)")
                    return nil
                }
                channels += s.channels
            }
            return Shape(first.height, first.width, channels)
        case .add(let zeroPad):
            let first = inputs[0]
            for (i, s) in inputs.enumerated() where s.height != first.height || s.width != first.width {
                errors.append("cannot add branches of different sizes: branch 1 is \(first.height)x\(first.width), branch \(i + 1) is \(s.height)x\(s.width)")
                return nil
            }
            let widest = inputs.map(\.channels).max()!
            if !zeroPad, let (i, s) = inputs.enumerated().first(where: { $0.1.channels != first.channels }) {
                let narrow = inputs.enumerated().min { $0.1.channels < $1.1.channels }!.0 + 1
                errors.append("cannot add branches of different widths: branch 1 has \(first.channels) channels, branch \(i + 1) has \(s.channels); "
                    + "project branch \(narrow) to \(widest) channels with a 1x1 convolution (a ResNet shortcut: 'conv 1 STRIDE \(widest) bn act=linear'), "
                    + "or write 'add zeropad' if zero-padding the narrower branch is intended")
                return nil
            }
            return Shape(first.height, first.width, widest)
        case .mul:
            // Every input is the full H×W×C, or 1×1×C broadcast over H×W.
            let full = inputs.first { $0.height != 1 || $0.width != 1 } ?? inputs[0]
            for (i, s) in inputs.enumerated() {
                let fits = s.channels == full.channels && ((s.height == full.height && s.width == full.width) || (s.height == 1 && s.width == 1))
                if !fits {
                    let j = inputs.firstIndex(of: full)! + 1
                    errors.append("cannot multiply branches of shapes \(full) (branch \(j)) and \(s) (branch \(i + 1)): each branch must be \(full) or 1x1x\(full.channels) (broadcast over height and width)")
                    return nil
                }
            }
            return full
        }
    }

    /// Output height and width of a window spanning `kernel` input cells (rows, columns), moved
    /// by `stride`, on `x` padded by (top, left, bottom, right).
    static func window(_ x: Shape, kernel: (Int, Int), stride: (Int, Int), pad: (Int, Int, Int, Int), ceil: Bool, what: String,
                       errors: inout [String], warnings: inout [String]) -> (Int, Int)? {
        var out: [Int] = []
        var rowWarning: (Int, Int, Int, Int, Int)?
        let axes = [(x.height, kernel.0, stride.0, pad.0, pad.2, "rows"), (x.width, kernel.1, stride.1, pad.1, pad.3, "columns")]
        let padded = pad.0 > 0 || pad.1 > 0 || pad.2 > 0 || pad.3 > 0
        let padText = pad.0 == pad.1 && pad.0 == pad.2 && pad.0 == pad.3 ? "\(pad.0)" : "\(pad.0),\(pad.1),\(pad.2),\(pad.3) (top, left, bottom, right)"
        for (size, k, s, before, after, axis) in axes {
            let span = size + before + after
            // With ceil rounding PyTorch lets the last window overhang the padded input by up to
            // s - 1 (a 2x2/2 ceil pooling maps 1x1 to 1x1); only a window that cannot fit even
            // then is too large.
            if span < k && !(ceil && span + s - 1 >= k) {
                errors.append("\(what) is larger than its \(padded ? "padded " : "")input \(x.height)x\(x.width)\(padded ? " (padding \(padText))" : "")")
                return nil
            }
            var o = span >= k ? (span - k) / s + 1 : 0
            let rest = span >= k ? (span - k) % s : s - (k - span)
            if ceil && rest != 0 {
                o += 1
                // The last window must start inside the input or the top/left padding.
                if (o - 1) * s >= size + before { o -= 1 }
            } else if rest > after && k >= s {
                // (A window smaller than its stride skips pixels between windows by design, as
                // a ResNet's 1x1/2 projection does: the last row is one more of those.)
                let dropped = rest - after
                // The columns repeat the rows' warning only when they differ.
                if axis == "rows" || rowWarning.map({ $0 != (size, k, s, after, dropped) }) ?? true {
                    warnings.append("stride \(s) drops the last \(dropped) \(dropped == 1 ? String(axis.dropLast()) : axis) of the \(x.height)x\(x.width) input")
                }
                if axis == "rows" { rowWarning = (size, k, s, after, dropped) }
            }
            if o < 1 {
                errors.append("\(what) gives an empty output on the \(x.height)x\(x.width) input")
                return nil
            }
            out.append(o)
        }
        return (out[0], out[1])
    }
}
