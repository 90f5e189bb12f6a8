import Foundation

// Packed forward weights kept between calls of a graph compiled for inference only.
// weights is the convolution's (K,K,C,OC) parameter; packed is whatever its forward algorithm
// reads (Winograd's transformed U, the direct kernel's 48-wide panels).
// A convolution's forward repacks its weights on every call, because the packed form lives in
// the workspace the graph's convolutions share, and because in training the weights change
// every step. At batch 1 that repacking is a large share of a Winograd layer's time (All-CNN-C
// conv7: 4 tiles of output, 36·192·192 transformed weights). The cache keeps each layer's packed
// weights with a copy of the weights they came from and compares the copy byte for byte on
// every call: any change to the weights (an optimiser step, a loaded checkpoint, a caller
// writing `parameterValues`) repacks, with nothing having to announce it. Results are the
// bits the uncached path computes: the same packing function fills the same buffer layout.

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

    init(weightFloats: Int, packedFloats: Int) throws {
        self.weightFloats = weightFloats
        let l = PackedWeightCache.layout(weightFloats: weightFloats, packedFloats: packedFloats)
        block = try MemoryBlock(l.layout)
        source = block.floats(at: l.source)
        packed = block.floats(at: l.packed)
    }

    /// The packed form of `weights`: the kept one when `weights` equals the copy byte for byte,
    /// otherwise `pack(weights, into)` fills it again (and the copy is refreshed).
    func packedWeights(for weights: UnsafePointer<Float>,
                       pack: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> UnsafePointer<Float> {
        if isFilled && memcmp(weights, source, weightFloats * MemoryLayout<Float>.stride) == 0 {
            return UnsafePointer(packed)
        }
        pack(weights, packed)
        source.update(from: weights, count: weightFloats)
        isFilled = true
        packCount += 1
        return UnsafePointer(packed)
    }
}
