import XCTest
import DSLIR
@testable import DSLEngine

/// A graph compiled for inference only keeps each convolution's packed forward weights between
/// calls (PackedWeightCache.swift): its outputs are the bits of the uncached path, it repacks
/// exactly when the weights changed, it does not repack when they did not, and it does not even
/// compare them while nobody was handed pointers to write them.
final class PackedWeightCacheTests: WinogradOnSmallMapsTestCase {
    override func tearDown() {
        engineThreadCount = max(1, min(2, ProcessInfoCores.count))
        super.tearDown()
    }

    /// Winograd (3×3 stride 1, ≥ 16 channels, 'same' and 'valid'), direct (3 input channels,
    /// stride 2, 5×5), GEMM (1×1), odd widths and a 1×1 map at the end.
    private let spec = """
        input 13x11x3
        conv 3 1 20
        conv 3 1 17 pad=valid
        conv 3 2 33
        conv 5 1 19
        conv 1 1 24
        conv 3 1 16
        gap
        fc 7
        softmax
        """

    private func engine(training: Bool, batch: Int = 3, seed: UInt64 = 1) throws -> EngineGraph {
        let checked = Frontend.check(text: spec)
        let g = try XCTUnwrap(checked.graph, "\(checked.diagnostics.items)")
        let e = try lower(g, maxBatch: batch, seed: seed).engine
        try e.compile(training: training)
        return e
    }

    private func input(batch: Int, shift: Float = 0) -> [Float] {
        var rng = EngineRandom(seed: 7)
        return (0..<(batch * 13 * 11 * 3)).map { _ in Float(rng.normal()) + shift }
    }

    private func run(_ e: EngineGraph, _ x: [Float], batch: Int) -> [Float] {
        let out = x.withUnsafeBufferPointer { e.forward($0.baseAddress!, batch: batch, training: false) }
        return Array(UnsafeBufferPointer(start: out, count: batch * 7))
    }

    private func caches(_ e: EngineGraph) -> [PackedWeightCache] {
        e.kernels.compactMap { ($0 as? ConvKernel)?.inferenceCache }
    }

    /// Every 3×3 and 5×5 convolution of the inference graph has a cache; the GEMM layer and a
    /// graph compiled for training have none.
    func testWhichConvolutionsCache() throws {
        let inference = try engine(training: false)
        let convs = inference.kernels.compactMap { $0 as? ConvKernel }
        XCTAssertEqual(convs.count, 6)
        XCTAssertEqual(convs.map { $0.inferenceCache != nil }, [true, true, true, true, false, true])
        XCTAssertEqual(convs.map { $0.algorithm ?? "" }.map { $0.hasPrefix("direct") ? "direct" : $0 },
                       ["direct", "winograd", "direct", "direct", "gemm", "winograd"])
        XCTAssertTrue(caches(try engine(training: true)).isEmpty)
    }

    /// The cached graph's outputs equal the training graph's eval outputs bit for bit, on the
    /// first call and on repeated calls, with one and two threads and at batch 1 and 3.
    func testCachedOutputsAreTheUncachedBits() throws {
        for threads in [1, 2] {
            engineThreadCount = threads
            for batch in [1, 3] {
                let cached = try engine(training: false), reference = try engine(training: true)
                let x = input(batch: batch)
                let expected = run(reference, x, batch: batch)
                XCTAssertEqual(run(cached, x, batch: batch), expected, "threads \(threads), batch \(batch), first call")
                XCTAssertEqual(run(cached, x, batch: batch), expected, "threads \(threads), batch \(batch), second call")
                XCTAssertEqual(caches(cached).map(\.packCount), [1, 1, 1, 1, 1], "unchanged weights are not repacked")
            }
        }
    }

    /// Weights written between calls (as an optimiser step or a loaded checkpoint writes them)
    /// are repacked: the output equals a fresh engine's with those weights, not the old one.
    func testChangedWeightsAreRepacked() throws {
        let cached = try engine(training: false), other = try engine(training: false, seed: 2)
        let x = input(batch: 3)
        let before = run(cached, x, batch: 3)
        cached.parameterValues.update(from: other.parameterValues, count: cached.parameterCount)
        let after = run(cached, x, batch: 3)
        XCTAssertNotEqual(after, before)
        XCTAssertEqual(after, run(other, x, batch: 3))
        XCTAssertEqual(caches(cached).map(\.packCount), [2, 2, 2, 2, 2])
        // One changed float in one layer repacks that layer only.
        let convs = cached.kernels.compactMap { $0 as? ConvKernel }
        let weight = try XCTUnwrap(cached.parameters.first { $0.value == convs[2].params.weight })
        weight.value[5] += 0.25
        let nudged = run(cached, x, batch: 3)
        XCTAssertNotEqual(nudged, after)
        XCTAssertEqual(caches(cached).map(\.packCount), [2, 2, 3, 2, 2])
        other.parameterValues.update(from: cached.parameterValues, count: cached.parameterCount)
        XCTAssertEqual(nudged, run(other, x, batch: 3))
    }

    /// Calls between which nobody read `parameters`, `buffers` or `parameterValues` use the
    /// packed weights without comparing them; after such a read every layer compares once
    /// (and, its weights unchanged, does not repack).
    func testUnchangedGenerationDoesNotCompare() throws {
        let cached = try engine(training: false)
        let x = input(batch: 2)
        let first = run(cached, x, batch: 2)
        for _ in 0..<3 { XCTAssertEqual(run(cached, x, batch: 2), first) }
        XCTAssertEqual(caches(cached).map(\.compareCount), [0, 0, 0, 0, 0])
        XCTAssertEqual(caches(cached).map(\.packCount), [1, 1, 1, 1, 1])
        _ = cached.parameters
        XCTAssertEqual(run(cached, x, batch: 2), first)
        XCTAssertEqual(run(cached, x, batch: 2), first)
        XCTAssertEqual(caches(cached).map(\.compareCount), [1, 1, 1, 1, 1])
        XCTAssertEqual(caches(cached).map(\.packCount), [1, 1, 1, 1, 1])
        _ = cached.buffers
        _ = run(cached, x, batch: 2)
        XCTAssertEqual(caches(cached).map(\.compareCount), [2, 2, 2, 2, 2])
    }
}
