/// One compiled node: runs its operator's forward and backward on storage bound at compile time.
/// Kernels hoist every pointer and size into locals before their loops.
protocol EngineKernel: AnyObject {
    /// Computes the output of the first `batch` samples (saving what backward needs if `training`).
    func forward(batch: Int, training: Bool)
    /// Accumulates (+=) gradients into the input gradients and parameter gradients (stores the
    /// input gradients `storeInputGradient` accepted).
    func backward(batch: Int)
    /// Bytes of small per-kernel scratch (partial sums, per-channel statistics).
    var ownedScratchBytes: Int { get }
    /// The algorithm the kernel chose, if it has a choice (shown by `dsl bench`).
    var algorithm: String? { get }
    /// Asked once at compile time when this node is the first, in backward order, to write the
    /// gradient of its input `input` (which it reads once): returns whether every later
    /// backward will store that gradient (all of it) instead of adding to it, so the graph need
    /// not zero it first (`EngineGraph.storesGradients`). Stored values are v + 0, what adding v
    /// to the zeroed gradient gave, bit for bit (−0 becomes +0 either way).
    func storeInputGradient(_ input: Int) -> Bool
}

/// Storage one node's kernel works on, bound once at compile time. A nil gradient pointer means
/// nobody needs that gradient.
struct NodeStorage {
    var inputs: [UnsafeMutablePointer<Float>]
    var inputShapes: [EngineShape]
    var inputGrads: [UnsafeMutablePointer<Float>?]
    var output: UnsafeMutablePointer<Float>
    var outputShape: EngineShape
    var outputGrad: UnsafeMutablePointer<Float>?
    /// Parameter values and gradients in `EngineOp.parameterSpecs` order.
    var parameters: [UnsafeMutablePointer<Float>]
    var parameterGrads: [UnsafeMutablePointer<Float>]
    /// Buffers in `EngineOp.bufferSpecs` order.
    var buffers: [UnsafeMutablePointer<Float>]
    /// Training-only saved tensor (`EngineOp.savedFloatsPerSample` floats per sample), or nil.
    var saved: UnsafeMutablePointer<Float>?
    /// Shared im2col scratch.
    var columnScratch: UnsafeMutablePointer<Float>
    var columnScratchFloats: Int
    var maxBatch: Int
    /// Per-call buffers shared by the graph's convolutions (`ConvPlan.workspace`; they run one
    /// at a time); nil: a convolution allocates its own.
    var workspace: UnsafeMutableRawPointer? = nil
    var workspaceBytes = 0
    /// Set when the graph is compiled for inference only: a convolution then keeps its packed
    /// forward weights (`PackedWeightCache`) and folded batch norm between calls while this
    /// generation stays unchanged.
    var weightGeneration: WeightGeneration? = nil
}

extension NodeStorage {
    /// Memory for a kernel's per-call buffers laid out by `layout`: the graph's shared
    /// `workspace` when it is large enough (the kernels sharing it run one at a time), else a
    /// block of the kernel's own (`own`, which the kernel keeps; tests compile kernels alone).
    func kernelWorkspace(_ layout: MemoryLayout64) throws -> (base: UnsafeMutableRawPointer, own: MemoryBlock?) {
        if let shared = workspace, workspaceBytes >= layout.bytes { return (shared, nil) }
        let block = try MemoryBlock(layout)
        return (block.base, block)
    }
}

/// The tensors of a channel merge (add, concat): several inputs of equal height and width,
/// one output, and each input's channel count.
struct MergeTensors {
    let pixelsPerSample: Int
    let outChannels: Int
    let inputChannels: [Int]
    let inputs: [UnsafeMutablePointer<Float>]
    let inputGrads: [UnsafeMutablePointer<Float>?]
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?

    init(_ s: NodeStorage) {
        pixelsPerSample = s.outputShape.height * s.outputShape.width
        outChannels = s.outputShape.channels
        inputChannels = s.inputShapes.map(\.channels)
        inputs = s.inputs
        inputGrads = s.inputGrads
        output = s.output
        outputGrad = s.outputGrad
    }
}

/// The tensors of a one-input node: its input and output, their shapes, and their gradients
/// (nil when nobody needs them). Kernels copy these pointers into locals before their loops.
struct UnaryTensors {
    let inShape: EngineShape
    let outShape: EngineShape
    let input: UnsafeMutablePointer<Float>
    let inputGrad: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?

    init(_ s: NodeStorage) {
        inShape = s.inputShapes[0]
        outShape = s.outputShape
        input = s.inputs[0]
        inputGrad = s.inputGrads[0]
        output = s.output
        outputGrad = s.outputGrad
    }
}

/// A layer's parameters in `EngineOp.parameterSpecs` order, weight then an optional bias, with
/// their gradients.
struct ParameterTensors {
    let weight: UnsafeMutablePointer<Float>
    let weightGrad: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>?
    let biasGrad: UnsafeMutablePointer<Float>?

    init(_ s: NodeStorage) {
        weight = s.parameters[0]
        weightGrad = s.parameterGrads[0]
        bias = s.parameters.count > 1 ? s.parameters[1] : nil
        biasGrad = s.parameterGrads.count > 1 ? s.parameterGrads[1] : nil
    }
}

extension EngineKernel {
    /// Bytes of small per-kernel scratch (partial sums, per-channel statistics).
    var ownedScratchBytes: Int { 0 }
    /// No choice of algorithm.
    var algorithm: String? { nil }
    /// Accumulates into its input gradients (the graph zeroes them first).
    func storeInputGradient(_ input: Int) -> Bool { false }
}

/// dst[i] += value(i) over `range`, or, when `store`, dst[i] = value(i) + 0 without reading dst:
/// the same bits as adding to a zeroed gradient (see `EngineKernel.storeInputGradient`). Two
/// loops, so the store loop neither reads nor branches.
@inline(__always)
func updateGradient(_ dst: UnsafeMutablePointer<Float>, _ range: Range<Int>, store: Bool, _ value: (Int) -> Float) {
    if store {
        for i in range { dst[i] = value(i) + 0 }
    } else {
        for i in range { dst[i] += value(i) }
    }
}

/// Zero floats a kernel owns: the initial value of accumulators that store a gradient
/// (`EngineKernel.storeInputGradient`) where the accumulating code starts from the gradient's zeros.
final class ZeroFloats {
    let pointer: UnsafePointer<Float>
    init(count: Int) {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        p.initialize(repeating: 0, count: max(count, 1))
        pointer = UnsafePointer(p)
    }
    deinit { UnsafeMutablePointer(mutating: pointer).deallocate() }
}
