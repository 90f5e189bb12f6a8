import DSLEngine
import DSLIR
import DSLTraining

/// Export of a checked network and its weights to an ONNX model (README, "Export and scale out").
///
/// The model imports the default operator set, version 17 (IR version 8), and is written by
/// `ProtobufWriter` alone. Its input `input` is float32 (N, C, H, W) with a dynamic batch
/// dimension "N", as ONNX tools expect; every tensor inside is NCHW too. Its output `output` is
/// (N, C) when the network's output map is 1×1 (a classifier), else (N, C, H, W).
///
/// Every IR node becomes the ONNX nodes that compute exactly what the engine computes in
/// inference (Sources/DSLEngine/Lowering.swift and Ops/*), named after `dsl check`'s layer
/// names, the sub-steps as the engine names them (`conv3`, `conv3.bn`, `conv3.relu`):
///
/// * conv: Conv (weight (OC, IC/G, KH, KW), transposed from dsl's (KH, KW, IC/G, OC); strides,
///   pads (top, left, bottom, right), dilations and group as the layer's; bias when it has
///   one), then BatchNormalization (the layer's epsilon, 1e-5 by default, the running statistics;
///   a scale of ones without a learned one) with `bn`, then the
///   activation (`conv3.relu`, `conv3.gelu`, ...);
/// * activations: Relu, LeakyRelu (alpha = slope), Sigmoid, Tanh, HardSigmoid (alpha 1/6,
///   beta 1/2), HardSwish, Clip(0, 6) for relu6, Mul(x, Sigmoid(x)) for silu, and the exact
///   GELU as 0.5·x·(1 + Erf(x/√2)) (Gelu is opset 20);
/// * pool avg to HxW: GlobalAveragePool to 1×1; AveragePool where the output size divides the
///   input's; else two MatMuls with the bins' averaging matrices (PyTorch's bins, exactly);
/// * pool max: MaxPool; pool avg: AveragePool with count_include_pad=1. Neither uses
///   ceil_mode: ceil rounding becomes explicit bottom/right padding that makes floor rounding
///   give dsl's (PyTorch's) output size, including its rule that the last window starts inside
///   the input or its left/top padding (onnx's shape inference of ceil_mode does not apply
///   that rule). An average pooling whose last window overhangs the padded input divides by
///   the window clipped to input + padding, so it becomes Pad (zeros) and AveragePool with
///   count_include_pad=0 over the overhang;
/// * gap: GlobalAveragePool; bn: BatchNormalization (as after a conv); scale: Mul by a
///   scalar constant (`NAME.factor`); standalone activations as above;
///   softmax: Softmax axis=1 (opset 13 semantics: over channels at every pixel); dropout:
///   nothing (identity at inference);
/// * fc: Flatten (NCHW order) and Gemm with transB=1; the weight is stored (OUT, C·H·W), its
///   columns permuted from dsl's (H·W·C, OUT) NHWC-flattened rows, as PyTorch's nn.Linear
///   after torch.flatten of an NCHW tensor would hold it;
/// * concat: Concat axis=1; add: Pad of the narrower inputs with zero channels (`add zeropad`),
///   then Add (two inputs) or Sum; mul: Mul, a (N, C, 1, 1) input broadcast; inception and
///   pyramid are their expanded nodes.
///
/// A 1×1 map may flow as (N, C) (after fc) and is unsqueezed to (N, C, 1, 1) only where an
/// operator needs four dimensions. The model computes the network on preprocessed inputs: the
/// preprocessing stored in a checkpoint (standardisation, GCN+ZCA) is not part of it.
public enum ONNXExport {
    /// The operator set version the model imports.
    public static let opsetVersion: Int64 = 17
    /// The IR version that goes with it (onnx/docs/Versioning.md: opset 17 ↔ IR 8).
    public static let irVersion: Int64 = 8
    /// Largest total weight size written: protocol buffers limit a message to 2 GiB and this
    /// writer does not use ONNX's external data files.
    public static let maxWeightBytes = (1 << 31) - (1 << 24)

