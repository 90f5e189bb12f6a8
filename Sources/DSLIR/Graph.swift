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
    /// x·Φ(x), the exact (erf) form: 0.5·x·(1 + erf(x/√2)), as torch.nn.GELU().
    case gelu
    /// x·σ(x) (also called swish).
    case silu
    /// min(max(x, 0), 6).
    case relu6
    /// x·relu6(x + 3)/6.
    case hardswish
    /// relu6(x + 3)/6.
    case hardsigmoid
    /// 1/(1 + e^−x).
    case sigmoid
    /// tanh(x).
    case tanh

    /// The word that names it in a spec (`act=WORD`, or the standalone layer): `linear` for
    /// none; a leaky ReLU's slope is not part of it.
    public var keyword: String {
        switch self {
        case .none: return "linear"
        case .relu: return "relu"
        case .leaky: return "leaky"
        case .gelu: return "gelu"
        case .silu: return "silu"
        case .relu6: return "relu6"
        case .hardswish: return "hardswish"
        case .hardsigmoid: return "hardsigmoid"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        }
    }

    /// The activations without a parameter, by keyword (`swish` is another name for `silu`).
    public static let plain: [String: Activation] = [
        "relu": .relu, "gelu": .gelu, "silu": .silu, "swish": .silu, "relu6": .relu6,
        "hardswish": .hardswish, "hardsigmoid": .hardsigmoid, "sigmoid": .sigmoid, "tanh": .tanh,
    ]
}

/// A batch normalisation's settings (PyTorch's nn.BatchNorm2d): whether it has a learned
/// scale γ (`scale=off`: γ ≡ 1, no parameter), the momentum of its running statistics in
/// PyTorch's convention (running ← (1 − momentum)·running + momentum·batch) and ε.
public struct BatchNormAttributes: Equatable, Sendable {
    /// Whether it has a learned scale γ (else γ ≡ 1 and only the shift β is a parameter).
    public var scale: Bool
    /// The fraction of the batch statistic mixed into the running statistics at every step.
    public var momentum: Double
    /// Added to the variance before the square root.
    public var epsilon: Double
    /// Which of its parameters train when (standalone `bn`; a convolution's batch norm follows
    /// the convolution's `training`).
    public var training: LayerTraining
    /// Creates batch-norm settings (the defaults are PyTorch's).
    public init(scale: Bool = true, momentum: Double = 0.1, epsilon: Double = 1e-5, training: LayerTraining = LayerTraining()) {
        self.scale = scale; self.momentum = momentum; self.epsilon = epsilon; self.training = training
    }
}

/// How a convolution's or linear layer's weights (and biases) start.
public enum WeightInit: Equatable, Sendable {
    /// The engine's default: normal, Kaiming std over the larger fan for convolutions, LeCun
    /// std √(1/fan_in) for linear layers; biases 0.
    case he
    /// PyTorch's default (kaiming_uniform with a = √5): weights and biases U(±1/√fan_in).
    case torch
    /// torch.nn.init.dirac_ on the first min(IC, OC) filters (filter i passes input channel i
    /// through at the kernel centre), PyTorch's default U(±1/√fan_in) for the others; bias 0.
    case dirac
    /// The weights are computed from the training data as a patch-whitening filter bank with
    /// this ε (the trainer does it); needs OC = 2·KH·KW·IC; bias 0.
    case whiten(epsilon: Double)

    /// The word after `init=`.
    public var keyword: String {
        switch self {
        case .he: return "he"
        case .torch: return "torch"
        case .dirac: return "dirac"
        case .whiten: return "whiten"
        }
    }
}

/// Which of a layer's parameters the optimiser updates, and for how long.
public struct LayerTraining: Equatable, Sendable {
    /// The weight (a convolution's kernel, a linear matrix, a batch norm's scale) is never trained.
    public var frozenWeight: Bool
    /// The bias (a batch norm's shift) is never trained.
    public var frozenBias: Bool
    /// Parameters not frozen train in epochs 0..<N only (nil: in every epoch).
    public var epochs: Int?
    /// Creates a training rule (the default: everything trains in every epoch).
    public init(frozenWeight: Bool = false, frozenBias: Bool = false, epochs: Int? = nil) {
        self.frozenWeight = frozenWeight; self.frozenBias = frozenBias; self.epochs = epochs
    }
    /// Whether it is the default (nothing frozen, no epoch limit).
    public var isDefault: Bool { !frozenWeight && !frozenBias && epochs == nil }
}

/// Max or average pooling.
public enum PoolKind: String, Sendable {
    case max, avg
}

