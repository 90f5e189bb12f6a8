import Dispatch
// EngineGraph: a DAG of `EngineOp` nodes over NHWC fp32 tensors (see Layout.swift), compiled
// once into kernels bound to preplanned storage, then run forward and backward with no
// allocation per batch.
//
// Threading and determinism: every kernel splits work either over samples/rows whose outputs
// are disjoint, or over a number of partial sums fixed by the problem size (Reductions.swift),
// and sgemm computes each output element in a fixed order. Forward and backward results are
// therefore bit-identical for any `engineThreadCount`.

/// A trainable parameter: its name ("conv3.weight"), shape, and value and gradient storage
/// inside `EngineGraph.parameterValues` / `parameterGrads`.
public struct EngineParameter {
    /// "<node name>.weight" or "<node name>.bias".
    public let name: String
    /// Conv weight (K,K,IC,OC); linear weight (IN,OUT); biases and BN parameters (C).
    public let shape: [Int]
    /// Number of elements.
    public let count: Int
    /// Offset of the first element in the contiguous parameter block.
    public let offset: Int
    /// The values.
    public let value: UnsafeMutablePointer<Float>
    /// The gradient (accumulated by `backward`).
    public let grad: UnsafeMutablePointer<Float>
    /// When the optimiser updates it (always unless the spec freezes it).
    public var training: ParameterTraining = .always
    /// An initialisation from the training data that the trainer applies before the first step
    /// (nil: the engine's own initialisation stands).
    public var dataInitialization: DataInitialization? = nil
}

/// When a parameter is trained.
public enum ParameterTraining: Equatable, Sendable {
    /// In every epoch.
    case always
    /// Never: the value stays as initialised (no update, no weight decay).
    case never
    /// In epochs 0..<N only (counting from 0), then frozen.
    case firstEpochs(Int)

    /// Whether the optimiser updates the parameter in epoch `epoch` (0-based).
    public func isTrained(inEpoch epoch: Int) -> Bool {
        switch self {
        case .always: return true
        case .never: return false
        case let .firstEpochs(n): return epoch < n
        }
    }
}

/// How a node's weight (a convolution's kernel, a linear matrix, a batch norm's scale) and bias
/// (a batch norm's shift) start and when they train (`EngineGraph.parameterSettings`).
public struct ParameterSettings: Equatable, Sendable {
    /// How the weight and bias start.
    public var initialization: WeightInitialization
    /// When the weight trains.
    public var weightTraining: ParameterTraining
    /// When the bias trains.
    public var biasTraining: ParameterTraining
    /// A data initialisation of the weight, applied by the trainer.
    public var weightDataInitialization: DataInitialization?
    /// Creates settings (the defaults change nothing).
    public init(initialization: WeightInitialization = .standard, weightTraining: ParameterTraining = .always,
                biasTraining: ParameterTraining = .always, weightDataInitialization: DataInitialization? = nil) {
        self.initialization = initialization; self.weightTraining = weightTraining
        self.biasTraining = biasTraining; self.weightDataInitialization = weightDataInitialization
    }

    /// Applies the settings to one of the node's parameter specs. Fans are PyTorch's:
    /// KH·KW·IC/G for a (KH,KW,IC/G,OC) kernel and its bias, IN for an (IN,OUT) matrix and its bias.
    func apply(to spec: inout ParameterSpec) {
        let isWeight = spec.suffix == "weight"
        spec.training = isWeight ? weightTraining : biasTraining
        if isWeight { spec.dataInitialization = weightDataInitialization }
        // Only convolution and linear weights (rank 4 and 2) have a fan; a batch norm's
        // parameters keep their constants.
        guard spec.shape.count == 4 || spec.shape.count == 2 || !isWeight else { return }
        switch initialization {
        case .standard:
            break
        case let .torch(fanIn):
            spec.initializer = .uniform(bound: 1 / Double(max(fanIn, 1)).squareRoot())
        case let .dirac(fanIn):
            spec.initializer = isWeight && spec.shape.count == 4 ? .dirac(bound: 1 / Double(max(fanIn, 1)).squareRoot()) : .constant(0)
        case .zeroBias:
            if !isWeight { spec.initializer = .constant(0) }
        }
    }
}

/// How a node's weight and bias start (`ParameterSettings.initialization`).
public enum WeightInitialization: Equatable, Sendable {
    /// The operator's own initialisation (`EngineOp` parameter specs).
    case standard
    /// PyTorch's default: weight and bias U(±1/√fanIn).
    case torch(fanIn: Int)
    /// Dirac on the first min(IC, OC) filters, U(±1/√fanIn) for the rest; bias 0.
    case dirac(fanIn: Int)
    /// The operator's weight initialisation, bias 0 (a weight the trainer computes from data).
    case zeroBias
}

/// An initialisation computed from the training data.
public enum DataInitialization: Equatable, Sendable {
    /// The first convolution as a patch-whitening filter bank (airbench): the eigenvectors of
    /// the covariance of the training images' KH×KW patches, each scaled by 1/√(λ + epsilon),
    /// and their negatives (OC = 2 · KH·KW·IC).
    case patchWhitening(epsilon: Double)
}

/// Non-trainable state such as "bn2.running_mean" and "bn2.running_var".
public struct EngineBuffer {
    /// "<node name>.running_mean" or "<node name>.running_var".
    public let name: String
    /// The shape, (C) for BN statistics.
    public let shape: [Int]
    /// Number of elements.
    public let count: Int
    /// The values.
    public let value: UnsafeMutablePointer<Float>
}

/// What the compiled graph allocated, in bytes.
public struct EngineMemoryPlan: Equatable {
    /// Activations, activation gradients and saved tensors, packed by the planner.
    public var activationBytes: Int
    /// im2col scratch and per-kernel partial sums.
    public var scratchBytes: Int
    /// Parameter values.
    public var parameterBytes: Int
    /// Parameter gradients.
    public var gradientBytes: Int
    /// Buffers (BN running statistics).
    public var bufferBytes: Int
    /// Activation bytes if no tensor shared storage (for comparison).
    public var unplannedActivationBytes: Int
    /// Everything the graph holds.
    public var totalBytes: Int { activationBytes + scratchBytes + parameterBytes + gradientBytes + bufferBytes }
}

/// A compiled network on the CPU: add nodes, `compile()`, then `forward` / `backward` per batch.
public final class EngineGraph {
    private struct Node {
        var op: EngineOp?  // nil for the input node
        var inputs: [Int]
        var name: String
        var shape: EngineShape
    }

    /// Per-sample shape of node 0, the input.
    public let inputShape: EngineShape
    /// Largest batch `forward` accepts; all storage is sized for it.
    public let maxBatch: Int
    /// Seed of parameter initialisation and of dropout masks.
    public let seed: UInt64
    /// Whether `backward` also computes the gradient of the input (set before `compile`; for tests).
    public var computesInputGradient = false
    /// Starting values of biases other than 0, by engine node (set before `compile`): the
    /// lowering gives the ReLU classifier of a softmax network bias 1 (`classifierReLUBias`).
    public var initialBias: [Int: Float] = [:]
    /// How a node's parameters start and when they train, by engine node (set before
    /// `compile`; the lowering sets them from the spec's `init=`, `freeze` and `train-epochs=`).
    public var parameterSettings: [Int: ParameterSettings] = [:]

    private var nodes: [Node]
    /// Names in use (node names are unique).
    private var names: Set<String> = ["input"]
    /// Set when `compile` starts (it runs once, even if it fails).
    private var compileStarted = false
    /// Whether `compile` has run.
    public private(set) var isCompiled = false
    /// Whether the graph was compiled with training storage (saved tensors, gradients).
    public private(set) var isCompiledForTraining = false
    /// The batch norms a graph compiled for inference only folded into the convolution before
    /// them (their own forward passes do nothing, or apply only a fused activation).
    public private(set) var foldedBatchNorms: [Int] = []
    /// The groups of 1×1 convolutions of one input that a graph compiled for inference only runs
    /// as one GEMM each (node indices, the leader first; PointwiseSiblings.swift).
    public private(set) var pointwiseSiblingGroups: [[Int]] = []
    /// The adds a graph compiled for inference only fused into the convolution before them
    /// (ResidualAdd.swift).
    public private(set) var fusedResidualAdds: [Int] = []
    /// The activations of a graph compiled for training whose backward the batch norm before
    /// them does (`BatchNormKernel.fusedActivationGradient`), each with that batch norm; their
    /// own backward does nothing, and the batch norm's output gradient is never materialised
    /// (`gradient(of:)` is nil for it).
    public private(set) var activationBackwardsInNorm: [(activation: Int, norm: Int)] = []
    /// (relu, convolution) pairs whose ReLU's backward the convolution's backward-data does
    /// (training; `ConvKernel.masksInputGradient`).
    public private(set) var reluBackwardsInConvolution: [(relu: Int, convolution: Int)] = []
    private var reluKernelsInConvolution: [(ReLUKernel, ConvKernel)] = []
    /// Those activations' kernels.
    private var activationKernelsInNorm: [ActivationBackwardInNorm] = []

