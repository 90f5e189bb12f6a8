import DSLIR

/// An executable operator of the CPU engine. Shapes are per sample (NHWC); see Layout.swift.
public enum EngineOp: Equatable, CustomStringConvertible {
    /// Square `kernel`×`kernel` convolution with symmetric zero padding `pad`; weight (K,K,IC,OC).
    case conv(kernel: Int, stride: Int, pad: Int, outChannels: Int, bias: Bool)
    /// Max pooling with PyTorch semantics (−∞ padding, floor or ceil output size).
    case maxPool(kernel: Int, stride: Int, pad: Int, ceilMode: Bool = false)
    /// Average pooling with PyTorch semantics (count_include_pad=True, windows clipped to input+padding).
    case avgPool(kernel: Int, stride: Int, pad: Int, ceilMode: Bool = false)
    /// Mean over height and width; output 1×1×C.
    case globalAvgPool
    /// max(x, 0), run in place when the planner finds it safe.
    case relu
    /// x > 0 ? x : slope·x.
    case leakyRelu(slope: Float)
    /// Batch normalisation over batch·height·width per channel, PyTorch semantics (momentum:
    /// running ← (1 − momentum)·running + momentum·batch). Without `scale` there is no weight
    /// parameter: γ ≡ 1, only the shift β is learned.
    case batchNorm(eps: Float = 1e-5, momentum: Float = 0.1, scale: Bool = true)
    /// Multiplication by a constant factor.
    case scale(Float)
    /// Inverted dropout with drop probability p (training only).
    case dropout(p: Float)
    /// Channel concatenation of one or more inputs with equal height and width.
    case concat
    /// Sum of two or more inputs with equal height and width; narrower inputs are zero-padded on channels.
    case add
    /// Fully connected layer on the flattened (H·W·C, NHWC order) input; output 1×1×outFeatures.
    case linear(outFeatures: Int, bias: Bool)
    /// Softmax over channels at every pixel (anywhere in the graph). As the last node it is the
    /// loss node: softmax cross-entropy from its input (`EngineGraph.loss(labels:batch:)`).
    case softmax
    /// General convolution: rectangular kernel and stride, four paddings, dilation, groups;
    /// weight (KH,KW,IC/G,OC), output channel oc in group oc/(OC/G) (Ops/GroupedConv.swift).
    /// Depthwise (G = IC = OC) runs its own kernel (Ops/DepthwiseConv.swift). Lowering keeps
    /// `.conv` for square, symmetric, undilated, ungrouped convolutions.
    case convolution(ConvGeometry)
    /// An elementwise activation other than (leaky) ReLU, PyTorch's definitions (Ops/Activation.swift).
    case activation(EngineActivation)
    /// Elementwise product of two or more inputs of equal channels; an input of 1×1×C is
    /// broadcast over the others' H×W (squeeze-and-excitation).
    case mul
    /// Adaptive average pooling to height×width with PyTorch's bins (Ops/AdaptiveAvgPool.swift).
    case adaptiveAvgPool(height: Int, width: Int)

    /// A short name of the operator, e.g. "conv3x3/s2".
    public var description: String {
        switch self {
        case let .conv(k, s, p, oc, bias): return "conv\(k)x\(k)/s\(s)/p\(p)→\(oc)\(bias ? "+bias" : "")"
        case let .maxPool(k, s, p, ceil): return "maxPool\(k)x\(k)/s\(s)/p\(p)\(ceil ? "/ceil" : "")"
        case let .avgPool(k, s, p, ceil): return "avgPool\(k)x\(k)/s\(s)/p\(p)\(ceil ? "/ceil" : "")"
        case .globalAvgPool: return "globalAvgPool"
        case .relu: return "relu"
        case let .leakyRelu(slope): return "leakyRelu(\(slope))"
        case let .batchNorm(_, _, scale): return scale ? "batchNorm" : "batchNorm/noscale"
        case let .scale(a): return "scale(\(a))"
        case let .dropout(p): return "dropout(\(p))"
        case .concat: return "concat"
        case .add: return "add"
        case let .linear(out, bias): return "linear→\(out)\(bias ? "+bias" : "")"
        case .softmax: return "softmax"
        case let .convolution(g): return g.description
        case let .activation(a): return a.rawValue
        case .mul: return "mul"
        case let .adaptiveAvgPool(h, w): return "adaptiveAvgPool→\(h)x\(w)"
        }
    }
}

