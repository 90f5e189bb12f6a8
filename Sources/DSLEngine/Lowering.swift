import DSLIR

/// A network lowered to the engine: the executable graph and, for every IR node, the engine node
/// that holds its output.
public struct LoweredNetwork {
    /// The executable graph (not yet compiled).
    public let engine: EngineGraph
    /// Engine node holding each IR node's output (indexed like `Graph.nodes`).
    public let outputOf: [Int]
    /// For every engine node, the IR node it came from (for per-layer reports).
    public let sourceOf: [Int]
}

/// Errors that make a checked network impossible to lower, located at the IR node (and so at
/// the source text, `Graph.nodes[node].location`) they come from.
public struct LoweringError: Error, CustomStringConvertible {
    /// The IR node (index in `Graph.nodes`) whose layer could not be lowered.
    public let node: Int
    /// What went wrong, naming the layer ("layer 'conv3': ...").
    public let message: String
    /// Creates an error at an IR node.
    public init(node: Int, message: String) {
        self.node = node
        self.message = message
    }
    /// The message.
    public var description: String { message }
}

/// Lowers IR to the engine: a conv with batch norm and an activation becomes three engine
/// nodes (`name`, `name.bn`, `name.relu` or `name.relu6`, ... after the activation's keyword), identity activations and zero dropout vanish, and
/// every engine node is named after the IR layer it implements, so parameter names
/// (`conv3.weight`, `3a.b2.conv.bias`, `conv1.bn.weight`) match `dsl check`'s layer names.
public func lower(_ g: Graph, maxBatch: Int, seed: UInt64) throws -> LoweredNetwork {
    let engine = EngineGraph(inputShape: (g.inputShape.height, g.inputShape.width, g.inputShape.channels), maxBatch: maxBatch, seed: seed)
    var outputOf = [Int](repeating: 0, count: g.nodes.count)
    var sourceOf = [0]
    func add(_ op: EngineOp, _ inputs: [Int], _ name: String, _ irNode: Int) throws -> Int {
        do {
            let id = try engine.add(op, inputs: inputs, name: name)
            sourceOf.append(irNode)
            return id
        } catch {
            throw LoweringError(node: irNode, message: "layer '\(name)': \(error)")
        }
    }
    func activation(_ a: Activation, after x: Int, _ name: String, _ irNode: Int) throws -> Int {
        let op: EngineOp
        switch a {
        case .none: return x
        case .relu: return try add(.relu, [x], name + ".relu", irNode)
        case .leaky(let s): return try add(.leakyRelu(slope: Float(s)), [x], name + ".leaky", irNode)
        case .gelu: op = .activation(.gelu)
        case .silu: op = .activation(.silu)
        case .relu6: op = .activation(.relu6)
        case .hardswish: op = .activation(.hardswish)
        case .hardsigmoid: op = .activation(.hardsigmoid)
        case .sigmoid: op = .activation(.sigmoid)
        case .tanh: op = .activation(.tanh)
        }
        return try add(op, [x], name + "." + a.keyword, irNode)
    }
    func batchNorm(_ b: BatchNormAttributes) -> EngineOp {
        .batchNorm(eps: Float(b.epsilon), momentum: Float(b.momentum), scale: b.scale)
    }
    /// Records a node's `init=`, `freeze` and `train-epochs=` (nothing when all are defaults).
    func settings(_ node: Int, _ initializer: WeightInit, fanIn: Int, _ t: LayerTraining) {
        func training(frozen: Bool) -> ParameterTraining {
            frozen ? .never : t.epochs.map { .firstEpochs($0) } ?? .always
        }
        var s = ParameterSettings(weightTraining: training(frozen: t.frozenWeight), biasTraining: training(frozen: t.frozenBias))
        switch initializer {
        case .he: break
        case .torch: s.initialization = .torch(fanIn: fanIn)
        case .dirac: s.initialization = .dirac(fanIn: fanIn)
        case let .whiten(epsilon):
            s.initialization = .zeroBias
            s.weightDataInitialization = .patchWhitening(epsilon: epsilon)
        }
        if s != ParameterSettings() { engine.parameterSettings[node] = s }
    }
    for n in g.nodes where n.id > 0 {
        let ins = n.inputs.map { outputOf[$0] }
        var y: Int
        switch n.op {
        case .input:
            y = 0
        case .conv(let c):
            // Square, symmetric, undilated and ungrouped: the square kernels (Winograd, direct,
            // GEMM) as before; anything else the general convolution (depthwise: its own kernel).
            let op: EngineOp
            if let sq = c.square {
                op = .conv(kernel: sq.kernel, stride: sq.stride, pad: sq.pad, outChannels: c.filters, bias: c.bias)
            } else {
                op = .convolution(ConvGeometry(
                    kernelHeight: c.kernelHeight, kernelWidth: c.kernelWidth, strideHeight: c.strideHeight,
                    strideWidth: c.strideWidth, padTop: c.padTop, padLeft: c.padLeft, padBottom: c.padBottom,
                    padRight: c.padRight, dilationHeight: c.dilationHeight, dilationWidth: c.dilationWidth,
                    groups: c.groups, outChannels: c.filters, bias: c.bias))
            }
            y = try add(op, ins, n.name, n.id)
            let fanIn = c.kernelHeight * c.kernelWidth * (g.nodes[n.inputs[0]].shape.channels / max(c.groups, 1))
            settings(y, c.initializer, fanIn: fanIn, c.training)
            if c.batchNorm {
                y = try add(batchNorm(c.norm), [y], n.name + ".bn", n.id)
                settings(y, .he, fanIn: 0, c.training)
            }
            y = try activation(c.activation, after: y, n.name, n.id)
        case .pool(let p):
            y = try add(p.kind == .max ? .maxPool(kernel: p.kernel, stride: p.stride, pad: p.pad, ceilMode: p.ceil)
                                       : .avgPool(kernel: p.kernel, stride: p.stride, pad: p.pad, ceilMode: p.ceil), ins, n.name, n.id)
        case .globalAvgPool:
            y = try add(.globalAvgPool, ins, n.name, n.id)
        case .adaptiveAvgPool(let h, let w):
            // To 1x1 it is global average pooling.
            y = try add(h == 1 && w == 1 ? .globalAvgPool : .adaptiveAvgPool(height: h, width: w), ins, n.name, n.id)
        case .batchNorm(let b):
            y = try add(batchNorm(b), ins, n.name, n.id)
            settings(y, .he, fanIn: 0, b.training)
        case .scale(let a):
            y = try add(.scale(Float(a)), ins, n.name, n.id)
        case .activation(let a):
            y = try activation(a, after: ins[0], n.name, n.id)
        case .dropout(let p):
            y = p > 0 ? try add(.dropout(p: Float(p)), ins, n.name, n.id) : ins[0]
        case .linear(let l):
            y = try add(.linear(outFeatures: l.units, bias: l.bias), ins, n.name, n.id)
            settings(y, l.initializer, fanIn: g.nodes[n.inputs[0]].shape.elements, l.training)
            y = try activation(l.activation, after: y, n.name, n.id)
        case .softmax:
            y = try add(.softmax, ins, n.name, n.id)
        case .concat:
            y = ins.count == 1 ? ins[0] : try add(.concat, ins, n.name, n.id)
        case .add:
            y = try add(.add, ins, n.name, n.id)
        case .mul:
            y = ins.count == 1 ? ins[0] : try add(.mul, ins, n.name, n.id)
        }
        outputOf[n.id] = y
    }
    // The classifier's first engine node is its convolution or fully connected layer (then its ReLU).
    if let classifier = reluClassifier(g), let layer = sourceOf.firstIndex(of: classifier) { engine.initialBias[layer] = classifierReLUBias }
    return LoweredNetwork(engine: engine, outputOf: outputOf, sourceOf: sourceOf)
}