    private(set) var kernels: [EngineKernel?] = []
    private var softmaxKernel: SoftmaxKernel?
    private var values: [UnsafeMutablePointer<Float>] = []
    private var grads: [UnsafeMutablePointer<Float>?] = []
    private var needsGrad: [Bool] = []
    /// The nodes whose backward runs given which parameters are trained
    /// (`setTrainedParameters`; `needsGrad` until it is called).
    private var runsBackward: [Bool] = []
    /// Each node's parameters, in node order.
    private var nodeParameters: [[EngineParameter]] = []
    /// zeroGradsBefore[k]: nodes whose output gradient is zeroed right before node k's backward.
    private var zeroGradsBefore: [[Int]] = []
    /// storedGradsBy[k]: nodes whose output gradient node k's backward stores rather than adds
    /// to (k is its first writer; `EngineKernel.storeInputGradient`), so nothing zeroes it.
    private var storedGradsBy: [[Int]] = []
    private var arena: UnsafeMutablePointer<Float>?
    private var columnScratch: UnsafeMutablePointer<Float>?
    private var convWorkspace: UnsafeMutableRawPointer?
    private var parameterStorage: UnsafeMutablePointer<Float>?
    private var bufferStorage: UnsafeMutablePointer<Float>?
    /// [dropout seed, training-pass counter], read by dropout kernels.
    private let randomState: UnsafeMutablePointer<UInt64>
    private var lastForward: (batch: Int, training: Bool)?

    /// Trainable parameters in node order (weight before bias); valid after `compile`.
    /// Reading this property tells a graph compiled for inference only that its parameters may
    /// be written from now on (`WeightGeneration`): write them through pointers read after the
    /// graph's last `forward`, not through ones kept from before it.
    public var parameters: [EngineParameter] {
        weightGeneration.advance()
        return storedParameters
    }
    private var storedParameters: [EngineParameter] = []
    /// Buffers (BN running statistics) in node order; valid after `compile`. Reading it tells
    /// the graph that they may be written, as for `parameters`.
    public var buffers: [EngineBuffer] {
        weightGeneration.advance()
        return storedBuffers
    }
    private var storedBuffers: [EngineBuffer] = []
    /// Advanced whenever the caller is handed pointers to the parameters or buffers: a graph
    /// compiled for inference only keeps packed and folded weights while it stays unchanged.
    let weightGeneration = WeightGeneration()
    /// Total number of parameter floats.
    public private(set) var parameterCount = 0
    private var bufferCount = 0
    /// Storage of the plan; valid after `compile`.
    public private(set) var memoryPlan = EngineMemoryPlan(activationBytes: 0, scratchBytes: 0, parameterBytes: 0,
                                                          gradientBytes: 0, bufferBytes: 0, unplannedActivationBytes: 0)

    /// Creates a graph whose node 0 is an input of per-sample shape h×w×c.
    public init(inputShape: (h: Int, w: Int, c: Int), maxBatch: Int, seed: UInt64) {
        require(inputShape.h >= 1 && inputShape.w >= 1 && inputShape.c >= 1 && maxBatch >= 1)
        self.inputShape = EngineShape(height: inputShape.h, width: inputShape.w, channels: inputShape.c)
        self.maxBatch = maxBatch
        self.seed = seed
        nodes = [Node(op: nil, inputs: [], name: "input", shape: self.inputShape)]
        randomState = .allocate(capacity: 2)
        randomState.initialize(repeating: 0, count: 2)
        reseedDropout(EngineRandom.mix(seed ^ 0xD0_0D_5EED))
    }

    deinit {
        kernels = []
        releaseMemory(arena)
        releaseMemory(columnScratch)
        releaseMemory(convWorkspace)
        releaseMemory(parameterStorage)
        releaseMemory(bufferStorage)
        randomState.deallocate()
    }

    /// Number of nodes, including the input node 0.
    public var nodeCount: Int { nodes.count }
    /// How a compiled node's kernel computes (for convolutions: "winograd", "direct", "gemm",
    /// "im2col+gemm"), or nil.
    public func algorithm(of node: Int) -> String? { node < kernels.count ? kernels[node]?.algorithm : nil }
    /// Whether the compiled backward pass computes a gradient for one of the node's inputs.
    public func computesInputGradient(of node: Int) -> Bool {
        node > 0 && node < grads.count && nodes[node].inputs.contains { grads[$0] != nil }
    }
    /// Bytes a memory-bound node's passes must move at least for `batch` samples, or nil for a
    /// node whose time goes to arithmetic (convolutions other than depthwise, linear layers).
    /// Forward reads each input and writes the output; backward reads the output gradient and
    /// one tensor of each input's size (the saved input, or the output read back) and reads and
    /// writes each input gradient (gradients accumulate), or only writes one it stores
    /// (`EngineKernel.storeInputGradient`). Parameters are negligible. None for a batch norm
    /// folded into its convolution (its pass does not exist).
    public func compulsoryBytes(of node: Int, batch: Int) -> (forward: Double, backward: Double)? {
        guard node > 0, let op = nodes[node].op, !foldedBatchNorms.contains(node) else { return nil }
        switch op {
        case .conv, .linear: return nil
        case let .convolution(g) where !g.isDepthwise(inChannels: nodes[nodes[node].inputs[0]].shape.channels): return nil
        default: break
        }
        let inputs = Double(nodes[node].inputs.reduce(0) { $0 + nodes[$1].shape.count })
        let stored = Double((node < storedGradsBy.count ? storedGradsBy[node] : []).reduce(0) { $0 + nodes[$1].shape.count })
        let output = Double(nodes[node].shape.count)
        let scale = 4 * Double(batch)
        return (scale * (inputs + output), scale * (output + 3 * inputs - stored))
    }
    /// Per-sample output shape of a node.
    public func shape(of node: Int) -> EngineShape { nodes[node].shape }
    /// Operator of a node (nil for the input node 0).
    public func op(of node: Int) -> EngineOp? { nodes[node].op }
    /// Name of a node ("input" for node 0).
    public func name(of node: Int) -> String { nodes[node].name }
    /// Per-sample shape of the last node's output.
    public var outputShape: EngineShape { nodes[nodes.count - 1].shape }

    /// Appends a node computing `op` of the given earlier nodes; returns its index. Throws when
    /// the inputs do not fit the operator, an index is unknown or the name is taken. (Constant
    /// time: a 40,000-layer network used to take seconds to build, each node scanning all others.)
    @discardableResult
    public func add(_ op: EngineOp, inputs: [Int], name: String) throws -> Int {
        require(!compileStarted, "cannot add nodes to a compiled graph")
        guard !names.contains(name) else {
            throw EngineGraphError("node '\(name)': the name is already used")
        }
        for i in inputs where i < 0 || i >= nodes.count {
            throw EngineGraphError("node '\(name)' (\(op)): input \(i) does not exist (graph has \(nodes.count) nodes)")
        }
        let shape = try op.outputShape(inputs: inputs.map { nodes[$0].shape }, node: name)
        nodes.append(Node(op: op, inputs: inputs, name: name, shape: shape))
        names.insert(name)
        return nodes.count - 1
    }

    /// Re-seeds dropout masks: the next training passes draw the same masks as after any other
    /// call with the same seed.
    public func reseedDropout(_ seed: UInt64) {
        randomState[0] = seed
        randomState[1] = 0
    }

    // MARK: Compilation