    /// One tensor the network's weights must hold, in dsl's layout.
    public struct TensorSpec: Equatable {
        /// dsl's name: `conv3.weight`, `conv1.bn.running_var`, `fc1.bias`.
        public var name: String
        /// dsl's shape: conv weight (KH, KW, IC, OC), fc weight (IN, OUT) over the NHWC-flattened
        /// input, vectors (C).
        public var shape: [Int]
        /// A batch-norm running statistic (a buffer) rather than a trainable parameter.
        public var isBuffer: Bool
        /// Elements.
        public var count: Int { shape.reduce(1, *) }
        /// Creates a tensor description.
        public init(name: String, shape: [Int], isBuffer: Bool) { self.name = name; self.shape = shape; self.isBuffer = isBuffer }
    }

    /// The parameters and buffers a network has, in the engine's order (node order, weight
    /// before bias, running mean before running variance), named and shaped as
    /// `EngineGraph.parameters` / `.buffers` and dsl checkpoints hold them.
    public static func tensors(of graph: Graph) -> [TensorSpec] {
        var specs: [TensorSpec] = []
        func batchNorm(_ prefix: String, _ c: Int, scale: Bool = true) {
            if scale { specs.append(TensorSpec(name: prefix + ".weight", shape: [c], isBuffer: false)) }
            specs.append(TensorSpec(name: prefix + ".bias", shape: [c], isBuffer: false))
        }
        var buffers: [TensorSpec] = []
        func statistics(_ prefix: String, _ c: Int) {
            buffers.append(TensorSpec(name: prefix + ".running_mean", shape: [c], isBuffer: true))
            buffers.append(TensorSpec(name: prefix + ".running_var", shape: [c], isBuffer: true))
        }
        for n in graph.nodes {
            switch n.op {
            case .conv(let c):
                let ic = graph.nodes[n.inputs[0]].shape.channels
                specs.append(TensorSpec(name: n.name + ".weight", shape: [c.kernelHeight, c.kernelWidth, ic / c.groups, c.filters], isBuffer: false))
                if c.bias { specs.append(TensorSpec(name: n.name + ".bias", shape: [c.filters], isBuffer: false)) }
                if c.batchNorm { batchNorm(n.name + ".bn", c.filters, scale: c.norm.scale); statistics(n.name + ".bn", c.filters) }
            case .batchNorm(let b):
                batchNorm(n.name, n.shape.channels, scale: b.scale)
                statistics(n.name, n.shape.channels)
            case .linear(let l):
                let features = graph.nodes[n.inputs[0]].shape.elements
                specs.append(TensorSpec(name: n.name + ".weight", shape: [features, l.units], isBuffer: false))
                if l.bias { specs.append(TensorSpec(name: n.name + ".bias", shape: [l.units], isBuffer: false)) }
            default:
                break
            }
        }
        return specs + buffers
    }

    /// The parameters and buffers of a compiled engine (an engine compiled with a seed holds
    /// initialised weights), by name.
    public static func weights(of engine: EngineGraph) -> (parameters: [String: [Float]], buffers: [String: [Float]]) {
        var parameters: [String: [Float]] = [:], buffers: [String: [Float]] = [:]
        for p in engine.parameters { parameters[p.name] = Array(UnsafeBufferPointer(start: p.value, count: p.count)) }
        for b in engine.buffers { buffers[b.name] = Array(UnsafeBufferPointer(start: b.value, count: b.count)) }
        return (parameters, buffers)
    }

    /// The initialised weights of `graph` for `seed`: those of an engine lowered and compiled
    /// with that seed, the weights `dsl train --seed S` starts from (parameter initialisation
    /// depends only on the seed and the layers, not on the batch). Throws `ExportError` when
    /// the network cannot be lowered or its engine does not fit in memory.
    public static func initialWeights(of graph: Graph, seed: UInt64) throws -> (parameters: [String: [Float]], buffers: [String: [Float]]) {
        do {
            let engine = try lower(graph, maxBatch: 1, seed: seed).engine
            try engine.compile(training: false)
            return weights(of: engine)
        } catch let e as LoweringError {
            throw ExportError(e.message)
        } catch let e as ExportError {
            throw e
        } catch {
            throw ExportError("cannot initialise the weights of '\(graph.name)': \(error)")
        }
    }

