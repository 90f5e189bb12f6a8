import Foundation

// Packed forward weights kept between calls of a graph compiled for inference only.
// weights is the convolution's (K,K,C,OC) parameter; packed is whatever its forward algorithm
// reads (Winograd's transformed U, the direct kernel's 48-wide panels).
// A convolution's forward repacks its weights on every call, because the packed form lives in
// the workspace the graph's convolutions share, and because in training the weights change
// every step. At batch 1 that repacking is a large share of a Winograd layer's time (All-CNN-C
// conv7: 4 tiles of output, 36·192·192 transformed weights). The cache keeps each layer's packed
// weights with a copy of the weights they came from.
//
// When is the copy stale? The graph hands out pointers to its parameters and buffers only
// through `EngineGraph.parameters`, `buffers` and `parameterValues`, and each of those reads
// advances the graph's `WeightGeneration`. While the generation is the one the cache was filled
// at, nobody was given a pointer to write with since, and the packed weights are used as they
// are: no pass over the weights at all. (Comparing the copy byte for byte on every call, as this
// cache first did, read twice the weights per call: GoogLeNet's 3.6 M cached weights, ~29 MB at
// ~10 GB/s, ~2.8 ms of a 25-28 ms batch-1 inference.) When the generation moved, the copy is
// compared byte for byte and only a layer whose weights differ is repacked (an optimiser step,
// a loaded checkpoint, a caller writing `parameterValues`). The contract this asks of a caller:
// write through pointers read after the graph's last `forward`, not through ones kept from
// before it. Debug builds (the test suite) check it: a cache used unchanged compares the copy
// anyway and stops with a message if the weights differ. Results are the bits the uncached path
// computes: the same packing function fills the same buffer layout.

/// Counts the times a graph handed out pointers through which its parameters or buffers may be
/// written (see the top of the file).
final class WeightGeneration {
    private(set) var value: UInt64 = 0
    func advance() { value &+= 1 }
    /// What a debug build says when kept weights no longer match the parameters.
    static let staleMessage = "a convolution's weights or batch norm statistics changed through a pointer read before "
        + "the graph's last forward; read EngineGraph.parameters, buffers or parameterValues again to write them"
}

/// One convolution's packed forward weights and the weights they were packed from.
final class PackedWeightCache {
    /// Floats of the weights compared on each call.
    let weightFloats: Int
    /// The copy of the weights `packed` was made from.
    let source: UnsafeMutablePointer<Float>
    /// The packed weights.
    let packed: UnsafeMutablePointer<Float>
    /// Whether `packed` holds the packing of `source` (false until the first call).
    private(set) var isFilled = false
    /// Times the weights were packed (tests check that an unchanged call does not repack).
    private(set) var packCount = 0
    /// Times the copy was compared with the weights (tests check that a call with the
    /// generation unchanged does not compare in release builds).
    private(set) var compareCount = 0
    /// The graph's generation, and its value when `packed` was last known to match the weights.
    let generation: WeightGeneration
    private var checkedGeneration: UInt64 = 0
    let block: MemoryBlock

    static func layout(weightFloats: Int, packedFloats: Int) -> (layout: MemoryLayout64, source: Int, packed: Int) {
        var l = MemoryLayout64()
        let source = l.floats(weightFloats), packed = l.floats(packedFloats)
        return (l, source, packed)
    }

    /// Bytes `init` allocates (the memory plan counts them before compiling).
    static func bytes(weightFloats: Int, packedFloats: Int) -> Int {
        allocatedBytes(layout(weightFloats: weightFloats, packedFloats: packedFloats).layout.bytes)
    }

    init(weightFloats: Int, packedFloats: Int, generation: WeightGeneration) throws {
        self.weightFloats = weightFloats
        self.generation = generation
        let l = PackedWeightCache.layout(weightFloats: weightFloats, packedFloats: packedFloats)
        block = try MemoryBlock(l.layout)
        source = block.floats(at: l.source)
        packed = block.floats(at: l.packed)
    }

    /// The packed form of `weights`: the kept one when the graph's generation is unchanged since
    /// it was filled or checked, or when `weights` equals the copy byte for byte; otherwise
    /// `pack(weights, into)` fills it again (and the copy is refreshed).
    func packedWeights(for weights: UnsafePointer<Float>,
                       pack: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> UnsafePointer<Float> {
        if isFilled && checkedGeneration == generation.value {
            #if DEBUG
            require(memcmp(weights, source, weightFloats * MemoryLayout<Float>.stride) == 0,
                    WeightGeneration.staleMessage)
            #endif
            return UnsafePointer(packed)
        }
        checkedGeneration = generation.value
        if isFilled {
            compareCount += 1
            if memcmp(weights, source, weightFloats * MemoryLayout<Float>.stride) == 0 { return UnsafePointer(packed) }
        }
        pack(weights, packed)
        source.update(from: weights, count: weightFloats)
        isFilled = true
        packCount += 1
        return UnsafePointer(packed)
    }
}
