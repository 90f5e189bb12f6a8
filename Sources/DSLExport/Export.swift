import DSLIR

// Stage 6: export. A checked network (the IR graph) and, optionally, its trained weights leave
// `dsl` in the formats the rest of the field runs: a PyTorch module (and a torchrun training
// script) and an ONNX model. Every exporter is a pure function from the graph (and weights) to
// the bytes of a file; the `dsl export` command writes them. README, "Export and scale out".

/// Why a network or its weights cannot be exported, naming what is wrong.
public struct ExportError: Error, CustomStringConvertible {
    /// The message.
    public let message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}

/// What the exporters cannot write yet, found before anything is generated.
public enum ExportSupport {
    /// The first layer the exporters do not support yet, with the message naming it, or nil.
    public static func unsupported(_ graph: Graph) -> (node: Int, message: String)? {
        for n in graph.nodes {
            var what: String?
            func activation(_ a: Activation) {
                switch a {
                case .none, .relu, .leaky: break
                case .gelu, .silu, .relu6, .hardswish, .hardsigmoid, .sigmoid, .tanh: what = "the \(a.keyword) activation"
                }
            }
            switch n.op {
            case .conv(let c):
                if c.square == nil { what = "a rectangular, dilated, grouped or asymmetrically padded convolution" }
                activation(c.activation)
            case .linear(let l): activation(l.activation)
            case .activation(let a): activation(a)
            case .adaptiveAvgPool(let h, let w): what = "adaptive average pooling to \(h)x\(w)"
            case .mul: what = "the element-wise 'mul' merge"
            case .input, .pool, .globalAvgPool, .batchNorm, .dropout, .softmax, .concat, .add: break
            }
            if let what { return (n.id, "layer '\(n.name)': \(what) is not supported by export yet") }
        }
        return nil
    }

    /// Throws `ExportError` for the first layer the exporters do not support yet.
    public static func check(_ graph: Graph) throws {
        if let (_, message) = unsupported(graph) { throw ExportError(message) }
    }
}
