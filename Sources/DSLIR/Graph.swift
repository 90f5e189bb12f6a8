import DSLSyntax

/// An activation map's size: height × width × channels (batch is not part of a shape).
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    /// Rows.
    public var height: Int
    /// Columns.
    public var width: Int
    /// Channels.
    public var channels: Int
    /// Creates a shape.
    public init(_ height: Int, _ width: Int, _ channels: Int) {
        self.height = height; self.width = width; self.channels = channels
    }
    /// Elements per image.
    public var elements: Int { height * width * channels }
    /// `32x32x3`.
    public var description: String { "\(height)x\(width)x\(channels)" }
}

/// The nonlinearity applied after a convolution or linear layer (or standing alone).
public enum Activation: Equatable, Sendable {
    /// Identity.
    case none
    /// max(0, x).
    case relu
    /// x for x > 0, slope·x otherwise.
    case leaky(Double)
}

/// Max or average pooling.
public enum PoolKind: String, Sendable {
    case max, avg
}

/// A convolution's attributes (square kernel, symmetric zero padding).
public struct ConvAttributes: Equatable, Sendable {
    /// Kernel size k (k×k).
    public var kernel: Int
    /// Stride.
    public var stride: Int
    /// Zero padding on each side.
    public var pad: Int
    /// Output channels (filters).
    public var filters: Int
    /// Whether the convolution has a bias.
    public var bias: Bool
    /// Whether batch norm follows (before the activation).
    public var batchNorm: Bool
    /// The activation after it.
    public var activation: Activation
    /// Creates conv attributes.
    public init(kernel: Int, stride: Int, pad: Int, filters: Int, bias: Bool, batchNorm: Bool, activation: Activation) {
        self.kernel = kernel; self.stride = stride; self.pad = pad; self.filters = filters
        self.bias = bias; self.batchNorm = batchNorm; self.activation = activation
    }
}

/// A pooling layer's attributes.
public struct PoolAttributes: Equatable, Sendable {
    /// Max or average.
    public var kind: PoolKind
    /// Window size k (k×k).
    public var kernel: Int
    /// Stride.
    public var stride: Int
    /// Zero padding on each side (ignored by max, counted by avg, as PyTorch does).
    public var pad: Int
    /// Output size rounded up (Caffe, PyTorch `ceil_mode`) instead of down.
    public var ceil: Bool
    /// Creates pool attributes.
    public init(kind: PoolKind, kernel: Int, stride: Int, pad: Int, ceil: Bool) {
        self.kind = kind; self.kernel = kernel; self.stride = stride; self.pad = pad; self.ceil = ceil
    }
}

/// A fully connected layer's attributes.
public struct LinearAttributes: Equatable, Sendable {
    /// Output features.
    public var units: Int
    /// Whether it has a bias.
    public var bias: Bool
    /// The activation after it.
    public var activation: Activation
    /// Creates linear attributes.
    public init(units: Int, bias: Bool, activation: Activation) { self.units = units; self.bias = bias; self.activation = activation }
}

/// What a node computes.
public enum Op: Equatable, Sendable {
    /// The network's input image.
    case input
    /// Convolution, optionally followed by batch norm and an activation.
    case conv(ConvAttributes)
    /// Max or average pooling.
    case pool(PoolAttributes)
    /// Global average pooling to 1×1.
    case globalAvgPool
    /// Batch normalisation (learned scale and shift per channel).
    case batchNorm
    /// A standalone activation.
    case activation(Activation)
    /// Dropout with drop probability p.
    case dropout(Double)
    /// Fully connected layer on the flattened input.
    case linear(LinearAttributes)
    /// Softmax over channels (the classifier's output).
    case softmax
    /// Channel concatenation of all inputs.
    case concat
    /// Element-wise sum; inputs with fewer channels are zero-padded.
    case add

    /// The short kind name used for generated layer names and the JSON `op` field.
    public var kindName: String {
        switch self {
        case .input: return "input"
        case .conv: return "conv"
        case .pool(let p): return p.kind == .max ? "maxpool" : "avgpool"
        case .globalAvgPool: return "gap"
        case .batchNorm: return "bn"
        case .activation(let a):
            switch a { case .none: return "linear"; case .relu: return "relu"; case .leaky: return "leaky" }
        case .dropout: return "dropout"
        case .linear: return "fc"
        case .softmax: return "softmax"
        case .concat: return "concat"
        case .add: return "add"
        }
    }
}

/// One node of the network graph.
public struct Node: Sendable {
    /// Index in `Graph.nodes` (nodes are stored in topological order).
    public var id: Int
    /// Stable name: the user's label, or a generated one such as `conv3` or `3a.b2.conv`.
    public var name: String
    /// What it computes.
    public var op: Op
    /// Producers of its inputs (indices of earlier nodes).
    public var inputs: [Int]
    /// Output shape.
    public var shape: Shape
    /// The source text that produced this node (inside a block or module: the inner text).
    public var location: SourceLocation
    /// The innermost module instance that contains this node, if any.
    public var module: Int?
}

/// An instance of an expanded construct: an inception module, a pyramid (and its stages and
/// units), or a user block call. Modules nest.
public struct ModuleInstance: Sendable {
    /// Index in `Graph.modules`.
    public var id: Int
    /// Instance name (`3a`, `pyramid1`, `pyramid1.s2.u3`, `vgg2`).
    public var name: String
    /// `inception`, `pyramid`, `stage`, `unit` or `block`.
    public var kind: String
    /// A one-line description, e.g. `inception<64, 96, 128, 16, 32, 32>`.
    public var summary: String
    /// Where the statement that created it is.
    public var location: SourceLocation
    /// The enclosing module, if any.
    public var parent: Int?
    /// Nesting depth: 0 for a top-level module.
    public var depth: Int
}

/// A network: a DAG of nodes in topological order, the first node being the input.
public struct Graph: Sendable {
    /// The network's name (`network` statement, else the file name).
    public var name: String
    /// All nodes; `nodes[0]` is the input.
    public var nodes: [Node]
    /// All module instances.
    public var modules: [ModuleInstance]
    /// The node whose output is the network's output (the last node).
    public var output: Int { nodes.count - 1 }
    /// The input shape.
    public var inputShape: Shape { nodes[0].shape }
    /// Creates a graph.
    public init(name: String, nodes: [Node], modules: [ModuleInstance]) {
        self.name = name; self.nodes = nodes; self.modules = modules
    }

    /// Consumers of each node.
    public func consumers() -> [[Int]] {
        var c = [[Int]](repeating: [], count: nodes.count)
        for n in nodes { for i in n.inputs { c[i].append(n.id) } }
        return c
    }

    /// The chain of module ids from outermost to innermost for a node.
    public func modulePath(of node: Node) -> [Int] {
        var path: [Int] = []
        var m = node.module
        while let id = m { path.append(id); m = modules[id].parent }
        return path.reversed()
    }
}