    /// Everything `compile` decides before it allocates: which gradients exist, tensor
    /// lifetimes and arena offsets, scratch, parameter and buffer counts, each convolution's
    /// algorithms, and so the bytes of every allocation (`memory`).
    private struct CompilePlan {
        var needsGrad: [Bool]
        var valueRoot: [Int]
        /// Per node: the convolution a batch norm is folded into (inference only), else -1.
        var foldedInto: [Int]
        /// Per activation node: the batch norm whose backward does its backward (training
        /// only; `BatchNormKernel.fusedActivationGradient`), else -1.
        var backwardInNorm: [Int]
        /// Per ReLU node: the convolution whose backward-data does its backward (training only;
        /// `ConvKernel.masksInputGradient`), else -1.
        var backwardInConvolution: [Int]
        /// Per node: the first of the 1×1 convolutions of its input that run as one GEMM
        /// (inference only; PointwiseSiblings.swift), else -1.
        var siblingLeader: [Int]
        /// Those groups, each in node order (its leader first).
        var siblingGroups: [[Int]]
        /// Per add node: the convolution that adds its other input as it stores (inference only;
        /// ResidualAdd.swift) and that input's position, else -1.
        var residualConv: [Int]
        var residualInput: [Int]
        var valueTensor: [Int]
        var gradTensor: [Int]
        var savedTensor: [Int]
        var zeroGradsBefore: [[Int]]
        var offsets: [Int]
        var arenaFloats: Int
        var columnFloats: Int
        var parameterSpecs: [[ParameterSpec]]
        var bufferSpecs: [[ParameterSpec]]
        var parameterCount: Int
        var bufferCount: Int
        /// Bytes of the per-call buffers the convolutions share (the largest `ConvPlan.workspace`).
        var workspaceBytes: Int
        var memory: EngineMemoryPlan
    }