/// A convolution's attributes: a KH×KW kernel, SH×SW stride, zero padding on each of the four
/// sides, DH×DW dilation and G groups (PyTorch's nn.Conv2d, plus asymmetric padding).
public struct ConvAttributes: Equatable, Sendable {
    /// Kernel rows.
    public var kernelHeight: Int
    /// Kernel columns.
    public var kernelWidth: Int
    /// Stride along rows.
    public var strideHeight: Int
    /// Stride along columns.
    public var strideWidth: Int
    /// Zero rows above the input.
    public var padTop: Int
    /// Zero columns left of the input.
    public var padLeft: Int
    /// Zero rows below the input.
    public var padBottom: Int
    /// Zero columns right of the input.
    public var padRight: Int
    /// Dilation along rows (1: a dense kernel).
    public var dilationHeight: Int
    /// Dilation along columns.
    public var dilationWidth: Int
    /// Groups: input and output channels are split into G groups, output group g sees only input
    /// group g (1: an ordinary convolution; G = input channels = filters: depthwise). Output
    /// channel oc belongs to group oc / (filters / G), as in PyTorch.
    public var groups: Int
    /// Output channels (filters).
    public var filters: Int
    /// Whether the convolution has a bias.
    public var bias: Bool
    /// Whether batch norm follows (before the activation).
    public var batchNorm: Bool
    /// The activation after it.
    public var activation: Activation
    /// The settings of its batch norm (when `batchNorm`): `bn-scale=`, `bn-momentum=`, `bn-eps=`.
    public var norm: BatchNormAttributes = BatchNormAttributes()
    /// How its weights start (`init=`).
    public var initializer: WeightInit = .he
    /// Which parameters train when (`freeze`, `train-epochs=`); covers its batch norm's too
    /// (the scale counts as a weight, the shift as a bias).
    public var training: LayerTraining = LayerTraining()
    /// Creates conv attributes.
    public init(kernelHeight: Int, kernelWidth: Int, strideHeight: Int, strideWidth: Int,
                padTop: Int, padLeft: Int, padBottom: Int, padRight: Int,
                dilationHeight: Int = 1, dilationWidth: Int = 1, groups: Int = 1,
                filters: Int, bias: Bool, batchNorm: Bool, activation: Activation) {
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight; self.strideWidth = strideWidth
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.dilationHeight = dilationHeight; self.dilationWidth = dilationWidth; self.groups = groups
        self.filters = filters; self.bias = bias; self.batchNorm = batchNorm; self.activation = activation
    }
    /// Creates the attributes of a square convolution: k×k kernel, stride s, padding p on every
    /// side, no dilation, one group.
    public init(kernel: Int, stride: Int, pad: Int, filters: Int, bias: Bool, batchNorm: Bool, activation: Activation) {
        self.init(kernelHeight: kernel, kernelWidth: kernel, strideHeight: stride, strideWidth: stride,
                  padTop: pad, padLeft: pad, padBottom: pad, padRight: pad,
                  filters: filters, bias: bias, batchNorm: batchNorm, activation: activation)
    }

    /// (kernel, stride, pad) when the convolution is the square kind every consumer handled
    /// before rectangles, dilation and groups existed: k×k, equal strides, the same padding on
    /// all four sides, no dilation, one group. nil otherwise: code that only knows square
    /// convolutions must refuse (or skip) the layer rather than read one axis.
    public var square: (kernel: Int, stride: Int, pad: Int)? {
        guard kernelHeight == kernelWidth, strideHeight == strideWidth,
              padTop == padLeft, padTop == padBottom, padTop == padRight,
              dilationHeight == 1, dilationWidth == 1, groups == 1 else { return nil }
        return (kernelHeight, strideHeight, padTop)
    }

    /// Rows the dilated kernel spans: dilation·(KH − 1) + 1.
    public var spanHeight: Int { dilationHeight * (kernelHeight - 1) + 1 }
    /// Columns the dilated kernel spans: dilation·(KW − 1) + 1.
    public var spanWidth: Int { dilationWidth * (kernelWidth - 1) + 1 }
    /// Whether top equals bottom and left equals right (what nn.Conv2d's `padding` can say).
    public var hasSymmetricAxes: Bool { padTop == padBottom && padLeft == padRight }
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
    /// The spec says `floor`: rounding down is intended, so a border row or column the windows
    /// do not reach is not warned about.
    public var statedFloor: Bool = false
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
    /// How its weight and bias start (`init=he|torch`).
    public var initializer: WeightInit = .he
    /// Which parameters train when (`freeze`, `train-epochs=`).
    public var training: LayerTraining = LayerTraining()
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
    /// Adaptive average pooling to height × width (PyTorch's AdaptiveAvgPool2d bins: output
    /// row i averages input rows floor(i·H/OH) ..< ceil((i+1)·H/OH), and likewise columns).
    case adaptiveAvgPool(height: Int, width: Int)
    /// Batch normalisation (a learned shift per channel, and a learned scale unless `scale=off`).
    case batchNorm(BatchNormAttributes)
    /// Multiplication by a constant (`scale 1/9`).
    case scale(Double)
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
    /// Element-wise sum of inputs of the same height and width. With `zeroPad` (stated by the
    /// user, `add zeropad`, or by the `pyramid` expansion) inputs with fewer channels are
    /// zero-padded to the widest; without it every input has the same channels.
    case add(zeroPad: Bool)
    /// Element-wise product of inputs of the same shape, or of 1×1×C inputs broadcast over the
    /// others' height and width (squeeze-and-excitation). All inputs have the same channels.
    case mul

    /// A batch normalisation with PyTorch's defaults (a learned scale, momentum 0.1, ε 1e-5).
    public static var batchNorm: Op { .batchNorm(BatchNormAttributes()) }

    /// Whether it is a merge of branches (`concat`, `add`, `mul`).
    public var isMerge: Bool {
        switch self {
        case .concat, .add, .mul: return true
        default: return false
        }
    }

    /// The short kind name used for generated layer names and the JSON `op` field (an adaptive
    /// average pooling is an `avgpool`, as the `pool avg` statement that writes it).
    public var kindName: String {
        switch self {
        case .input: return "input"
        case .conv: return "conv"
        case .pool(let p): return p.kind == .max ? "maxpool" : "avgpool"
        case .globalAvgPool: return "gap"
        case .adaptiveAvgPool: return "avgpool"
        case .batchNorm: return "bn"
        case .scale: return "scale"
        case .activation(let a): return a.keyword
        case .dropout: return "dropout"
        case .linear: return "fc"
        case .softmax: return "softmax"
        case .concat: return "concat"
        case .add: return "add"
        case .mul: return "mul"
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
