/// The shape rules of every op (Grammar.md, "Shapes"): convolution and pooling output
/// `floor((H + 2·pad − k) / stride) + 1` (pooling with `ceil`: rounded up, but a window may not
/// start in the bottom/right padding, as in PyTorch); `gap` and `fc` give 1×1; `concat` sums
/// channels; `add` takes the widest input (narrower ones are zero-padded).
public enum ShapeRules {
    /// The output shape of `op` on inputs of the given shapes, or nil with messages in `errors`.
    public static func infer(_ op: Op, inputs: [Shape], errors: inout [String], warnings: inout [String]) -> Shape? {
        switch op {
        case .input:
            return inputs.first
        case .conv(let c):
            let x = inputs[0]
            guard let (h, w) = window(x, kernel: c.kernel, stride: c.stride, pad: c.pad, ceil: false, what: "kernel", errors: &errors, warnings: &warnings) else { return nil }
            return Shape(h, w, c.filters)
        case .pool(let p):
            let x = inputs[0]
            guard let (h, w) = window(x, kernel: p.kernel, stride: p.stride, pad: p.pad, ceil: p.ceil, what: "pooling window", errors: &errors, warnings: &warnings) else { return nil }
            if p.stride > p.kernel { warnings.append("pooling stride \(p.stride) is larger than its window \(p.kernel); pixels between windows are never seen") }
            return Shape(h, w, x.channels)
        case .globalAvgPool:
            return Shape(1, 1, inputs[0].channels)
        case .batchNorm, .activation, .dropout, .softmax:
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
        case .add:
            let first = inputs[0]
            for (i, s) in inputs.enumerated() where s.height != first.height || s.width != first.width {
                errors.append("cannot add branches of different sizes: branch 1 is \(first.height)x\(first.width), branch \(i + 1) is \(s.height)x\(s.width)")
                return nil
            }
            return Shape(first.height, first.width, inputs.map(\.channels).max()!)
        }
    }

    /// Output height and width of a k×k window with stride and padding on `x`.
    static func window(_ x: Shape, kernel k: Int, stride s: Int, pad p: Int, ceil: Bool, what: String, errors: inout [String], warnings: inout [String]) -> (Int, Int)? {
        var out: [Int] = []
        for (size, axis) in [(x.height, "rows"), (x.width, "columns")] {
            let span = size + 2 * p
            // With ceil rounding PyTorch lets the last window overhang the padded input by up to
            // s - 1 (a 2x2/2 ceil pooling maps 1x1 to 1x1); only a window that cannot fit even
            // then is too large.
            if span < k && !(ceil && span + s - 1 >= k) {
                errors.append("\(what) \(k) is larger than its \(p > 0 ? "padded " : "")input \(x.height)x\(x.width)\(p > 0 ? " (padding \(p))" : "")")
                return nil
            }
            var o = span >= k ? (span - k) / s + 1 : 0
            let rest = span >= k ? (span - k) % s : s - (k - span)
            if ceil && rest != 0 {
                o += 1
                // The last window must start inside the input or the left padding.
                if (o - 1) * s >= size + p { o -= 1 }
            } else if rest > p && k >= s {
                // (A window smaller than its stride skips pixels between windows by design, as
                // a ResNet's 1x1/2 projection does: the last row is one more of those.)
                let dropped = rest - p
                if out.isEmpty || axis == "rows" {
                    warnings.append("stride \(s) drops the last \(dropped) \(dropped == 1 ? String(axis.dropLast()) : axis) of the \(x.height)x\(x.width) input")
                } else if x.height != x.width {
                    warnings.append("stride \(s) drops the last \(dropped) \(dropped == 1 ? String(axis.dropLast()) : axis) of the \(x.height)x\(x.width) input")
                }
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