    /// Plans a compilation for batches of up to `maxBatch` (no allocation).
    private func makePlan(training: Bool, reuseBuffers: Bool, maxBatch: Int) -> CompilePlan {
        let count = nodes.count, last = count - 1
        let backwardTime = { (k: Int) in 2 * count - 1 - k }
        var consumers = [[Int]](repeating: [], count: count)
        for (j, node) in nodes.enumerated() {
            for i in Set(node.inputs) { consumers[i].append(j) }
        }
        let parameterSpecs = nodes.enumerated().map { j, node in
            (node.op?.parameterSpecs(inputs: node.inputs.map { nodes[$0].shape }, output: node.shape) ?? []).map { spec in
                var spec = spec
                if let settings = parameterSettings[j] { settings.apply(to: &spec) }
                if spec.suffix == "bias", let b = initialBias[j] { spec.initializer = .constant(b) }
                return spec
            }
        }
        let bufferSpecs = nodes.map { node in node.op?.bufferSpecs(inputs: node.inputs.map { nodes[$0].shape }) ?? [] }
        let endsWithSoftmax = nodes[last].op == .softmax
        var lastInputs = Set(nodes[last].inputs)
        lastInputs.insert(last)

        // Which outputs need a gradient: nodes with parameters and everything downstream of them
        // (only with a loss node to start backward from).
        var needsGrad = [Bool](repeating: false, count: count)
        if training && endsWithSoftmax {
            needsGrad[0] = computesInputGradient
            for j in 1..<count {
                needsGrad[j] = !parameterSpecs[j].isEmpty || nodes[j].inputs.contains { needsGrad[$0] }
            }
        }

        // In-place ReLU: share the input's storage when nothing else reads the input afterwards.
        // Inference only: a batch norm that alone reads a convolution's output is folded into
        // it (ConvKernel.foldedNorm) and shares its storage.
        var valueRoot = Array(0..<count)
        var foldedInto = [Int](repeating: -1, count: count)
        if reuseBuffers {
            for j in 1..<count where !training && EngineGraph.foldsBatchNorm {
                let i = nodes[j].inputs[0]
                guard case .batchNorm? = nodes[j].op, case .conv? = nodes[i].op else { continue }
                if consumers[i] == [j] {
                    valueRoot[j] = valueRoot[i]
                    foldedInto[j] = i
                }
            }
            for j in 1..<count where nodes[j].op!.mayRunInPlace || (!training && nodes[j].op!.isDropout) {
                // (Inference only: a dropout is the identity, in place it does nothing.)
                let i = nodes[j].inputs[0]
                let producerNeedsOutput = training && needsGrad[i] && nodes[i].op!.backwardReadsOutput
                if i != 0 && consumers[i].count == 1 && !producerNeedsOutput {
                    valueRoot[j] = valueRoot[i]
                }
            }
        }

        // Inference only: the 1×1 convolutions reading one tensor run as one GEMM, by the first
        // of them, which writes every one's output (so each lives from that step on).
        var siblingLeader = [Int](repeating: -1, count: count)
        var siblingGroups: [[Int]] = []
        if !training && EngineGraph.fusesPointwiseSiblings {
            for i in 0..<count {
                let group = consumers[i].filter { j in
                    guard case let .conv(k, s, p, _, _)? = nodes[j].op else { return false }
                    return k == 1 && s == 1 && p == 0 && nodes[j].inputs == [i]
                }.sorted()
                if group.count >= 2 {
                    for j in group { siblingLeader[j] = group[0] }
                    siblingGroups.append(group)
                }
            }
            siblingGroups.sort { $0[0] < $1[0] }
        }
        // Inference only: an add of two inputs, one of them a convolution's output (through a
        // batch norm folded into it) with the add's channels and no other reader, the other
        // computed before the convolution runs: the convolution adds the other input as it
        // stores (Winograd and 1×1 GEMM paths, not in a sibling group), and the add runs in
        // place on its output.
        var residualConv = [Int](repeating: -1, count: count), residualInput = [Int](repeating: -1, count: count)
        if !training && reuseBuffers && EngineGraph.fusesResidualAdds {
            let columnFloats = largestColumnChunkFloats(maxBatch: maxBatch)
            for j in 1..<count where nodes[j].op == .add && nodes[j].inputs.count == 2 && nodes[j].inputs[0] != nodes[j].inputs[1] {
                for (slot, a) in nodes[j].inputs.enumerated() {
                    let conv = foldedInto[a] >= 0 ? foldedInto[a] : a
                    guard case let .conv(k, s, p, _, _)? = nodes[conv].op, valueRoot[a] == conv, consumers[a] == [j],
                          foldedInto[a] >= 0 ? consumers[conv] == [a] : true,
                          nodes[a].shape.channels == nodes[j].shape.channels, siblingLeader[conv] < 0,
                          nodes[j].inputs[1 - slot] < conv else { continue }
                    let plan = ConvPlan(kernel: k, stride: s, pad: p, input: nodes[nodes[conv].inputs[0]].shape, output: nodes[conv].shape,
                                        maxBatch: maxBatch, columnFloats: columnFloats, inputGradient: false, outputGradient: false)
                    guard plan.winograd || plan.isPointwise else { continue }
                    valueRoot[j] = conv
                    (residualConv[j], residualInput[j]) = (conv, 1 - slot)
                    break
                }
            }
        }

        // Lifetimes of values (per storage root), output gradients and saved tensors.
        var tensors: [PlannedTensor] = []
        var valueTensor = [Int](repeating: -1, count: count)
        for j in 0..<count {
            var end = consumers[j].max() ?? j
            // The network's output, and the loss node's logits, live to the end.
            if lastInputs.contains(j) { end = Int.max }
            if training {
                if needsGrad[j] && nodes[j].op?.backwardReadsOutput == true { end = max(end, backwardTime(j)) }
                for c in consumers[j] where needsGrad[c] && nodes[c].op!.backwardReadsInputs {
                    end = max(end, backwardTime(c))
                }
            }
            let root = valueRoot[j]
            if root == j {
                valueTensor[j] = tensors.count
                let start = siblingLeader[j] >= 0 ? siblingLeader[j] : j
                tensors.append(PlannedTensor(floats: maxBatch * nodes[j].shape.count, start: start, end: end))
            } else {
                valueTensor[j] = valueTensor[root]
                tensors[valueTensor[root]].end = max(tensors[valueTensor[root]].end, end)
            }
        }
        // Training: an activation running in place on a batch norm's output, which the batch
        // norm applies in its store (compile), and whose derivative is a mask
        // (`BatchNormKernel.fusesBackward`): the batch norm's backward does the activation's
        // too, reading the activation's output gradient, which so lives until then.
        var backwardInNorm = [Int](repeating: -1, count: count)
        if training && endsWithSoftmax && reuseBuffers && EngineGraph.fusesBatchNormActivations && EngineGraph.fusesActivationBackward {
            for j in 1..<count where valueRoot[j] != j && needsGrad[j] {
                let i = nodes[j].inputs[0]
                guard case .batchNorm? = nodes[i].op, needsGrad[i] else { continue }
                let activation: FusedActivation
                switch nodes[j].op! {
                case .relu: activation = .relu
                case let .activation(a): activation = .activation(a)
                default: continue
                }
                if BatchNormKernel.fusesBackward(of: activation) { backwardInNorm[j] = i }
            }
        }
        // Training: a ReLU between two nodes that read and write nothing else of it (its input's
        // only consumer, and a convolution its only consumer): the convolution's backward-data
        // stores dX · (x > 0), its own input x being the ReLU's output, which is the ReLU's
        // backward; the ReLU's input gradient is its output gradient's storage
        // (`ConvKernel.masksInputGradient`).
        var backwardInConvolution = [Int](repeating: -1, count: count)
        var reluAfter = [Int](repeating: -1, count: count)
        if training && endsWithSoftmax && reuseBuffers && EngineGraph.storesGradients && EngineGraph.fusesReLUBackwardInConvolution {
            for j in 1..<last where nodes[j].op == .relu && needsGrad[j] && backwardInNorm[j] < 0 {
                let i = nodes[j].inputs[0]
                guard i > 0, needsGrad[i], consumers[i] == [j], consumers[j].count == 1 else { continue }
                guard case .conv? = nodes[consumers[j][0]].op else { continue }
                backwardInConvolution[j] = consumers[j][0]
                reluAfter[i] = j
            }
        }
        var gradTensor = [Int](repeating: -1, count: count)
        var zeroGradsBefore = [[Int]](repeating: [], count: count)
        if training && endsWithSoftmax {
            for j in 0..<last where needsGrad[j] && reluAfter[j] < 0 {
                let firstWriter = consumers[j].max() ?? j
                zeroGradsBefore[firstWriter].append(j)
                gradTensor[j] = tensors.count
                let lastReader = backwardInNorm[j] >= 0 ? backwardInNorm[j] : j
                tensors.append(PlannedTensor(floats: maxBatch * nodes[j].shape.count, start: backwardTime(firstWriter),
                                             end: j == 0 ? Int.max : backwardTime(lastReader)))
            }
            // The input of such a ReLU shares its output gradient, read until the input's backward.
            for i in 1..<last where reluAfter[i] >= 0 {
                let j = reluAfter[i]
                gradTensor[i] = gradTensor[j]
                tensors[gradTensor[j]].end = max(tensors[gradTensor[j]].end, backwardTime(i))
            }
        }
        var savedTensor = [Int](repeating: -1, count: count)
        if training {
            for j in 1..<count {
                let node = nodes[j]
                let floats = node.op!.savedFloatsPerSample(input: nodes[node.inputs[0]].shape, output: node.shape)
                if floats == 0 { continue }
                savedTensor[j] = tensors.count
                tensors.append(PlannedTensor(floats: maxBatch * floats, start: j, end: needsGrad[j] ? backwardTime(j) : j))
            }
        }
        let arena = planArena(tensors, reuse: reuseBuffers)
        let columnFloats = largestColumnChunkFloats(maxBatch: maxBatch)

        // Kernel memory: the convolutions' shared workspace and every other kernel's own block.
        var workspaceBytes = 0, ownedBytes = 0
        for j in 1..<count {
            let node = nodes[j]
            let hasInputGrad = node.inputs.contains { gradTensor[$0] >= 0 }
            switch node.op! {
            case let .conv(k, s, p, _, _):
                let conv = ConvPlan(kernel: k, stride: s, pad: p, input: nodes[node.inputs[0]].shape, output: node.shape,
                                    maxBatch: maxBatch, columnFloats: columnFloats, inputGradient: hasInputGrad,
                                    outputGradient: gradTensor[j] >= 0)
                workspaceBytes = max(workspaceBytes, conv.workspace.bytes)
                if !training && consumers[j].contains(where: { foldedInto[$0] == j }) {
                    var fold = MemoryLayout64()
                    _ = fold.floats(ConvKernel.foldedFloats(kernel: k, input: nodes[node.inputs[0]].shape, output: node.shape))
                    ownedBytes += allocatedBytes(fold.bytes)
                }
                if !training && conv.packedForwardWeightFloats > 0 {
                    ownedBytes += PackedWeightCache.bytes(weightFloats: k * k * nodes[node.inputs[0]].shape.channels * node.shape.channels,
                                                          packedFloats: conv.packedForwardWeightFloats)
                }
            case let .convolution(g):
                let conv = GroupedConvPlan(g, input: nodes[node.inputs[0]].shape, output: node.shape, maxBatch: maxBatch)
                workspaceBytes = max(workspaceBytes, conv.workspace.bytes)
                if conv.depthwise {
                    ownedBytes += DepthwiseConvKernel.ownedBytes(g, input: nodes[node.inputs[0]].shape, output: node.shape)
                }
            case .mul: ownedBytes += MulKernel.ownedBytes(inputs: node.inputs.count)
            case .batchNorm: ownedBytes += allocatedBytes(BatchNormKernel.layout(channels: node.shape.channels).layout.bytes)
            case .linear: ownedBytes += allocatedBytes(LinearKernel.layout(outFeatures: node.shape.channels).bytes)
            case .softmax: ownedBytes += allocatedBytes(SoftmaxKernel.layout(maxBatch: maxBatch).layout.bytes)
            default: break
            }
        }
        for group in siblingGroups {
            let leader = nodes[group[0]]
            let layout = PointwiseSiblingLayout(
                inChannels: nodes[leader.inputs[0]].shape.channels,
                columns: group.reduce(0) { $0 + nodes[$1].shape.channels },
                maxRows: maxBatch * leader.shape.height * leader.shape.width).layout
            workspaceBytes = max(workspaceBytes, layout.bytes)
        }
        let parameterCount = parameterSpecs.joined().reduce(0) { $0 + $1.count }
        let bufferCount = bufferSpecs.joined().reduce(0) { $0 + $1.count }
        let unplanned = tensors.reduce(0) { $0 + ($1.floats + 15) / 16 * 16 }
        let memory = EngineMemoryPlan(
            activationBytes: 4 * arena.totalFloats,
            scratchBytes: 4 * columnFloats + workspaceBytes + ownedBytes,
            parameterBytes: 4 * parameterCount, gradientBytes: 4 * parameterCount, bufferBytes: 4 * bufferCount,
            unplannedActivationBytes: 4 * unplanned)
        return CompilePlan(needsGrad: needsGrad, valueRoot: valueRoot, foldedInto: foldedInto, backwardInNorm: backwardInNorm,
                           backwardInConvolution: backwardInConvolution,
                           siblingLeader: siblingLeader, siblingGroups: siblingGroups, residualConv: residualConv, residualInput: residualInput,
                           valueTensor: valueTensor, gradTensor: gradTensor,
                           savedTensor: savedTensor, zeroGradsBefore: zeroGradsBefore, offsets: arena.offsets,
                           arenaFloats: arena.totalFloats, columnFloats: columnFloats, parameterSpecs: parameterSpecs,
                           bufferSpecs: bufferSpecs, parameterCount: parameterCount, bufferCount: bufferCount,
                           workspaceBytes: workspaceBytes, memory: memory)
    }

    /// What `compile(training:reuseBuffers:)` will allocate, computed without allocating
    /// anything (before `compile`): activations, scratch, parameters, gradients, buffers.
    public func plannedMemory(training: Bool, reuseBuffers: Bool = true) -> EngineMemoryPlan {
        makePlan(training: training, reuseBuffers: reuseBuffers, maxBatch: maxBatch).memory
    }

    /// The total of `plannedMemory(training:reuseBuffers:)`, in bytes.
    public func plannedBytes(training: Bool, reuseBuffers: Bool = true) -> Int {
        plannedMemory(training: training, reuseBuffers: reuseBuffers).totalBytes
    }

