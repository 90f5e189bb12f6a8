import XCTest
@testable import DSLEngine

/// The inference max-pool (no argmax kept) makes the scalar definition's choice bit for bit
/// (dst = max(dst, src) in window order: src when src ≥ dst, so of +0 and −0 the later, and a
/// NaN already in dst is kept, one in src skipped), for ragged channel counts, windows that are
/// padded, strided, 1×1 or clipped by ceil mode, and with 1 and 2 threads: the semantics any
/// rewrite must keep. (A separable version — each input row's window maxima kept in a ring,
/// then folded over the window's rows — makes the same choice but measured slower on
/// GoogLeNet's poolings, batch 16, one thread: 31–35 ms against 26–30 ms in three alternated
/// runs; it was dropped.)
final class MaxPoolInferenceTests: XCTestCase {
    override func tearDown() { engineThreadCount = max(1, min(2, ProcessInfoCores.count)) }

    func testInferencePoolMakesTheScalarChoice() {
        let special: [Float] = [0, -Float.zero, .nan, -.infinity, .infinity, 1, -1, 1]
        var state: UInt64 = 0x9E3779B97F4A7C15
        func next() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
        // Windows padded, strided (3 > stride, = stride, < stride: rows no window reads), 1×1,
        // ceil mode (a last window clipped to the input); 5 and 9 rows, one or two samples.
        let windows = [(3, 1, 1, false), (3, 2, 0, false), (3, 2, 0, true), (3, 2, 1, false), (2, 2, 0, false),
                       (1, 1, 0, false), (3, 3, 0, false), (1, 2, 0, false), (2, 1, 0, false)]
        for c in [1, 15, 16, 17, 31, 32, 33, 48, 50, 64, 80] {
            for (k, s, p, ceil) in windows { for (h, w, batch) in [(5, 6, 2), (9, 7, 1)] {
                let inShape = EngineShape(height: h, width: w, channels: c)
                let (oh, ow) = ((h + 2 * p - k + (ceil ? s - 1 : 0)) / s + 1, (w + 2 * p - k + (ceil ? s - 1 : 0)) / s + 1)
                let outShape = EngineShape(height: oh, width: ow, channels: c)
                var x = [Float](repeating: 0, count: batch * inShape.count)
                // Mostly zeros of both signs below a few larger values, so windows whose maximum
                // is a tie of +0 and −0 are common; NaN and infinities in between.
                for i in x.indices { x[i] = next() % 4 == 0 ? special[Int(next() % 8)] : (next() % 2 == 0 ? Float.zero : -Float.zero) }
                // The scalar definition.
                var expected = [Float](repeating: 0, count: batch * outShape.count)
                for b in 0..<batch { for oy in 0..<oh { for ox in 0..<ow { for ch in 0..<c {
                    var m = -Float.infinity
                    for iy in max(0, oy * s - p)..<min(h, oy * s - p + k) {
                        for ix in max(0, ox * s - p)..<min(w, ox * s - p + k) {
                            m = max(m, x[((b * h + iy) * w + ix) * c + ch])
                        }
                    }
                    expected[((b * oh + oy) * ow + ox) * c + ch] = m
                } } } }
                for threads in [1, 2] {
                    engineThreadCount = threads
                    var y = [Float](repeating: 7, count: batch * outShape.count)
                    x.withUnsafeMutableBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in
                            let storage = NodeStorage(inputs: [xp.baseAddress!], inputShapes: [inShape], inputGrads: [nil],
                                                      output: yp.baseAddress!, outputShape: outShape, outputGrad: nil,
                                                      parameters: [], parameterGrads: [], buffers: [], saved: nil,
                                                      columnScratch: xp.baseAddress!, columnScratchFloats: 0, maxBatch: batch)
                            MaxPoolKernel(kernel: k, stride: s, pad: p, storage: storage).forward(batch: batch, training: false)
                        }
                    }
                    XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern),
                                   "c \(c), k \(k) s \(s) p \(p) ceil \(ceil), \(h)×\(w), batch \(batch), \(threads) threads")
                }
            } }
        }
    }
}