    /// The parameters and buffers of a `dsl train` checkpoint of `graph`, by name: refuses a
    /// checkpoint of another network (its spec hash), a missing, extra or misshapen tensor,
    /// naming `file` and the tensor.
    public static func weights(of checkpoint: TrainingCheckpoint, for graph: Graph, file: String) throws
        -> (parameters: [String: [Float]], buffers: [String: [Float]]) {
        do {
            _ = try Trainer.checkCheckpoint(checkpoint, graph: graph, file: file, use: .evaluate)
        } catch let e as TrainingError {
            throw ExportError(e.description)
        }
        var parameters: [String: [Float]] = [:], buffers: [String: [Float]] = [:]
        let specs = tensors(of: graph)
        for spec in specs {
            guard let stored = checkpoint.parameters[spec.name] else {
                throw ExportError("\(file): no tensor '\(spec.name)'; the network needs it (shape \(spec.shape))")
            }
            guard let values = stored.floats else {
                throw ExportError("\(file): tensor '\(spec.name)' is \(stored.dtype.rawValue), expected F32")
            }
            guard stored.shape == spec.shape else {
                throw ExportError("\(file): tensor '\(spec.name)' has shape \(stored.shape), the network's is \(spec.shape)")
            }
            if spec.isBuffer { buffers[spec.name] = values } else { parameters[spec.name] = values }
        }
        let known = Set(specs.map(\.name))
        if let extra = checkpoint.parameters.keys.filter({ !known.contains($0) }).sorted().first {
            throw ExportError("\(file): tensor '\(extra)' is not a parameter or buffer of this network")
        }
        return (parameters, buffers)
    }

    /// The bytes of an ONNX model of `graph` with the given weights (dsl's names and layouts,
    /// see `tensors(of:)`); `networkName` names the ONNX graph (default: the network's name).
    /// Throws `ExportError` naming the tensor when one is missing, unknown, of the wrong size or
    /// not finite, and when the weights exceed 2 GiB.
    public static func model(_ graph: Graph, parameters: [String: [Float]], buffers: [String: [Float]],
                             networkName: String? = nil, producerVersion: String = "") throws -> [UInt8] {
        let specs = tensors(of: graph)
        var weights: [String: [Float]] = [:]
        var bytes = 0
        for spec in specs {
            let source = spec.isBuffer ? buffers : parameters
            guard let values = source[spec.name] else {
                throw ExportError("no \(spec.isBuffer ? "buffer" : "parameter") '\(spec.name)' in the weights; the network needs one of shape \(spec.shape)")
            }
            guard values.count == spec.count else {
                throw ExportError("\(spec.isBuffer ? "buffer" : "parameter") '\(spec.name)' has \(values.count) values, the network's (shape \(spec.shape)) has \(spec.count)")
            }
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                throw ExportError("\(spec.isBuffer ? "buffer" : "parameter") '\(spec.name)' holds \(values[bad]) at element \(bad); weights must be finite")
            }
            weights[spec.name] = values
            bytes += 4 * values.count
        }
        let known = Set(specs.map(\.name))
        if let extra = (parameters.keys.filter { !known.contains($0) } + buffers.keys.filter { !known.contains($0) }).sorted().first {
            throw ExportError("'\(extra)' is not a parameter or buffer of network '\(graph.name)'")
        }
        guard bytes <= maxWeightBytes else {
            throw ExportError("the weights take \(bytes) bytes; an ONNX file holds at most 2 GiB (this exporter does not write external data)")
        }
        var builder = ONNXGraphBuilder(graph: graph, weights: weights, name: networkName ?? graph.name)
        let onnxGraph = builder.build()
        let model = ONNXModel(irVersion: irVersion, opsetVersion: opsetVersion, producerName: "dsl", producerVersion: producerVersion,
                              docString: builder.modelDoc, graph: onnxGraph)
        return model.encoded()
    }

    /// `model` with the weights of a compiled engine of `graph`.
    public static func model(_ graph: Graph, engine: EngineGraph, networkName: String? = nil, producerVersion: String = "") throws -> [UInt8] {
        let w = weights(of: engine)
        return try model(graph, parameters: w.parameters, buffers: w.buffers, networkName: networkName, producerVersion: producerVersion)
    }
}

