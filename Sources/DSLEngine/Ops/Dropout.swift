// Inverted dropout (training only): out = inp · mask, mask ∈ {0, 1/(1−p)}.
// inp is (B,H,W,C), mask is (B,H,W,C), out is (B,H,W,C)
// The mask is counter-based: element i of this node in training pass t keeps iff
// hash(seed, t, node, i) ≥ p, so it is independent of thread count and chunking.
// Forward saves the mask; eval copies the input unchanged, or in an inference-only graph runs
// in place and does nothing (and `inferenceBackward`, set by
// `EngineGraph.inputGradient`, passes dY unchanged).

/// Dropout kernel; the graph owns the seed and the training-pass counter it reads.
final class DropoutKernel: EngineKernel {
    let count: Int
    let probability: Float
    let nodeIndex: Int
    /// [seed, training-pass counter], owned by the graph.
    let randomState: UnsafeMutablePointer<UInt64>
    let io: UnaryTensors
    let mask: UnsafeMutablePointer<Float>?
    /// Backward of the eval-mode forward, the identity (set by `EngineGraph.inputGradient`).
    var inferenceBackward = false

    init(probability: Float, nodeIndex: Int, randomState: UnsafeMutablePointer<UInt64>, storage s: NodeStorage) {
        count = s.outputShape.count
        self.probability = probability
        self.nodeIndex = nodeIndex
        self.randomState = randomState
        io = UnaryTensors(s)
        mask = s.saved
    }

    func forward(batch: Int, training: Bool) {
        let total = batch * count
        let (x, y) = (UnsafePointer(io.input), io.output)
        guard training, let mask = mask else {
            // In place (an inference-only graph) there is nothing to do.
            if x != UnsafePointer(y) { y.update(from: x, count: total) }
            return
        }
        let keepScale = 1 / (1 - probability)
        // Keep iff the top 24 bits, as a fraction of 2^24, are ≥ p.
        let threshold = UInt64((Double(probability) * 16_777_216).rounded(.up))
        // One stream per (seed, training pass, node); element i hashes stream + i·φ.
        let (seed, pass) = (randomState[0], randomState[1])
        let streamSeed = EngineRandom.mix(seed ^ EngineRandom.mix(pass &* 0x1_0000_0001 &+ UInt64(nodeIndex)))
        let chunks = elementwiseChunks(total)
        parallelFor(chunks) { chunk in
            dropoutMask(chunkRange(chunk, of: chunks, count: total), streamSeed: streamSeed, threshold: threshold,
                        keepScale: keepScale, x: x, y: y, mask: mask)
        }
    }

    /// Backward stores the input gradient (`storeInputGradient`).
    var storesInputGradient = false
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient = true; return true }

    func backward(batch: Int) {
        if inferenceBackward {
            guard let dIn = io.inputGrad, let dOut = io.outputGrad else { return }
            let (total, store) = (batch * count, storesInputGradient)
            let chunks = elementwiseChunks(total)
            parallelFor(chunks) { chunk in
                updateGradient(dIn, chunkRange(chunk, of: chunks, count: total), store: store) { i in dOut[i] }
            }
            return
        }
        guard let dIn = io.inputGrad, let dOut = io.outputGrad, let mask = mask else { return }
        let (total, store) = (batch * count, storesInputGradient)
        let chunks = elementwiseChunks(total)
        parallelFor(chunks) { chunk in
            updateGradient(dIn, chunkRange(chunk, of: chunks, count: total), store: store) { i in dOut[i] * mask[i] }
        }
    }
}


/// Elements `range` of a dropout's forward: element i keeps iff the top 24 bits of
/// mix(streamSeed + i·φ) (SplitMix64, `EngineRandom.mix`) are ≥ `threshold`; mask[i] is
/// `keepScale` or 0 and y[i] = x[i]·mask[i]. Eight elements at a time in 64-bit SIMD lanes (the
/// hash's multiplies are `vpmullq` with AVX-512), the rest one by one: the same bits as the
/// scalar loop (DropoutMaskTests). All-CNN-C at batch 64 (`dsl bench`, three runs each,
/// alternated): its 1.6 M-element dropout 3.8-3.9 → 1.3-1.5 ms, its three 6.2 → 2.3 ms per step.
@inline(__always)
func dropoutMask(_ range: Range<Int>, streamSeed: UInt64, threshold: UInt64, keepScale: Float,
                 x: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>, mask: UnsafeMutablePointer<Float>) {
    typealias U = SIMD8<UInt64>
    let phi: UInt64 = 0x9E37_79B9_7F4A_7C15
    var i = range.lowerBound
    let lanes = U(0, 1, 2, 3, 4, 5, 6, 7)
    let seed = U(repeating: streamSeed), step = U(repeating: phi)
    let limit = U(repeating: threshold), scale = SIMD8<Float>(repeating: keepScale)
    while i + 8 <= range.upperBound {
        // mix(v) = finalize(v + φ), v = streamSeed + i·φ, lane by lane.
        var z = seed &+ (U(repeating: UInt64(i)) &+ lanes) &* step &+ step
        z = (z ^ (z &>> 30)) &* U(repeating: 0xBF58_476D_1CE4_E5B9)
        z = (z ^ (z &>> 27)) &* U(repeating: 0x94D0_49BB_1331_11EB)
        z = z ^ (z &>> 31)
        let keep = U(repeating: 0).replacing(with: 1, where: (z &>> 40) .>= limit)
        let m = SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: keep)) * scale
        UnsafeMutableRawPointer(mask + i).storeBytes(of: m, as: SIMD8<Float>.self)
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: v * m, as: SIMD8<Float>.self)
        i += 8
    }
    while i < range.upperBound {
        let bits = EngineRandom.mix(streamSeed &+ UInt64(i) &* phi) >> 40
        let m: Float = bits >= threshold ? keepScale : 0
        mask[i] = m
        y[i] = x[i] * m
        i += 1
    }
}