/// Geometry of a general convolution (`EngineOp.convolution`).
public struct ConvGeometry: Equatable, Hashable, CustomStringConvertible {
    public var kernelHeight: Int, kernelWidth: Int
    public var strideHeight: Int, strideWidth: Int
    public var padTop: Int, padLeft: Int, padBottom: Int, padRight: Int
    public var dilationHeight: Int, dilationWidth: Int
    /// Input and output channels are split into this many groups (1: ordinary convolution).
    public var groups: Int
    public var outChannels: Int
    public var bias: Bool

    /// Creates a geometry; omitted values are those of a plain stride-1 unpadded convolution.
    public init(kernelHeight: Int, kernelWidth: Int, strideHeight: Int = 1, strideWidth: Int = 1,
                padTop: Int = 0, padLeft: Int = 0, padBottom: Int = 0, padRight: Int = 0,
                dilationHeight: Int = 1, dilationWidth: Int = 1, groups: Int = 1, outChannels: Int, bias: Bool) {
        self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideHeight = strideHeight; self.strideWidth = strideWidth
        self.padTop = padTop; self.padLeft = padLeft; self.padBottom = padBottom; self.padRight = padRight
        self.dilationHeight = dilationHeight; self.dilationWidth = dilationWidth
        self.groups = groups; self.outChannels = outChannels; self.bias = bias
    }

    /// "conv3x3/s2x2/p1,1,1,1/d1x1/g32→64+bias".
    public var description: String {
        "conv\(kernelHeight)x\(kernelWidth)/s\(strideHeight)x\(strideWidth)/p\(padTop),\(padLeft),\(padBottom),\(padRight)"
            + (dilationHeight == 1 && dilationWidth == 1 ? "" : "/d\(dilationHeight)x\(dilationWidth)")
            + (groups == 1 ? "" : "/g\(groups)") + "→\(outChannels)\(bias ? "+bias" : "")"
    }

    /// Output height and width for an input of h×w, or nil when the dilated kernel does not fit.
    public func outputSize(height h: Int, width w: Int) -> (height: Int, width: Int)? {
        let eh = dilationHeight * (kernelHeight - 1) + 1, ew = dilationWidth * (kernelWidth - 1) + 1
        let ph = h + padTop + padBottom, pw = w + padLeft + padRight
        guard ph >= eh, pw >= ew else { return nil }
        return ((ph - eh) / strideHeight + 1, (pw - ew) / strideWidth + 1)
    }

    /// Depthwise with multiplier 1 (G = IC = OC): runs `DepthwiseConvKernel`.
    func isDepthwise(inChannels: Int) -> Bool { groups == inChannels && outChannels == inChannels }
}

/// Elementwise activations with PyTorch's definitions (and autograd's gradients at the kinks).
public enum EngineActivation: String, CaseIterable, Equatable, Hashable, Sendable {
    /// x·Φ(x) = x/2·(1 + erf(x/√2)) (torch.nn.GELU(), exact form).
    case gelu
    /// x·σ(x) (torch.nn.SiLU).
    case silu
    /// min(max(x, 0), 6) (torch.nn.ReLU6 = hardtanh(0, 6)); gradient 0 at 0 and 6.
    case relu6
    /// x·relu6(x + 3)/6 (torch.nn.Hardswish); gradient x/3 + 1/2 on [−3, 3], so −1/2 at −3 and 3/2 at 3.
    case hardswish
    /// relu6(x + 3)/6 (torch.nn.Hardsigmoid); gradient 1/6 on the open (−3, 3), 0 at ±3.
    case hardsigmoid
    /// 1/(1 + e^−x).
    case sigmoid
    /// tanh(x).
    case tanh