/// Translates an IR graph into an ONNX graph (see `ONNXExport`).
struct ONNXGraphBuilder {
    /// A tensor of the ONNX graph holding an IR node's output: (N, C, H, W), or (N, C) for a
    /// 1×1 map when `flat`.
    struct Value {
        var name: String
        var flat: Bool
    }

    let ir: Graph
    let weights: [String: [Float]]
    var graph: ONNXGraph
    /// Value, node and initializer names in use.
    var used: Set<String> = ["input", "output"]
    /// The (N, C, 1, 1) form of each flat value that was unsqueezed, by the flat value's name.
    var unsqueezed: [String: String] = [:]

    init(graph: Graph, weights: [String: [Float]], name: String) {
        ir = graph
        self.weights = weights
        self.graph = ONNXGraph(name: name)
        for name in weights.keys { used.insert(name) }
    }

    /// The model's documentation string.
    var modelDoc: String {
        let s = ir.inputShape, o = ir.nodes[ir.output].shape
        let output = o.height == 1 && o.width == 1 ? "(N, \(o.channels))" : "(N, \(o.channels), \(o.height), \(o.width))"
        return "dsl network '\(ir.name)'. Input 'input': float32 (N, \(s.channels), \(s.height), \(s.width)), NCHW, after the preprocessing the network was trained with (not part of this model). Output 'output': \(output)."
    }

    /// A name not yet used: `base`, else `base_2`, `base_3`, ...
    mutating func unique(_ base: String) -> String {
        var name = base, k = 2
        while used.contains(name) { name = "\(base)_\(k)"; k += 1 }
        used.insert(name)
        return name
    }

    /// Appends a node with one output named like the node; returns the output's name.
    @discardableResult
    mutating func node(_ op: String, _ name: String, _ inputs: [String], _ attributes: [ONNXAttribute] = []) -> String {
        let n = unique(name)
        graph.nodes.append(ONNXNode(op, name: n, inputs: inputs, outputs: [n], attributes: attributes))
        return n
    }

    /// Adds a float initializer holding `values` (already in ONNX layout) under dsl's `name`.
    mutating func initializer(_ name: String, dims: [Int], _ values: [Float]) -> String {
        graph.initializers.append(ONNXTensor(name: name, dims: dims, floats: values))
        return name
    }

    /// Adds an int64 constant initializer (Pad's pads, Unsqueeze's axes) named after a layer.
    mutating func constant(_ name: String, _ values: [Int64]) -> String {
        let n = unique(name)
        graph.initializers.append(ONNXTensor(name: n, dims: [values.count], int64s: values))
        return n
    }

    /// `v` as (N, C, H, W): a flat (N, C) value is unsqueezed to (N, C, 1, 1) (once).
    mutating func fourD(_ v: Value, for layer: String) -> Value {
        guard v.flat else { return v }
        if let done = unsqueezed[v.name] { return Value(name: done, flat: false) }
        let axes = constant(layer + ".unsqueeze.axes", [2, 3])
        let name = node("Unsqueeze", layer + ".unsqueeze", [v.name, axes])
        unsqueezed[v.name] = name
        return Value(name: name, flat: false)
    }

    /// The activation after a layer, named `layer.relu`, `layer.leaky`, `layer.gelu`, ... as the
    /// engine names it.
    mutating func activation(_ a: Activation, _ x: Value, _ name: String) -> Value {
        a == .none ? x : apply(a, x, name + "." + a.keyword)
    }

