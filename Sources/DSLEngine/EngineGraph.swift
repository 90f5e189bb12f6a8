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

    private var nodes: [Node]
    /// Whether `compile` has run.
    public private(set) var isCompiled = false
    /// Whether the graph was compiled with training storage (saved tensors, gradients).
    public private(set) var isCompiledForTraining = false

    private var kernels: [EngineKernel?] = []
    private var softmaxKernel: SoftmaxKernel?
    private var values: [UnsafeMutablePointer<Float>] = []
    private var grads: [UnsafeMutablePointer<Float>?] = []
    private var needsGrad: [Bool] = []
    /// zeroGradsBefore[k]: nodes whose output gradient is zeroed right before node k's backward.
    private var zeroGradsBefore: [[Int]] = []
    private var arena: UnsafeMutablePointer<Float>?
    private var columnScratch: UnsafeMutablePointer<Float>?
    private var parameterStorage: UnsafeMutablePointer<Float>?
    private var bufferStorage: UnsafeMutablePointer<Float>?
    /// [dropout seed, training-pass counter], read by dropout kernels.
    private let randomState: UnsafeMutablePointer<UInt64>
    private var lastForward: (batch: Int, training: Bool)?

    /// Trainable parameters in node order (weight before bias); valid after `compile`.
    public private(set) var parameters: [EngineParameter] = []
    /// Buffers (BN running statistics) in node order; valid after `compile`.
    public private(set) var buffers: [EngineBuffer] = []
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
        arena?.deallocate()
        columnScratch?.deallocate()
        parameterStorage?.deallocate()
        bufferStorage?.deallocate()
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
    /// Per-sample output shape of a node.
    public func shape(of node: Int) -> EngineShape { nodes[node].shape }
    /// Operator of a node (nil for the input node 0).
    public func op(of node: Int) -> EngineOp? { nodes[node].op }
    /// Name of a node ("input" for node 0).
    public func name(of node: Int) -> String { nodes[node].name }
    /// Per-sample shape of the last node's output.
    public var outputShape: EngineShape { nodes[nodes.count - 1].shape }

    /// Appends a node computing `op` of the given earlier nodes; returns its index. Throws when
    /// the inputs do not fit the operator, an index is unknown, the name is taken, or the graph
    /// already ends in softmax.
    @discardableResult
    public func add(_ op: EngineOp, inputs: [Int], name: String) throws -> Int {
        require(!isCompiled, "cannot add nodes to a compiled graph")
        guard !nodes.contains(where: { $0.name == name }) else {
            throw EngineGraphError("node '\(name)': the name is already used")
        }
        for i in inputs where i < 0 || i >= nodes.count {
            throw EngineGraphError("node '\(name)' (\(op)): input \(i) does not exist (graph has \(nodes.count) nodes)")
        }
        if let softmax = nodes.first(where: { $0.op == .softmax }) {
            throw EngineGraphError("node '\(name)' (\(op)): softmax '\(softmax.name)' must be the final node")
        }
        let shape = try op.outputShape(inputs: inputs.map { nodes[$0].shape }, node: name)
        nodes.append(Node(op: op, inputs: inputs, name: name, shape: shape))
        return nodes.count - 1
    }

    /// Re-seeds dropout masks: the next training passes draw the same masks as after any other
    /// call with the same seed.
    public func reseedDropout(_ seed: UInt64) {
        randomState[0] = seed
        randomState[1] = 0
    }

    // MARK: Compilation

    /// Plans memory, allocates and initialises parameters, and binds kernels. `training` keeps
    /// what backward needs and allocates gradients; `reuseBuffers` lets tensors with disjoint
    /// lifetimes share storage and runs ReLU in place where safe (off: every tensor owns storage).
    public func compile(training: Bool = true, reuseBuffers: Bool = true) {
        require(!isCompiled, "compile() runs once")
        isCompiled = true
        isCompiledForTraining = training
        let count = nodes.count, last = count - 1
        let backwardTime = { (k: Int) in 2 * count - 1 - k }
        var consumers = [[Int]](repeating: [], count: count)
        for (j, node) in nodes.enumerated() {
            for i in Set(node.inputs) { consumers[i].append(j) }
        }
        let parameterSpecs = nodes.map { node in
            node.op?.parameterSpecs(inputs: node.inputs.map { nodes[$0].shape }, output: node.shape) ?? []
        }
        let bufferSpecs = nodes.map { node in node.op?.bufferSpecs(inputs: node.inputs.map { nodes[$0].shape }) ?? [] }

        // Which outputs need a gradient: nodes with parameters and everything downstream of them.
        needsGrad = [Bool](repeating: false, count: count)
        if training {
            needsGrad[0] = computesInputGradient
            for j in 1..<count {
                needsGrad[j] = !parameterSpecs[j].isEmpty || nodes[j].inputs.contains { needsGrad[$0] }
            }
        }
        let endsWithSoftmax = nodes[last].op == .softmax

        // In-place ReLU: share the input's storage when nothing else reads the input afterwards.
        var valueRoot = Array(0..<count)
        if reuseBuffers {
            for j in 1..<count where nodes[j].op!.mayRunInPlace {
                let i = nodes[j].inputs[0]
                let producerNeedsOutput = training && needsGrad[i] && nodes[i].op!.backwardReadsOutput
                if i != 0 && consumers[i].count == 1 && !producerNeedsOutput {
                    valueRoot[j] = valueRoot[i]
                }
            }
        }

        // Lifetimes of values (per storage root), output gradients and saved tensors.
        var tensors: [PlannedTensor] = []
        var valueTensor = [Int](repeating: -1, count: count)
        for j in 0..<count {
            var end = consumers[j].max() ?? j
            if j == last || nodes[last].inputs.contains(j) { end = Int.max }
            if training {
                if needsGrad[j] && nodes[j].op?.backwardReadsOutput == true { end = max(end, backwardTime(j)) }
                for c in consumers[j] where needsGrad[c] && nodes[c].op!.backwardReadsInputs {
                    end = max(end, backwardTime(c))
                }
            }
            let root = valueRoot[j]
            if root == j {
                valueTensor[j] = tensors.count
                tensors.append(PlannedTensor(floats: maxBatch * nodes[j].shape.count, start: j, end: end))
            } else {
                valueTensor[j] = valueTensor[root]
                tensors[valueTensor[root]].end = max(tensors[valueTensor[root]].end, end)
            }
        }
        var gradTensor = [Int](repeating: -1, count: count)
        zeroGradsBefore = [[Int]](repeating: [], count: count)
        if training && endsWithSoftmax {
            for j in 0..<last where needsGrad[j] {
                let firstWriter = consumers[j].max() ?? j
                zeroGradsBefore[firstWriter].append(j)
                gradTensor[j] = tensors.count
                tensors.append(PlannedTensor(floats: maxBatch * nodes[j].shape.count, start: backwardTime(firstWriter),
                                             end: j == 0 ? Int.max : backwardTime(j)))
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
        let plan = planArena(tensors, reuse: reuseBuffers)
        let arena = allocateFloats(plan.totalFloats)
        self.arena = arena
        values = (0..<count).map { arena + plan.offsets[valueTensor[$0]] }
        grads = (0..<count).map { gradTensor[$0] < 0 ? nil : arena + plan.offsets[gradTensor[$0]] }
        let saved = (0..<count).map { savedTensor[$0] < 0 ? nil : arena + plan.offsets[savedTensor[$0]] }

        let columnFloats = largestColumnChunkFloats()
        let columns = allocateFloats(columnFloats)
        columnScratch = columns
        let nodeParameters = allocateParameters(parameterSpecs)
        let nodeBuffers = allocateBuffers(bufferSpecs)

        // Kernels.
        kernels = [EngineKernel?](repeating: nil, count: count)
        for j in 1..<count {
            let node = nodes[j]
            let storage = NodeStorage(
                inputs: node.inputs.map { values[$0] }, inputShapes: node.inputs.map { nodes[$0].shape },
                inputGrads: node.inputs.map { grads[$0] }, output: values[j], outputShape: node.shape,
                outputGrad: grads[j], parameters: nodeParameters[j].map(\.value),
                parameterGrads: nodeParameters[j].map(\.grad), buffers: nodeBuffers[j].map(\.value),
                saved: saved[j], columnScratch: columns, columnScratchFloats: columnFloats, maxBatch: maxBatch)
            kernels[j] = makeKernel(node.op!, index: j, storage: storage)
        }
        // A ReLU running in place on a convolution's output: the convolution stores max(·, 0)
        // (its output is read by nothing else, and its backward does not read it).
        for j in 1..<count where nodes[j].op == .relu && valueRoot[j] != j {
            if let relu = kernels[j] as? ReLUKernel, let conv = kernels[nodes[j].inputs[0]] as? ConvKernel,
               relu.input == relu.output, conv.output == relu.input {
                conv.fusedReLU = true
                relu.fused = true
            }
        }
        softmaxKernel = endsWithSoftmax ? (kernels[last] as! SoftmaxKernel) : nil

        let unplanned = tensors.reduce(0) { $0 + ($1.floats + 15) / 16 * 16 }
        memoryPlan = EngineMemoryPlan(
            activationBytes: 4 * plan.totalFloats,
            scratchBytes: 4 * columnFloats + kernels.reduce(0) { $0 + ($1?.ownedScratchBytes ?? 0) },
            parameterBytes: 4 * parameterCount, gradientBytes: 4 * parameterCount, bufferBytes: 4 * bufferCount,
            unplannedActivationBytes: 4 * unplanned)
    }

    /// Floats of the shared im2col scratch: the largest chunk any convolution uses.
    private func largestColumnChunkFloats() -> Int {
        var columnFloats = 0
        for node in nodes {
            guard case let .conv(k, s, p, _, _)? = node.op, !(k == 1 && s == 1 && p == 0) else { continue }
            let x = nodes[node.inputs[0]].shape
            columnFloats = max(columnFloats, ConvKernel.columnFloatsPerSample(kernel: k, input: x, output: node.shape)
                * ConvKernel.samplesPerChunk(kernel: k, input: x, output: node.shape, maxBatch: maxBatch))
        }
        return columnFloats
    }

    /// Allocates the contiguous value and gradient blocks and initialises every parameter, in
    /// node order, from one generator seeded with `seed`. Returns each node's parameters.
    private func allocateParameters(_ specs: [[ParameterSpec]]) -> [[EngineParameter]] {
        parameterCount = specs.joined().reduce(0) { $0 + $1.count }
        let storage = allocateFloats(2 * parameterCount)
        parameterStorage = storage
        let gradStorage = storage + parameterCount
        var random = EngineRandom(seed: seed)
        var nodeParameters = [[EngineParameter]](repeating: [], count: nodes.count)
        var offset = 0
        for (j, nodeSpecs) in specs.enumerated() {
            for spec in nodeSpecs {
                let value = storage + offset
                switch spec.initializer {
                case let .normal(std): for i in 0..<spec.count { value[i] = Float(random.normal() * std) }
                case let .constant(c): value.update(repeating: c, count: spec.count)
                }
                nodeParameters[j].append(EngineParameter(name: "\(nodes[j].name).\(spec.suffix)", shape: spec.shape,
                                                         count: spec.count, offset: offset, value: value,
                                                         grad: gradStorage + offset))
                offset += spec.count
            }
        }
        parameters = Array(nodeParameters.joined())
        return nodeParameters
    }

    /// Allocates the buffer block (BN running statistics) and sets initial values.
    private func allocateBuffers(_ specs: [[ParameterSpec]]) -> [[EngineBuffer]] {
        bufferCount = specs.joined().reduce(0) { $0 + $1.count }
        let storage = allocateFloats(bufferCount)
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
        buffers = Array(nodeBuffers.joined())
        return nodeBuffers
    }

    private func makeKernel(_ op: EngineOp, index: Int, storage: NodeStorage) -> EngineKernel {
        switch op {
        case let .conv(k, s, p, _, _): return ConvKernel(kernel: k, stride: s, pad: p, storage: storage)
        case let .maxPool(k, s, p, _): return MaxPoolKernel(kernel: k, stride: s, pad: p, storage: storage)
        case let .avgPool(k, s, p, _): return AvgPoolKernel(kernel: k, stride: s, pad: p, storage: storage)
        case .globalAvgPool: return GlobalAvgPoolKernel(storage: storage)
        case .relu, .leakyRelu:
            let slope: Float
            if case let .leakyRelu(s) = op { slope = s } else { slope = 0 }
            return ReLUKernel(slope: slope, signFromOutput: op.backwardReadsOutput, storage: storage)
        case let .batchNorm(eps, momentum): return BatchNormKernel(eps: eps, momentum: momentum, storage: storage)
        case let .dropout(p):
            return DropoutKernel(probability: p, nodeIndex: index, randomState: randomState, storage: storage)
        case .concat: return ConcatKernel(storage: storage)
        case .add: return AddKernel(storage: storage)
        case .linear: return LinearKernel(storage: storage)
        case .softmax: return SoftmaxKernel(storage: storage)
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

    /// The contiguous block of all parameter values (`parameterCount` floats).
    public var parameterValues: UnsafeMutablePointer<Float> {
        require(isCompiled, "compile() the graph first")
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

    /// Runs the graph on `batch` NHWC samples; returns the last node's output (probabilities for
    /// softmax), valid until the next call. `training` uses batch statistics and dropout.
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
        return UnsafePointer(values[nodes.count - 1])
    }

    /// Mean softmax cross-entropy and number of correct predictions of the last forward pass.
    public func loss(labels: UnsafePointer<Int32>, batch: Int) -> (loss: Float, correct: Int) {
        let (loss, correct) = lossInDouble(labels: labels, batch: batch)
        return (Float(loss), correct)
    }

    /// `loss` without rounding the mean to Float (finite-difference checks need the precision).
    func lossInDouble(labels: UnsafePointer<Int32>, batch: Int) -> (loss: Double, correct: Int) {
        guard let softmax = softmaxKernel else { fatalError("the graph does not end in softmax") }
        require(lastForward?.batch == batch, "loss needs the forward pass of the same batch")
        return softmax.lossAndGradient(labels: labels, batch: batch, accumulateGradient: false)
    }

    /// Back-propagates softmax cross-entropy (mean over the batch) of the last training forward
    /// pass: zeroes, then accumulates, all parameter gradients. Returns loss and correct count.
    @discardableResult
    public func backward(labels: UnsafePointer<Int32>, batch: Int) -> (loss: Float, correct: Int) {
        guard let softmax = softmaxKernel else { fatalError("backward needs a graph ending in softmax") }
        require(isCompiledForTraining, "graph was compiled for inference only")
        require(lastForward?.batch == batch && lastForward?.training == true,
                     "backward needs a training forward pass of the same batch")
        parallelZero(parameterGrads, count: parameterCount)
        var result: (loss: Double, correct: Int) = (0, 0)
        for k in stride(from: nodes.count - 1, through: 1, by: -1) {
            for j in zeroGradsBefore[k] { parallelZero(grads[j]!, count: batch * nodes[j].shape.count) }
            if k == nodes.count - 1 {
                result = softmax.lossAndGradient(labels: labels, batch: batch, accumulateGradient: true)
            } else if needsGrad[k] {
                let t0 = profiling ? DispatchTime.now().uptimeNanoseconds : 0
                kernels[k]!.backward(batch: batch)
                if profiling { backwardSeconds[k] += Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9 }
            }
        }
        return (Float(result.loss), result.correct)
    }
}

/// A precondition that survives -Ounchecked (the engine is always built that way): API misuse
/// such as backward without a training forward pass stops with a message instead of computing garbage.
@inline(__always)
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String = "",
             file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { fatalError(message(), file: file, line: line) }
}