    /// Backward needs only the output (so the activation may run in place): the output
    /// determines the gradient (relu6 and hardsigmoid: strictly inside their range ⇔ the input
    /// strictly inside the open interval where the gradient is non-zero).
    var backwardFromOutput: Bool {
        switch self {
        case .relu6, .hardsigmoid, .sigmoid, .tanh: return true
        case .gelu, .silu, .hardswish: return false
        }
    }
}

/// How a parameter is initialised.
enum ParameterInit {
    /// N(0, std²).
    case normal(std: Double)
    /// Every element equal to the value.
    case constant(Float)
    /// U(−bound, bound) (PyTorch's default for convolutions and linear layers, bound 1/√fan_in).
    case uniform(bound: Double)
    /// torch.nn.init.dirac_ on the first min(IC, OC) filters of a (KH,KW,IC,OC) weight: filter
    /// o passes input channel o through at the kernel centre (KH/2, KW/2); the other filters
    /// U(−bound, bound).
    case dirac(bound: Double)
}

/// A parameter or buffer an operator owns, before storage is assigned.
struct ParameterSpec {
    var suffix: String
    var shape: [Int]
    var initializer: ParameterInit
    /// When the optimiser updates it.
    var training: ParameterTraining = .always
    /// An initialisation from the training data, applied by the trainer.
    var dataInitialization: DataInitialization? = nil
    var count: Int { shape.reduce(1, *) }
}

extension EngineOp {
    /// Backward reads the operator's input values (kept alive until then in training). The
    /// final softmax's loss reads its logits too: the graph keeps the last node's inputs to the end.
    var backwardReadsInputs: Bool {
        switch self {
        case .conv, .linear, .convolution, .mul: return true
        case let .leakyRelu(slope): return slope <= 0
        case let .activation(a): return !a.backwardFromOutput
        default: return false
        }
    }

    /// Backward reads the operator's own output (kept alive until then in training).
    var backwardReadsOutput: Bool {
        switch self {
        case .relu, .softmax: return true
        case let .leakyRelu(slope): return slope > 0
        case let .activation(a): return a.backwardFromOutput
        default: return false
        }
    }

    /// The output may overwrite the input (elementwise, backward needs only the output).
    /// Whether this is a dropout (the identity outside training).
    var isDropout: Bool {
        if case .dropout = self { return true }
        return false
    }

    var mayRunInPlace: Bool {
        switch self {
        case .relu: return true
        case let .leakyRelu(slope): return slope > 0
        case let .activation(a): return a.backwardFromOutput
        default: return false
        }
    }

    /// Floats per sample the forward pass saves for backward in training (BN's x̂, max-pool
    /// argmax indices, dropout's mask).
    func savedFloatsPerSample(input: EngineShape, output: EngineShape) -> Int {
        switch self {
        case .batchNorm, .dropout: return input.count
        case .maxPool: return wideArgmax(input) ? 2 * output.count : output.count
        default: return 0
        }
    }