    /// An activation as ONNX operators of opset 17, the last node named `name`: Relu,
    /// LeakyRelu, Sigmoid, Tanh, HardSigmoid(alpha 1/6, beta 1/2), HardSwish (its definition:
    /// x·max(0, min(1, x/6 + 1/2))), Clip(0, 6) for ReLU6, x·Sigmoid(x) for SiLU, and the exact
    /// GELU as 0.5·x·(1 + Erf(x/√2)) (Gelu itself is opset 20).
    mutating func apply(_ a: Activation, _ x: Value, _ name: String) -> Value {
        let out: String
        switch a {
        case .none: return x
        case .relu: out = node("Relu", name, [x.name])
        case .leaky(let slope): out = node("LeakyRelu", name, [x.name], [ONNXAttribute("alpha", .float(Float(slope)))])
        case .sigmoid: out = node("Sigmoid", name, [x.name])
        case .tanh: out = node("Tanh", name, [x.name])
        case .hardsigmoid:
            out = node("HardSigmoid", name, [x.name], [ONNXAttribute("alpha", .float(1.0 / 6.0)), ONNXAttribute("beta", .float(0.5))])
        case .hardswish: out = node("HardSwish", name, [x.name])
        case .relu6:
            out = node("Clip", name, [x.name, scalar(name + ".min", 0), scalar(name + ".max", 6)])
        case .silu:
            let s = node("Sigmoid", name + ".sigmoid", [x.name])
            out = node("Mul", name, [x.name, s])
        case .gelu:
            let scaled = node("Mul", name + ".scale", [x.name, scalar(name + ".inv_sqrt2", Float(1.0 / 2.0.squareRoot()))])
            let erf = node("Erf", name + ".erf", [scaled])
            let onePlus = node("Add", name + ".one_plus", [erf, scalar(name + ".one", 1)])
            let half = node("Mul", name + ".half_x", [x.name, scalar(name + ".half", 0.5)])
            out = node("Mul", name, [half, onePlus])
        }
        return Value(name: out, flat: x.flat)
    }

    /// A float scalar (a tensor of no dimensions) initializer named after a layer.
    mutating func scalar(_ name: String, _ value: Float) -> String {
        let n = unique(name)
        graph.initializers.append(ONNXTensor(name: n, dims: [], floats: [value]))
        return n
    }

    /// Batch normalisation with the running statistics under `prefix`.
    /// Without a learned scale (`scale=off`) the scale input is a constant of ones named
    /// `PREFIX.weight` (the engine's γ ≡ 1).
    mutating func batchNorm(_ x: Value, _ prefix: String, _ b: BatchNormAttributes) -> Value {
        let c = weights[prefix + ".bias"]!.count
        let inputs = [x.name] + ["weight", "bias", "running_mean", "running_var"].map { suffix in
            initializer(prefix + "." + suffix, dims: [c], weights[prefix + "." + suffix] ?? [Float](repeating: 1, count: c))
        }
        return Value(name: node("BatchNormalization", prefix, inputs, [ONNXAttribute("epsilon", .float(Float(b.epsilon)))]), flat: x.flat)
    }