    /// Throws `EngineMemoryError` (planned bytes, available bytes, the largest batch that fits)
    /// when the memory `compile(training:reuseBuffers:)` would allocate for `maxBatch` exceeds
    /// `availableBytes`, by default `EngineMemory.availableBytes()` (no check where that is
    /// unknown). Nothing is allocated. `compile` runs this check itself; call it earlier to
    /// refuse before other work (loading a dataset).
    public func checkMemory(training: Bool, reuseBuffers: Bool = true, availableBytes: Int? = nil) throws {
        guard let available = availableBytes ?? EngineMemory.availableBytes() else { return }
        let planned = plannedBytes(training: training, reuseBuffers: reuseBuffers)
        if planned <= available { return }
        // The plan grows with the batch (activations scale with it); the largest batch that fits
        // by bisection over 1 ..< maxBatch.
        var lo = 0, hi = maxBatch - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if makePlan(training: training, reuseBuffers: reuseBuffers, maxBatch: mid).memory.totalBytes <= available {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        throw EngineMemoryError(plannedBytes: planned, availableBytes: available, batch: maxBatch, training: training,
                                largestBatch: lo >= 1 ? lo : nil)
    }

    /// Plans memory, checks that the machine can give it (`checkMemory`), allocates and
    /// initialises parameters, and binds kernels. `training` keeps what backward needs and
    /// allocates gradients; `reuseBuffers` lets tensors with disjoint lifetimes share storage and
    /// runs ReLU in place where safe (off: every tensor owns storage). Throws
    /// `EngineMemoryError` when the plan does not fit or an allocation fails (what was
    /// allocated is freed with the graph); runs once.
    public func compile(training: Bool = true, reuseBuffers: Bool = true) throws {
        require(!compileStarted, "compile() runs once")
        compileStarted = true
        let plan = makePlan(training: training, reuseBuffers: reuseBuffers, maxBatch: maxBatch)
        try checkMemory(training: training, reuseBuffers: reuseBuffers)
        let count = nodes.count, last = count - 1
        needsGrad = plan.needsGrad
        zeroGradsBefore = plan.zeroGradsBefore

        let arena = try allocateFloats(plan.arenaFloats)
        self.arena = arena
        values = (0..<count).map { arena + plan.offsets[plan.valueTensor[$0]] }
        grads = (0..<count).map { plan.gradTensor[$0] < 0 ? nil : arena + plan.offsets[plan.gradTensor[$0]] }
        let saved = (0..<count).map { plan.savedTensor[$0] < 0 ? nil : arena + plan.offsets[plan.savedTensor[$0]] }

        let columnFloats = plan.columnFloats
        let columns = try allocateFloats(columnFloats)
        columnScratch = columns
        let workspace = try allocateMemory(bytes: plan.workspaceBytes)
        convWorkspace = workspace
        let nodeParameters = try allocateParameters(plan.parameterSpecs)
        self.nodeParameters = nodeParameters
        runsBackward = needsGrad
        let nodeBuffers = try allocateBuffers(plan.bufferSpecs)

        // Kernels.
        kernels = [EngineKernel?](repeating: nil, count: count)
        for j in 1..<count {
            let node = nodes[j]
            let storage = NodeStorage(
                inputs: node.inputs.map { values[$0] }, inputShapes: node.inputs.map { nodes[$0].shape },
                inputGrads: node.inputs.map { grads[$0] }, output: values[j], outputShape: node.shape,
                outputGrad: grads[j], parameters: nodeParameters[j].map(\.value),
                parameterGrads: nodeParameters[j].map(\.grad), buffers: nodeBuffers[j].map(\.value),
                saved: saved[j], columnScratch: columns, columnScratchFloats: columnFloats, maxBatch: maxBatch,
                workspace: workspace, workspaceBytes: plan.workspaceBytes,
                weightGeneration: training ? nil : weightGeneration)
            kernels[j] = try makeKernel(node.op!, index: j, storage: storage)
        }
        // A ReLU running in place on a convolution's output: the convolution stores max(·, 0)
        // (its output is read by nothing else, and its backward does not read it).
        for j in 1..<count where nodes[j].op == .relu && plan.valueRoot[j] != j {
            if let relu = kernels[j] as? ReLUKernel, let conv = kernels[nodes[j].inputs[0]] as? ConvKernel,
               relu.io.input == relu.io.output, conv.io.output == relu.io.input {
                conv.fusedReLU = true
                relu.fused = true
            }
        }
        // A ReLU, or an activation whose backward reads only its output, running in place on a
        // batch norm's output: the batch norm applies it in its store (a pass over the tensor saved).
        for j in 1..<count where plan.valueRoot[j] != j && EngineGraph.fusesBatchNormActivations {
            guard let bn = kernels[nodes[j].inputs[0]] as? BatchNormKernel, bn.fused == nil else { continue }
            if let relu = kernels[j] as? ReLUKernel, nodes[j].op == .relu, relu.io.input == relu.io.output, bn.io.output == relu.io.input {
                bn.fused = .relu
                relu.fused = true
            } else if let act = kernels[j] as? ActivationKernel, case let .activation(a)? = nodes[j].op,
                      a.backwardFromOutput, act.io.input == act.io.output, bn.io.output == act.io.input {
                bn.fused = .activation(a)
                act.fused = true
            }
        }
        // Activations whose backward the batch norm before them does (training; makePlan).
        activationBackwardsInNorm = []
        activationKernelsInNorm = []
        for j in 1..<count where plan.backwardInNorm[j] >= 0 {
            let i = plan.backwardInNorm[j], bn = kernels[i] as! BatchNormKernel, act = kernels[j] as! ActivationBackwardInNorm
            require(bn.fused != nil && grads[j] != nil, "the activation after \(nodes[i].name) is not fused")
            bn.fusedActivationGradient = UnsafePointer(grads[j]!)
            act.backwardInNorm = true
            activationBackwardsInNorm.append((j, i))
            activationKernelsInNorm.append(act)
        }
        // ReLUs whose backward the convolution after them does (training; makePlan).
        reluBackwardsInConvolution = []
        reluKernelsInConvolution = []
        for j in 1..<count where plan.backwardInConvolution[j] >= 0 {
            let k = plan.backwardInConvolution[j], conv = kernels[k] as! ConvKernel, relu = kernels[j] as! ReLUKernel
            require(relu.slope == 0 && relu.signFromOutput && grads[j] != nil && grads[nodes[j].inputs[0]] == grads[j]
                    && conv.io.input == relu.io.output, "the ReLU before \(nodes[k].name) does not share its gradient")
            conv.masksInputGradient = true
            relu.backwardInConvolution = true
            // Its own backward (inputGradient's rules) then runs in place, storing.
            _ = relu.storeInputGradient(0)
            reluBackwardsInConvolution.append((j, k))
            reluKernelsInConvolution.append((relu, conv))
        }
        // Batch norms folded into the convolution before them (inference only; see makePlan):
        // the convolution also applies a ReLU the batch norm would have.
        for j in 1..<count where plan.foldedInto[j] >= 0 {
            let conv = kernels[plan.foldedInto[j]] as! ConvKernel, bn = kernels[j] as! BatchNormKernel
            try conv.foldBatchNorm(bn)
            if bn.fused == .relu { conv.fusedReLU = true }
        }
        foldedBatchNorms = (1..<count).filter { plan.foldedInto[$0] >= 0 }
        // Adds whose convolution adds the other input as it stores (inference only; makePlan).
        for j in 1..<count where plan.residualConv[j] >= 0 {
            let conv = kernels[plan.residualConv[j]] as! ConvKernel, add = kernels[j] as! AddKernel
            let r = plan.residualInput[j]
            require(!conv.fusedReLU && conv.io.output == add.t.output)
            conv.residual = ConvResidual(source: UnsafePointer(add.t.inputs[r]), channels: add.t.inputChannels[r], isFirst: r == 0)
            add.fused = true
        }
        fusedResidualAdds = (1..<count).filter { plan.residualConv[$0] >= 0 }
        // 1×1 convolutions of one input run as one GEMM by the first (inference only; makePlan).
        for group in plan.siblingGroups {
            let convs = group.map { kernels[$0] as! ConvKernel }
            convs[0].lead(convs, workspace: workspace, maxBatch: maxBatch)
        }
        pointwiseSiblingGroups = plan.siblingGroups
        // Gradients whose first writer can store them: not zeroed first (a pass over the tensor
        // saved, and the writer's read of it).
        storedGradsBy = [[Int]](repeating: [], count: count)
        if EngineGraph.storesGradients {
            for k in 1..<count {
                zeroGradsBefore[k].removeAll { j in
                    let uses = nodes[k].inputs.indices.filter { nodes[k].inputs[$0] == j }
                    guard uses.count == 1, kernels[k]!.storeInputGradient(uses[0]) else { return false }
                    storedGradsBy[k].append(j)
                    return true
                }
            }
        }
        softmaxKernel = nodes[last].op == .softmax ? (kernels[last] as! SoftmaxKernel) : nil

        memoryPlan = EngineMemoryPlan(
            activationBytes: 4 * plan.arenaFloats,
            scratchBytes: 4 * columnFloats + plan.workspaceBytes + kernels.reduce(0) { $0 + ($1?.ownedScratchBytes ?? 0) },
            parameterBytes: 4 * parameterCount, gradientBytes: 4 * parameterCount, bufferBytes: 4 * bufferCount,
            unplannedActivationBytes: plan.memory.unplannedActivationBytes)
        isCompiled = true
        isCompiledForTraining = training
    }

    /// Keys the uniform initialisation stream: EngineRandom(seed: mix(seed ^ key)).
    public static let uniformStreamKey: UInt64 = 0x5EED_0F_0A1F_0A11

    /// Test hook: false keeps batch norm and the activation after it as two passes.
    nonisolated(unsafe) static var fusesBatchNormActivations = true

    /// Test and benchmark hook: false leaves an activation fused into a batch norm's forward
    /// to do its own backward (a pass that stores the batch norm's output gradient).
    nonisolated(unsafe) static var fusesActivationBackward = true

    /// Test and benchmark hook: false leaves a ReLU before a convolution to do its own backward
    /// (a pass that stores the ReLU's input gradient) instead of the convolution's backward-data.
    nonisolated(unsafe) static var fusesReLUBackwardInConvolution = true

    /// Test and benchmark hook, read by `compile`: false zeroes every gradient before its first
    /// writer and lets every kernel add to it (the code path before gradient stores).
    nonisolated(unsafe) static var storesGradients = true

    /// Test hook: fills each stored gradient with NaN right before the backward that stores it,
    /// so a kernel that leaves part of it unwritten shows.
    nonisolated(unsafe) static var poisonsStoredGradients = false

    /// A node's output after a forward pass (tests; overwritten by later nodes when storage is reused).
    func value(of node: Int) -> UnsafePointer<Float> { UnsafePointer(values[node]) }
    /// The gradient of a node's output after a backward pass (tests), or nil.
    /// Nil also for a batch norm that does the backward of the activation after it, whose output
    /// gradient is never stored (`activationBackwardsInNorm`), and for a ReLU whose backward the
    /// convolution after it does (`reluBackwardsInConvolution`): its output gradient's storage
    /// holds its input's gradient.
    func gradient(of node: Int) -> UnsafePointer<Float>? {
        if activationBackwardsInNorm.contains(where: { $0.norm == node }) { return nil }
        if reluBackwardsInConvolution.contains(where: { $0.relu == node }) { return nil }
        return grads[node].map { UnsafePointer($0) }
    }
    /// The nodes whose output gradient node k's backward stores (tests).
    func storedGradients(by k: Int) -> [Int] { storedGradsBy[k] }

    /// Before node k's backward: zeroes the gradients it adds to first, and poisons (test hook)
    /// those it stores.
    private func prepareGradients(before k: Int, batch: Int) {
        for j in zeroGradsBefore[k] { parallelZero(grads[j]!, count: batch * nodes[j].shape.count) }
        if EngineGraph.poisonsStoredGradients {
            for j in storedGradsBy[k] { grads[j]!.update(repeating: .nan, count: batch * nodes[j].shape.count) }
        }
    }

    /// Zeroes the gradients node k would have stored, when its backward does not run.
    private func zeroStoredGradients(of k: Int, batch: Int) {
        for j in storedGradsBy[k] { parallelZero(grads[j]!, count: batch * nodes[j].shape.count) }
    }

    /// Test and benchmark hook, read by `compile`: false keeps an inference-only graph's adds
    /// as passes of their own instead of fusing them into the convolution before them.
    nonisolated(unsafe) static var fusesResidualAdds = true

    /// Test and benchmark hook, read by `compile`: false runs an inference-only graph's 1×1
    /// convolutions of one input as separate GEMMs (PointwiseSiblings.swift).
    nonisolated(unsafe) static var fusesPointwiseSiblings = true

    /// Test and benchmark hook: false keeps an inference-only graph's batch norms after
    /// convolutions as passes of their own instead of folding them into the convolutions.
    nonisolated(unsafe) static var foldsBatchNorm = true

    /// Floats of the shared im2col scratch: the largest chunk any convolution uses.
    private func largestColumnChunkFloats(maxBatch: Int) -> Int {
        var columnFloats = 0
        for node in nodes {
            if case let .convolution(g)? = node.op {
                let x = nodes[node.inputs[0]].shape
                columnFloats = max(columnFloats, GroupedConvPlan(g, input: x, output: node.shape, maxBatch: maxBatch)
                    .columnFloats(g, input: x, output: node.shape))
                continue
            }
            guard case let .conv(k, s, p, _, _)? = node.op, !(k == 1 && s == 1 && p == 0) else { continue }
            let x = nodes[node.inputs[0]].shape
            columnFloats = max(columnFloats, ConvKernel.columnFloatsPerSample(kernel: k, input: x, output: node.shape)
                * ConvKernel.samplesPerChunk(kernel: k, input: x, output: node.shape, maxBatch: maxBatch))
        }
        return columnFloats
    }

    /// Allocates the contiguous value and gradient blocks and initialises every parameter, in
    /// node order, from one generator seeded with `seed`. Returns each node's parameters.
    private func allocateParameters(_ specs: [[ParameterSpec]]) throws -> [[EngineParameter]] {
        parameterCount = specs.joined().reduce(0) { $0 + $1.count }
        let storage = try allocateFloats(2 * parameterCount)
        parameterStorage = storage
        let gradStorage = storage + parameterCount
        var random = EngineRandom(seed: seed)
        // Uniform initialisations (`init=torch`, `init=dirac`) draw from a stream of their own, so
        // the normals of the other layers are those of a network without them (and PyTorch export's
        // dsl_initialize replays both streams).
        var uniformRandom = EngineRandom(seed: EngineRandom.mix(seed ^ EngineGraph.uniformStreamKey))
        var nodeParameters = [[EngineParameter]](repeating: [], count: nodes.count)
        var offset = 0
        for (j, nodeSpecs) in specs.enumerated() {
            for spec in nodeSpecs {
                let value = storage + offset
                switch spec.initializer {
                case let .normal(std): for i in 0..<spec.count { value[i] = Float(random.normal() * std) }
                case let .constant(c): value.update(repeating: c, count: spec.count)
                case let .uniform(bound): for i in 0..<spec.count { value[i] = Float((2 * uniformRandom.uniform() - 1) * bound) }
                case let .dirac(bound):
                    // (KH,KW,IC,OC): filters o < min(IC, OC) are 1 at (KH/2, KW/2, o), 0 elsewhere.
                    let (kh, kw, ic, oc) = (spec.shape[0], spec.shape[1], spec.shape[2], spec.shape[3])
                    let identity = min(ic, oc)
                    for i in 0..<spec.count {
                        value[i] = i % oc < identity ? 0 : Float((2 * uniformRandom.uniform() - 1) * bound)
                    }
                    for o in 0..<identity { value[((kh / 2 * kw + kw / 2) * ic + o) * oc + o] = 1 }
                }
                nodeParameters[j].append(EngineParameter(name: "\(nodes[j].name).\(spec.suffix)", shape: spec.shape,
                                                         count: spec.count, offset: offset, value: value,
                                                         grad: gradStorage + offset, training: spec.training,
                                                         dataInitialization: spec.dataInitialization))
                offset += spec.count
            }
        }
        storedParameters = Array(nodeParameters.joined())
        return nodeParameters
    }

    /// Allocates the buffer block (BN running statistics) and sets initial values.
    private func allocateBuffers(_ specs: [[ParameterSpec]]) throws -> [[EngineBuffer]] {
        bufferCount = specs.joined().reduce(0) { $0 + $1.count }
        let storage = try allocateFloats(bufferCount)
        bufferStorage = storage
        var nodeBuffers = [[EngineBuffer]](repeating: [], count: nodes.count)
        var offset = 0
        for (j, nodeSpecs) in specs.enumerated() {
            for spec in nodeSpecs {
                let value = storage + offset
                if case let .constant(c) = spec.initializer { value.update(repeating: c, count: spec.count) }
                nodeBuffers[j].append(EngineBuffer(name: "\(nodes[j].name).\(spec.suffix)", shape: spec.shape,
                                                   count: spec.count, value: value))
                offset += spec.count
            }
        }
        storedBuffers = Array(nodeBuffers.joined())
        return nodeBuffers
    }

    private func makeKernel(_ op: EngineOp, index: Int, storage: NodeStorage) throws -> EngineKernel {
        switch op {
        case let .conv(k, s, p, _, _): return try ConvKernel(kernel: k, stride: s, pad: p, storage: storage)
        case let .maxPool(k, s, p, _): return MaxPoolKernel(kernel: k, stride: s, pad: p, storage: storage)
        case let .avgPool(k, s, p, _): return AvgPoolKernel(kernel: k, stride: s, pad: p, storage: storage)
        case .globalAvgPool: return GlobalAvgPoolKernel(storage: storage)
        case .relu, .leakyRelu:
            let slope: Float
            if case let .leakyRelu(s) = op { slope = s } else { slope = 0 }
            return ReLUKernel(slope: slope, signFromOutput: op.backwardReadsOutput, storage: storage)
        case let .batchNorm(eps, momentum, scale): return try BatchNormKernel(eps: eps, momentum: momentum, scale: scale, storage: storage)
        case let .scale(a): return ScaleKernel(factor: a, storage: storage)
        case let .dropout(p):
            return DropoutKernel(probability: p, nodeIndex: index, randomState: randomState, storage: storage)
        case .concat: return ConcatKernel(storage: storage)
        case .add: return AddKernel(storage: storage)
        case .linear: return try LinearKernel(storage: storage)
        case .softmax: return try SoftmaxKernel(storage: storage)
        case let .convolution(g):
            if g.isDepthwise(inChannels: storage.inputShapes[0].channels) { return try DepthwiseConvKernel(g, storage: storage) }
            return try GroupedConvKernel(g, storage: storage)
        case let .activation(a): return ActivationKernel(a, storage: storage)
        case .mul: return MulKernel(storage: storage)
        case .adaptiveAvgPool: return AdaptiveAvgPoolKernel(storage: storage)
        }
    }

    // MARK: Running

    /// When true, forward and backward add each node's wall time to `forwardSeconds` and
    /// `backwardSeconds` (indexed by node); turning it on resets both.
    public var profiling = false {
        didSet {
            if profiling {
                forwardSeconds = [Double](repeating: 0, count: nodes.count)
                backwardSeconds = [Double](repeating: 0, count: nodes.count)
            }
        }
    }
    /// Accumulated forward seconds per node while `profiling` was on.
    public private(set) var forwardSeconds: [Double] = []
    /// Accumulated backward seconds per node while `profiling` was on.
    public private(set) var backwardSeconds: [Double] = []

    /// Bytes the compiled graph holds: activations + scratch + parameters + gradients + buffers.
    public var plannedBytes: Int { memoryPlan.totalBytes }

    /// The contiguous block of all parameter values (`parameterCount` floats). Reading it tells
    /// the graph that they may be written, as for `parameters`.
    public var parameterValues: UnsafeMutablePointer<Float> {
        require(isCompiled, "compile() the graph first")
        weightGeneration.advance()
        return parameterStorage!
    }

    /// The contiguous block of all parameter gradients, parallel to `parameterValues`.
    public var parameterGrads: UnsafeMutablePointer<Float> {
        require(isCompiled, "compile() the graph first")
        return parameterStorage! + parameterCount
    }

    /// Where a node's output lives (tests check in-place decisions with it).
    func outputStorage(of node: Int) -> UnsafePointer<Float> { UnsafePointer(values[node]) }

    /// Gradient of the loss with respect to the input after `backward`, if `computesInputGradient`.
    public var inputGradient: UnsafePointer<Float>? { grads.first.flatMap { $0.map { UnsafePointer($0) } } }

    /// Runs the graph on `batch` NHWC samples; returns the last node's output (for softmax, each
    /// pixel's probabilities over channels), valid until the next call. `training` uses batch statistics and dropout.
    @discardableResult
    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafePointer<Float> {
        require(isCompiled, "compile() the graph first")
        require(batch >= 1 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        require(!training || isCompiledForTraining, "graph was compiled for inference only")
        values[0].update(from: input, count: batch * inputShape.count)
        if training { randomState[1] &+= 1 }
        if profiling {
            for k in 1..<kernels.count {
                let t0 = DispatchTime.now().uptimeNanoseconds
                kernels[k]!.forward(batch: batch, training: training)
                forwardSeconds[k] += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            }
        } else {
            for kernel in kernels.dropFirst() { kernel!.forward(batch: batch, training: training) }
        }
        lastForward = (batch, training)
        inspected = nil
        return UnsafePointer(values[nodes.count - 1])
    }

    /// After a forward pass, the logits of a graph ending in softmax (its input, before the
    /// softmax: `outputShape` per image, NHWC), valid until the next call; nil for a graph that
    /// does not end in softmax. The memory plan keeps the last node's inputs to the end.
    public var logits: UnsafePointer<Float>? {
        guard endsInSoftmax, isCompiled, let i = nodes[nodes.count - 1].inputs.first else { return nil }
        return UnsafePointer(values[i])
    }

    /// Whether the last node is a softmax, the loss node that `loss` and `backward` need.
    public var endsInSoftmax: Bool { nodes[nodes.count - 1].op == .softmax }

    /// Classes of the loss node: the output's channels (softmax normalises over channels).
    public var classCount: Int { outputShape.channels }

    /// The loss of the last forward pass, the API the trainer and `dsl eval` use: softmax
    /// cross-entropy between the final softmax and `labels` (one class in 0..<`classCount` per
    /// image), computed from the softmax's input (the logits) with log-softmax in Double, so a
    /// confident model's loss is not capped, and averaged over the batch and, for an output
    /// map larger than 1×1, over its pixels (each pixel's cross-entropy against its image's
    /// label). `correct` counts the images whose predicted class (`predictedClasses`) is the
    /// label. The graph must end in softmax. `labelSmoothing` ε in 0..<1 replaces each one-hot
    /// label by (1−ε)·onehot + ε/classes (PyTorch's CrossEntropyLoss(label_smoothing=ε)).
    public func loss(labels: UnsafePointer<Int32>, batch: Int, labelSmoothing: Float = 0) -> (loss: Float, correct: Int) {
        let (loss, correct) = lossInDouble(labels: labels, batch: batch, labelSmoothing: labelSmoothing)
        return (Float(loss), correct)
    }

    /// Each image's predicted class after the last forward pass: the argmax of its probabilities
    /// averaged over the output's pixels (the first on ties). The graph must end in softmax.
    public func predictedClasses(batch: Int) -> [Int] {
        guard let softmax = softmaxKernel else { fatalError("predictions need a graph ending in softmax") }
        require(lastForward?.batch == batch, "predictions need the forward pass of the same batch")
        return softmax.predictions(batch: batch)
    }

    /// `loss` without rounding the mean to Float (finite-difference checks need the precision).
    func lossInDouble(labels: UnsafePointer<Int32>, batch: Int, labelSmoothing: Float = 0) -> (loss: Double, correct: Int) {
        guard let softmax = softmaxKernel else { fatalError("the loss needs a graph ending in softmax") }
        require(lastForward?.batch == batch, "loss needs the forward pass of the same batch")
        return softmax.lossAndGradient(labels: labels, batch: batch, accumulateGradient: false, smoothing: labelSmoothing)
    }

    /// Back-propagates the loss (see `loss(labels:batch:labelSmoothing:)`, with the same
    /// `labelSmoothing`) of the last training forward pass: zeroes, then accumulates, all
    /// parameter gradients. Returns the loss and correct count.
    @discardableResult
    public func backward(labels: UnsafePointer<Int32>, batch: Int, labelSmoothing: Float = 0) -> (loss: Float, correct: Int) {
        guard let softmax = softmaxKernel else { fatalError("backward needs a graph ending in softmax") }
        require(isCompiledForTraining, "graph was compiled for inference only")
        require(lastForward?.batch == batch && lastForward?.training == true,
                     "backward needs a training forward pass of the same batch")
        parallelZero(parameterGrads, count: parameterCount)
        var result: (loss: Double, correct: Int) = (0, 0)
        for k in stride(from: nodes.count - 1, through: 1, by: -1) {
            prepareGradients(before: k, batch: batch)
            if k == nodes.count - 1 {
                result = softmax.lossAndGradient(labels: labels, batch: batch, accumulateGradient: true, smoothing: labelSmoothing)
            } else if runsBackward[k] {
                let t0 = profiling ? DispatchTime.now().uptimeNanoseconds : 0
                kernels[k]!.backward(batch: batch)
                if profiling { backwardSeconds[k] += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 }
            } else {
                zeroStoredGradients(of: k, batch: batch)
            }
        }
        return (Float(result.loss), result.correct)
    }

    /// Restricts backward to the work that trained parameters need: a parameter for which
    /// `isTrained` is false gets no gradient (it stays zero), a node runs backward only when it or
    /// something before it has a trained parameter, and a convolution computes its input's
    /// gradient only when something before it needs one. The gradients of trained parameters
    /// are bit-identical to a full backward's. Call between steps (the trainer calls it at
    /// the start of every epoch with `EngineParameter.training`); `{ _ in true }` restores the
    /// full backward. Frozen first layers are common (airbench's whitening convolution, a
    /// fine-tuned backbone), and their backward is a large share of a step.
    public func setTrainedParameters(_ isTrained: (EngineParameter) -> Bool) {
        require(isCompiled, "setTrainedParameters needs a compiled graph")
        guard isCompiledForTraining else { return }
        var live = [Bool](repeating: false, count: nodes.count)
        live[0] = needsGrad[0]
        for j in 1..<nodes.count {
            live[j] = needsGrad[j] && (nodeParameters[j].contains(where: isTrained) || nodes[j].inputs.contains { live[$0] })
        }
        // The loss node starts backward whatever is trained.
        live[nodes.count - 1] = needsGrad[nodes.count - 1]
        runsBackward = live
        for j in 1..<nodes.count {
            guard let conv = kernels[j] as? ConvKernel else { continue }
            let parameters = nodeParameters[j]
            conv.trainsWeight = parameters.first.map(isTrained) ?? true
            conv.trainsBias = parameters.count > 1 ? isTrained(parameters[1]) : true
            conv.wantsInputGradient = live[nodes[j].inputs[0]]
        }
    }

    // MARK: Visualisation: the input gradient of one node

    /// The node and batch of the last `forwardForInputGradient`, which `inputGradient` needs.
    private var inspected: (node: Int, batch: Int)?

    /// Runs the graph in inference mode (batch norm with its running statistics, dropout the
    /// identity) on `batch` NHWC samples through `node` only, keeping what a backward pass
    /// needs (max-pooling switches included); returns the node's output (batch × `shape(of:)`
    /// floats), valid until the next call into the graph: copy what `inputGradient` is seeded
    /// from first. Needs a graph compiled for training with `computesInputGradient` (so every
    /// node has a gradient); `node` is neither the input nor the final softmax. A convolution
    /// that applies the ReLU after it in its store (in place) stores its own output for this
    /// pass when it is `node`; so does a batch norm applying the activation after it.
    public func forwardForInputGradient(_ input: UnsafePointer<Float>, batch: Int, through node: Int) -> UnsafePointer<Float> {
        require(isCompiledForTraining && computesInputGradient && endsInSoftmax,
                "input gradients need a graph ending in softmax, compiled for training with computesInputGradient")
        require(node >= 1 && node < nodes.count - 1 && needsGrad[node], "node \(node) has no gradient to start from")
        require(batch >= 1 && batch <= maxBatch, "batch \(batch) outside 1...\(maxBatch)")
        values[0].update(from: input, count: batch * inputShape.count)
        let pools = kernels.compactMap { $0 as? MaxPoolKernel }
        for p in pools { p.recordsSwitches = true }
        let unfused = (kernels[node] as? ConvKernel).flatMap { $0.fusedReLU ? $0 : nil }
        unfused?.fusedReLU = false
        let unfusedNorm = kernels[node] as? BatchNormKernel
        let normActivation = unfusedNorm?.fused
        unfusedNorm?.fused = nil
        defer {
            for p in pools { p.recordsSwitches = false }
            unfused?.fusedReLU = true
            unfusedNorm?.fused = normActivation
        }
        for k in 1...node { kernels[k]!.forward(batch: batch, training: false) }
        lastForward = (batch, false)
        inspected = (node, batch)
        return UnsafePointer(values[node])
    }

    /// After `forwardForInputGradient(_:batch:through:)` of the same batch: back-propagates
    /// `seed` (the gradient of the node's output, batch × `shape(of: node).count` floats) to the
    /// input, through ReLUs by `rule`, max pooling by its switches, batch norm as the affine map
    /// of its running statistics, dropout as the identity, everything else by its usual
    /// backward. Returns the input gradient (batch × `inputShape.count` floats), valid until
    /// the next call into the graph. Parameter gradients are left meaningless (training zeroes
    /// them before every step); every kernel is back in its training mode afterwards.
    public func inputGradient(seed: UnsafePointer<Float>, batch: Int, rule: ReLUBackwardRule) -> UnsafePointer<Float> {
        guard let (node, forwardBatch) = inspected, forwardBatch == batch, lastForward?.batch == batch, lastForward?.training == false else {
            fatalError("inputGradient needs forwardForInputGradient of the same batch first")
        }
        // Gradients whose first writer lies after `node`: no backward step of ours zeroes them
        // (their planned lifetime has begun by now, so nothing else uses their storage).
        for k in (node + 1)..<nodes.count {
            for j in zeroGradsBefore[k] + storedGradsBy[k] where j <= node {
                parallelZero(grads[j]!, count: batch * nodes[j].shape.count)
            }
        }
        grads[node]!.update(from: seed, count: batch * nodes[node].shape.count)
        let relus = kernels.compactMap { $0 as? ReLUKernel }
        let norms = kernels.compactMap { $0 as? BatchNormKernel }
        let drops = kernels.compactMap { $0 as? DropoutKernel }
        // Activations whose backward a batch norm does in training run their own here (the
        // batch norms run as affine maps, reading their own output gradients).
        let inNorm = activationKernelsInNorm
        for r in relus { r.rule = rule }
        for b in norms { b.inferenceBackward = true }
        for d in drops { d.inferenceBackward = true }
        for a in inNorm { a.backwardInNorm = false }
        // Likewise the ReLUs whose backward a convolution does (in place on their shared gradient).
        let inConvolution = reluKernelsInConvolution
        for (r, c) in inConvolution { r.backwardInConvolution = false; c.masksInputGradient = false }
        defer {
            for r in relus { r.rule = .backprop }
            for b in norms { b.inferenceBackward = false }
            for d in drops { d.inferenceBackward = false }
            for a in inNorm { a.backwardInNorm = true }
            for (r, c) in inConvolution { r.backwardInConvolution = true; c.masksInputGradient = true }
        }
        for k in stride(from: node, through: 1, by: -1) {
            prepareGradients(before: k, batch: batch)
            if needsGrad[k] { kernels[k]!.backward(batch: batch) } else { zeroStoredGradients(of: k, batch: batch) }
        }
        return UnsafePointer(grads[0]!)
    }
}

/// A precondition that survives -Ounchecked (the engine is always built that way): API misuse
/// such as backward without a training forward pass stops with a message instead of computing garbage.
@inline(__always)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "",
             file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError(message(), file: file, line: line) }
}