    /// Trainable parameters, in storage order.
    func parameterSpecs(inputs: [EngineShape], output: EngineShape) -> [ParameterSpec] {
        switch self {
        case let .conv(k, _, _, oc, bias):
            // Kaiming normal, std = sqrt(2/n), over the larger fan: n = K·K·max(IC, OC). Where
            // the convolution widens or keeps the width this is the fan-out (the PyramidNet
            // authors' code); where it narrows, as the All-CNN 1x1 192 -> 10 classifier does, the
            // fan-in, so the logits do not start sqrt(IC/OC) times too large (with the fan-out
            // the paper's networks died at their first steps, issue 17).
            let fan = k * k * max(inputs[0].channels, oc)
            var specs = [ParameterSpec(suffix: "weight", shape: [k, k, inputs[0].channels, oc],
                                       initializer: .normal(std: (2.0 / Double(fan)).squareRoot()))]
            if bias { specs.append(ParameterSpec(suffix: "bias", shape: [oc], initializer: .constant(0))) }
            return specs
        case let .convolution(g):
            // As for `.conv`, over the larger fan with PyTorch's fans of a grouped convolution:
            // fan-in KH·KW·IC/G, fan-out KH·KW·OC (for depthwise layers the fan-out, as
            // torchvision's MobileNets initialise them).
            let ic = inputs[0].channels, area = g.kernelHeight * g.kernelWidth
            let fan = area * max(ic / g.groups, g.outChannels)
            var specs = [ParameterSpec(suffix: "weight", shape: [g.kernelHeight, g.kernelWidth, ic / g.groups, g.outChannels],
                                       initializer: .normal(std: (2.0 / Double(fan)).squareRoot()))]
            if g.bias { specs.append(ParameterSpec(suffix: "bias", shape: [g.outChannels], initializer: .constant(0))) }
            return specs
        case let .batchNorm(_, _, scale):
            let c = inputs[0].channels
            let shift = ParameterSpec(suffix: "bias", shape: [c], initializer: .constant(0))
            return scale ? [ParameterSpec(suffix: "weight", shape: [c], initializer: .constant(1)), shift] : [shift]
        case let .linear(out, bias):
            let features = inputs[0].count
            var specs = [ParameterSpec(suffix: "weight", shape: [features, out],
                                       initializer: .normal(std: (1.0 / Double(features)).squareRoot()))]
            if bias { specs.append(ParameterSpec(suffix: "bias", shape: [out], initializer: .constant(0))) }
            return specs
        default:
            return []
        }
    }

    /// Non-trainable state (BN running statistics), in storage order.
    func bufferSpecs(inputs: [EngineShape]) -> [ParameterSpec] {
        guard case .batchNorm = self else { return [] }
        let c = inputs[0].channels
        return [ParameterSpec(suffix: "running_mean", shape: [c], initializer: .constant(0)),
                ParameterSpec(suffix: "running_var", shape: [c], initializer: .constant(1))]
    }