    /// The ONNX graph.
    mutating func build() -> ONNXGraph {
        let s = ir.inputShape
        graph.inputs = [ONNXValueInfo(name: "input", shape: [.parameter("N"), .value(s.channels), .value(s.height), .value(s.width)],
                                      docString: "float32 images, NCHW, preprocessed as in training")]
        var values = [Value](repeating: Value(name: "input", flat: false), count: ir.nodes.count)
        for n in ir.nodes where n.id > 0 {
            let ins = n.inputs.map { values[$0] }
            switch n.op {
            case .input:
                values[n.id] = ins.first ?? values[0]
            case .conv(let c):
                values[n.id] = conv(n, c, fourD(ins[0], for: n.name))
            case .pool(let p):
                values[n.id] = pool(n, p, fourD(ins[0], for: n.name))
            case .globalAvgPool:
                values[n.id] = Value(name: node("GlobalAveragePool", n.name, [fourD(ins[0], for: n.name).name]), flat: false)
            case .adaptiveAvgPool:
                values[n.id] = adaptivePool(n, fourD(ins[0], for: n.name))
            case .batchNorm(let b):
                values[n.id] = batchNorm(ins[0], n.name, b)
            case .scale(let a):
                values[n.id] = Value(name: node("Mul", n.name, [ins[0].name, scalar(n.name + ".factor", Float(a))]), flat: ins[0].flat)
            case .activation(let a):
                switch a {
                case .none: values[n.id] = ins[0]
                case .relu: values[n.id] = Value(name: node("Relu", n.name, [ins[0].name]), flat: ins[0].flat)
                default:
                    values[n.id] = apply(a, ins[0], n.name)
                }
            case .dropout:
                values[n.id] = ins[0]
            case .linear(let l):
                values[n.id] = linear(n, l, ins[0])
            case .softmax:
                values[n.id] = Value(name: node("Softmax", n.name, [ins[0].name], [ONNXAttribute("axis", .int(1))]), flat: ins[0].flat)
            case .concat:
                if ins.count == 1 { values[n.id] = ins[0]; break }
                let flat = ins.allSatisfy(\.flat)
                let parts = flat ? ins.map(\.name) : ins.map { fourD($0, for: n.name).name }
                values[n.id] = Value(name: node("Concat", n.name, parts, [ONNXAttribute("axis", .int(1))]), flat: flat)
            case .add:
                values[n.id] = add(n, ins)
            case .mul:
                values[n.id] = mul(n, ins)
            }
        }
        finish(values[ir.output])
        return graph
    }

    /// Conv (+ BatchNormalization) (+ activation).
    mutating func conv(_ n: Node, _ c: ConvAttributes, _ x: Value) -> Value {
        let w = weights[n.name + ".weight"]!
        let (kh, kw) = (c.kernelHeight, c.kernelWidth)
        let oc = c.filters, icg = w.count / (kh * kw * oc)   // input channels per group
        // (KH, KW, IC/G, OC) -> (OC, IC/G, KH, KW).
        var t = [Float](repeating: 0, count: w.count)
        for y in 0..<kh {
            for x in 0..<kw {
                for i in 0..<icg {
                    let src = ((y * kw + x) * icg + i) * oc
                    for o in 0..<oc { t[((o * icg + i) * kh + y) * kw + x] = w[src + o] }
                }
            }
        }
        var inputs = [x.name, initializer(n.name + ".weight", dims: [oc, icg, kh, kw], t)]
        if c.bias { inputs.append(initializer(n.name + ".bias", dims: [oc], weights[n.name + ".bias"]!)) }
        var y = Value(name: node("Conv", n.name, inputs, [
            ONNXAttribute("kernel_shape", .ints([Int64(kh), Int64(kw)])),
            ONNXAttribute("strides", .ints([Int64(c.strideHeight), Int64(c.strideWidth)])),
            // ONNX orders pads as (top, left, bottom, right): begins of each axis, then ends.
            ONNXAttribute("pads", .ints([c.padTop, c.padLeft, c.padBottom, c.padRight].map(Int64.init))),
            ONNXAttribute("dilations", .ints([Int64(c.dilationHeight), Int64(c.dilationWidth)])),
            ONNXAttribute("group", .int(Int64(c.groups))),
        ]), flat: false)
        if c.batchNorm { y = batchNorm(y, n.name + ".bn", c.norm) }
        return activation(c.activation, y, n.name)
    }

