import XCTest
@testable import DSLEngine

/// The dropout forward's eight-lane hash against the scalar definition, bit for bit.
final class DropoutMaskTests: XCTestCase {
    /// Ranges with every start and end modulo 8 (the SIMD blocks and the scalar tail), seeds
    /// including 0 and all-ones, thresholds from none kept to all kept; mask and output bit for
    /// bit against mix(seed + i·φ) >> 40 ≥ threshold, element by element, and nothing outside
    /// the range written.
    func testEightLanesMatchTheScalarHash() {
        let n = 80
        let x = (0..<n).map { Float($0) * 0.37 - 9.5 }
        var seeds: [UInt64] = [0, .max, 0x1234_5678_9ABC_DEF0]
        var rng = EngineRandom(seed: 11)
        for _ in 0..<5 { seeds.append(rng.next()) }
        var checked = 0
        for seed in seeds {
            for (threshold, scale) in [(UInt64(0), Float(1)), (8_388_608, 2), (13_421_773, 5), (16_777_216, 1.25), (3_355_444, 1.25)] {
                for lo in 0..<9 {
                    for hi in [lo, lo + 1, lo + 7, lo + 8, lo + 9, lo + 16, lo + 23, n - 3, n] where hi >= lo && hi <= n {
                        var y = [Float](repeating: .nan, count: n), mask = [Float](repeating: .nan, count: n)
                        x.withUnsafeBufferPointer { xp in
                            y.withUnsafeMutableBufferPointer { yp in
                                mask.withUnsafeMutableBufferPointer { mp in
                                    dropoutMask(lo..<hi, streamSeed: seed, threshold: threshold, keepScale: scale,
                                                x: xp.baseAddress!, y: yp.baseAddress!, mask: mp.baseAddress!)
                                }
                            }
                        }
                        for i in 0..<n {
                            if i < lo || i >= hi {
                                XCTAssertTrue(y[i].isNaN && mask[i].isNaN, "written outside \(lo)..<\(hi) at \(i)")
                                continue
                            }
                            let bits = EngineRandom.mix(seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15) >> 40
                            let m: Float = bits >= threshold ? scale : 0
                            XCTAssertEqual(mask[i].bitPattern, m.bitPattern, "mask seed \(seed) threshold \(threshold) i \(i)")
                            XCTAssertEqual(y[i].bitPattern, (x[i] * m).bitPattern, "output seed \(seed) i \(i)")
                            checked += 1
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThan(checked, 50_000)
    }
}