    /// Infers the output shape, throwing a message that names `node` when the inputs do not fit.
    func outputShape(inputs: [EngineShape], node: String) throws -> EngineShape {
        func fail(_ message: String) -> EngineGraphError {
            EngineGraphError("node '\(node)' (\(self)): \(message)")
        }
        // Convolution and pooling sizes follow the IR's rules (`ShapeRules`, Grammar.md "Shapes"),
        // so the engine accepts exactly what `dsl check` accepts.
        func irShape(_ op: Op, _ x: EngineShape) throws -> EngineShape {
            var errors: [String] = [], warnings: [String] = []
            guard let y = ShapeRules.infer(op, inputs: [Shape(x.height, x.width, x.channels)], errors: &errors,
                                           warnings: &warnings) else {
                throw fail(errors.first ?? "the window does not fit the input \(x)")
            }
            return EngineShape(height: y.height, width: y.width, channels: y.channels)
        }
        func single() throws -> EngineShape {
            guard inputs.count == 1 else { throw fail("expects exactly 1 input, got \(inputs.count)") }
            return inputs[0]
        }
        switch self {
        case let .conv(k, s, p, oc, bias):
            let x = try single()
            guard k >= 1, s >= 1, p >= 0, oc >= 1 else {
                throw fail("kernel, stride and output channels must be ≥ 1 and padding ≥ 0")
            }
            return try irShape(.conv(ConvAttributes(kernel: k, stride: s, pad: p, filters: oc, bias: bias,
                                                    batchNorm: false, activation: .none)), x)
        case let .maxPool(k, s, p, ceil), let .avgPool(k, s, p, ceil):
            let x = try single()
            guard k >= 1, s >= 1, p >= 0 else { throw fail("kernel and stride must be ≥ 1 and padding ≥ 0") }
            guard p <= k / 2 else { throw fail("padding \(p) must be at most half the kernel \(k)") }
            let kind: PoolKind
            if case .maxPool = self { kind = .max } else { kind = .avg }
            return try irShape(.pool(PoolAttributes(kind: kind, kernel: k, stride: s, pad: p, ceil: ceil)), x)
        case .globalAvgPool:
            let x = try single()
            return EngineShape(height: 1, width: 1, channels: x.channels)
        case .relu, .leakyRelu, .batchNorm, .scale:
            return try single()
        case let .dropout(p):
            let x = try single()
            guard p >= 0, p < 1 else { throw fail("drop probability must be in [0, 1)") }
            return x
        case .concat, .add:
            let minimum = self == .concat ? 1 : 2
            guard inputs.count >= minimum else { throw fail("expects at least \(minimum) inputs, got \(inputs.count)") }
            let first = inputs[0]
            for x in inputs where x.height != first.height || x.width != first.width {
                throw fail("inputs differ in height×width: \(inputs.map(\.description).joined(separator: ", "))")
            }
            let channels = self == .concat ? inputs.reduce(0) { $0 + $1.channels } : inputs.map(\.channels).max()!
            return EngineShape(height: first.height, width: first.width, channels: channels)
        case let .linear(out, _):
            _ = try single()
            guard out >= 1 else { throw fail("output features must be ≥ 1") }
            return EngineShape(height: 1, width: 1, channels: out)
        case .softmax:
            return try single()
        case let .convolution(g):
            let x = try single()
            guard g.kernelHeight >= 1, g.kernelWidth >= 1, g.strideHeight >= 1, g.strideWidth >= 1,
                  g.dilationHeight >= 1, g.dilationWidth >= 1, g.outChannels >= 1, g.groups >= 1,
                  min(g.padTop, g.padLeft, g.padBottom, g.padRight) >= 0 else {
                throw fail("kernel, stride, dilation, groups and output channels must be ≥ 1 and padding ≥ 0")
            }
            guard x.channels % g.groups == 0, g.outChannels % g.groups == 0 else {
                throw fail("groups \(g.groups) must divide the input channels \(x.channels) and the output channels \(g.outChannels)")
            }
            guard g.outputSize(height: x.height, width: x.width) != nil else {
                throw fail("the dilated \(g.kernelHeight)x\(g.kernelWidth) kernel does not fit the padded input \(x)")
            }
            return try irShape(.conv(ConvAttributes(
                kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth, strideHeight: g.strideHeight,
                strideWidth: g.strideWidth, padTop: g.padTop, padLeft: g.padLeft, padBottom: g.padBottom,
                padRight: g.padRight, dilationHeight: g.dilationHeight, dilationWidth: g.dilationWidth, groups: g.groups,
                filters: g.outChannels, bias: g.bias, batchNorm: false, activation: .none)), x)
        case .activation:
            return try single()
        case .mul:
            guard inputs.count >= 2 else { throw fail("expects at least 2 inputs, got \(inputs.count)") }
            let full = inputs.filter { $0.height != 1 || $0.width != 1 }
            let first = full.first ?? inputs[0]
            for x in inputs where x.channels != first.channels
                || ((x.height != 1 || x.width != 1) && (x.height != first.height || x.width != first.width)) {
                throw fail("inputs must be H×W×C or 1×1×C with equal C: \(inputs.map(\.description).joined(separator: ", "))")
            }
            return first
        case let .adaptiveAvgPool(oh, ow):
            let x = try single()
            guard oh >= 1, ow >= 1 else { throw fail("output size must be ≥ 1") }
            return EngineShape(height: oh, width: ow, channels: x.channels)
        }
    }
}