    /// MaxPool or AveragePool with dsl's (PyTorch's) output size and divisor, without ceil_mode.
    mutating func pool(_ n: Node, _ p: PoolAttributes, _ x: Value) -> Value {
        let input = ir.nodes[n.inputs[0]].shape
        let (k, s, pad) = (p.kernel, p.stride, p.pad)
        // Per axis: the padded extent the output's windows span, (o − 1)·s + k; with floor
        // rounding it fits in size + 2·pad, with ceil rounding it may reach past it.
        let spanH = (n.shape.height - 1) * s + k, spanW = (n.shape.width - 1) * s + k
        let window: [ONNXAttribute] = [
            ONNXAttribute("kernel_shape", .ints([Int64(k), Int64(k)])),
            ONNXAttribute("strides", .ints([Int64(s), Int64(s)])),
        ]
        if p.kind == .max {
            // Padding never wins a maximum: pad the bottom/right to exactly the span (or the
            // symmetric padding, whichever is more) and round down.
            let bottom = max(pad, spanH - input.height - pad), right = max(pad, spanW - input.width - pad)
            return Value(name: node("MaxPool", n.name, [x.name], window + [
                ONNXAttribute("pads", .ints([pad, pad, bottom, right].map(Int64.init))),
                ONNXAttribute("ceil_mode", .int(0)),
            ]), flat: false)
        }
        let overhangH = max(0, spanH - input.height - 2 * pad), overhangW = max(0, spanW - input.width - 2 * pad)
        if overhangH == 0 && overhangW == 0 {
            // Every window lies inside input + padding: the divisor is k·k, zeros counted.
            return Value(name: node("AveragePool", n.name, [x.name], window + [
                ONNXAttribute("pads", .ints(Array(repeating: Int64(pad), count: 4))),
                ONNXAttribute("count_include_pad", .int(1)),
                ONNXAttribute("ceil_mode", .int(0)),
            ]), flat: false)
        }
        // The last windows overhang input + padding, and the divisor counts only what lies
        // inside it: the padding becomes real zeros (Pad), the overhang padding that is not counted.
        var padded = x.name
        if pad > 0 {
            let pads = constant(n.name + ".pad.pads", [0, 0, pad, pad, 0, 0, pad, pad].map(Int64.init))
            padded = node("Pad", n.name + ".pad", [x.name, pads], [ONNXAttribute("mode", .string("constant"))])
        }
        return Value(name: node("AveragePool", n.name, [padded], window + [
            ONNXAttribute("pads", .ints([0, 0, overhangH, overhangW].map(Int64.init))),
            ONNXAttribute("count_include_pad", .int(0)),
            ONNXAttribute("ceil_mode", .int(0)),
        ]), flat: false)
    }

    /// Flatten + Gemm (+ activation): the weight is permuted from NHWC-flattened rows to
    /// NCHW-flattened columns, stored (OUT, IN) for transB=1.
    mutating func linear(_ n: Node, _ l: LinearAttributes, _ x: Value) -> Value {
        let input = ir.nodes[n.inputs[0]].shape
        let (h, w, c, out) = (input.height, input.width, input.channels, l.units)
        let weight = weights[n.name + ".weight"]!
        var t = [Float](repeating: 0, count: weight.count)
        for y in 0..<h {
            for xx in 0..<w {
                for ch in 0..<c {
                    let row = (y * w + xx) * c + ch          // dsl's feature index (NHWC)
                    let column = (ch * h + y) * w + xx       // ONNX's feature index (NCHW)
                    for o in 0..<out { t[o * (h * w * c) + column] = weight[row * out + o] }
                }
            }
        }
        let flat = x.flat ? x.name : node("Flatten", n.name + ".flatten", [x.name], [ONNXAttribute("axis", .int(1))])
        var inputs = [flat, initializer(n.name + ".weight", dims: [out, h * w * c], t)]
        if l.bias { inputs.append(initializer(n.name + ".bias", dims: [out], weights[n.name + ".bias"]!)) }
        let y = Value(name: node("Gemm", n.name, inputs, [ONNXAttribute("transB", .int(1))]), flat: true)
        return activation(l.activation, y, n.name)
    }

    /// Mul of the inputs in order (ONNX's Mul broadcasts a (N, C, 1, 1) input over (N, C, H, W));
    /// a flat (N, C) input is unsqueezed first where any input is a map.
    mutating func mul(_ n: Node, _ ins: [Value]) -> Value {
        if ins.count == 1 { return ins[0] }
        let flat = ins.allSatisfy(\.flat)
        let parts = flat ? ins.map(\.name) : ins.map { fourD($0, for: n.name).name }
        var product = parts[0]
        for i in 1..<parts.count {
            product = node("Mul", i == parts.count - 1 ? n.name : "\(n.name).mul\(i)", [product, parts[i]])
        }
        return Value(name: product, flat: flat)
    }