/// The bias the ReLU classifier starts with (`reluClassifier`).
public let classifierReLUBias: Float = 1

/// The layer that computes a softmax network's class scores when a ReLU follows it (a
/// convolution or fully connected layer with a bias and `act=relu`, reached from the final
/// softmax through global average pooling, pooling and dropout only), as in the All-CNN
/// networks: `conv 1 1 10 ; gap ; softmax`. Its bias starts at `classifierReLUBias` instead of
/// 0, as AlexNet started the biases of some ReLU layers at 1 (Krizhevsky et al. 2012), so that
/// every class unit starts active for every image: with bias 0 the first steps at the default
/// learning rate switched class units off for good (Model C at --lr 0.02 ended with 4 of the 10
/// classes never predicted, at 0.03 and 0.05 with all of them dead; issue 17). With the bias
/// only the starting point changes; the layer computes what the spec says.
public func reluClassifier(_ g: Graph) -> Int? {
    guard g.nodes[g.output].op == .softmax, var x = g.nodes[g.output].inputs.first else { return nil }
    while true {
        switch g.nodes[x].op {
        case .globalAvgPool, .pool, .dropout:
            x = g.nodes[x].inputs[0]
        case .conv(let c) where c.bias && !c.batchNorm && c.activation == .relu:
            return x
        case .linear(let l) where l.bias && l.activation == .relu:
            return x
        default:
            return nil
        }
    }
}
