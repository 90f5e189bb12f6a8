/// One compiled node: runs its operator's forward and backward on storage bound at compile time.
/// Kernels hoist every pointer and size into locals before their loops.
protocol EngineKernel: AnyObject {
    /// Computes the output of the first `batch` samples (saving what backward needs if `training`).
    func forward(batch: Int, training: Bool)
    /// Accumulates (+=) gradients into the input gradients and parameter gradients.
    func backward(batch: Int)
    /// Bytes of small per-kernel scratch (partial sums, per-channel statistics).
    var ownedScratchBytes: Int { get }
    /// The algorithm the kernel chose, if it has a choice (shown by `dsl bench`).
    var algorithm: String? { get }
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
    /// The graph is compiled for inference only: a convolution keeps its packed forward
    /// weights between calls (`PackedWeightCache`).
    var cachesPackedWeights = false
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

extension EngineKernel {
    /// Bytes of small per-kernel scratch (partial sums, per-channel statistics).
    var ownedScratchBytes: Int { 0 }
    /// No choice of algorithm.
    var algorithm: String? { nil }
}