    /// Adaptive average pooling with PyTorch's bins: GlobalAveragePool to 1x1; AveragePool
    /// where the output size divides the input's (equal bins, no overlap); else exactly as two
    /// MatMuls with the averaging matrices of the bins, Ph (OH, H) · x · Pw^T (W, OW).
    mutating func adaptivePool(_ n: Node, _ x: Value) -> Value {
        let input = ir.nodes[n.inputs[0]].shape
        let (oh, ow) = (n.shape.height, n.shape.width)
        if oh == 1 && ow == 1 { return Value(name: node("GlobalAveragePool", n.name, [x.name]), flat: false) }
        if input.height % oh == 0 && input.width % ow == 0 {
            let (kh, kw) = (input.height / oh, input.width / ow)
            return Value(name: node("AveragePool", n.name, [x.name], [
                ONNXAttribute("kernel_shape", .ints([Int64(kh), Int64(kw)])),
                ONNXAttribute("strides", .ints([Int64(kh), Int64(kw)])),
            ]), flat: false)
        }
        /// Row o averages input cells floor(o·size/out) ..< ceil((o+1)·size/out): (out, size).
        func bins(_ size: Int, _ out: Int) -> [Float] {
            var m = [Float](repeating: 0, count: out * size)
            for o in 0..<out {
                let lo = o * size / out, hi = ((o + 1) * size + out - 1) / out
                for i in lo..<hi { m[o * size + i] = 1 / Float(hi - lo) }
            }
            return m
        }
        // Pw^T: (W, OW).
        let pw = bins(input.width, ow)
        var pwT = [Float](repeating: 0, count: pw.count)
        for o in 0..<ow { for i in 0..<input.width { pwT[i * ow + o] = pw[o * input.width + i] } }
        let columns = node("MatMul", n.name + ".columns", [x.name, initializer(unique(n.name + ".columns.weight"), dims: [input.width, ow], pwT)])
        let rows = initializer(unique(n.name + ".rows.weight"), dims: [oh, input.height], bins(input.height, oh))
        return Value(name: node("MatMul", n.name, [rows, columns]), flat: false)
    }

    /// Zero-pads narrower inputs on channels, then Add or Sum.
    mutating func add(_ n: Node, _ ins: [Value]) -> Value {
        let flat = ins.allSatisfy(\.flat)
        let widest = n.shape.channels
        var parts: [String] = []
        for (i, v) in ins.enumerated() {
            let x = flat ? v : fourD(v, for: n.name)
            let c = ir.nodes[n.inputs[i]].shape.channels
            if c == widest { parts.append(x.name); continue }
            let extra = Int64(widest - c)
            let pads = constant("\(n.name).pad\(i + 1).pads", flat ? [0, 0, 0, extra] : [0, 0, 0, 0, 0, extra, 0, 0])
            parts.append(node("Pad", "\(n.name).pad\(i + 1)", [x.name, pads], [ONNXAttribute("mode", .string("constant"))]))
        }
        return Value(name: node(parts.count == 2 ? "Add" : "Sum", n.name, parts), flat: flat)
    }

    /// Names the network's output `output`: (N, C) for a 1×1 map, else (N, C, H, W).
    mutating func finish(_ last: Value) {
        let o = ir.nodes[ir.output].shape
        var v = last
        if !v.flat && o.height == 1 && o.width == 1 {
            v = Value(name: node("Flatten", ir.nodes[ir.output].name + ".flatten", [v.name], [ONNXAttribute("axis", .int(1))]), flat: true)
        }
        if v.name == "input" {
            graph.nodes.append(ONNXNode("Identity", name: "output", inputs: ["input"], outputs: ["output"]))
        } else {
            for i in graph.nodes.indices {
                graph.nodes[i].inputs = graph.nodes[i].inputs.map { $0 == v.name ? "output" : $0 }
                graph.nodes[i].outputs = graph.nodes[i].outputs.map { $0 == v.name ? "output" : $0 }
            }
        }
        graph.outputs = [ONNXValueInfo(name: "output", shape: v.flat ? [.parameter("N"), .value(o.channels)]
                                                                     : [.parameter("N"), .value(o.channels), .value(o.height), .value(o.width)])]
    }
}
