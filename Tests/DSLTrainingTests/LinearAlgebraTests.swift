import Foundation
import XCTest
@testable import DSLTraining

final class LinearAlgebraTests: XCTestCase {
    private func randomFloats(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<count).map { _ in rng.nextUnitFloat() * 2 - 1 }
    }

    func testSgemmMatchesNaiveWithStridesAndEdges() {
        for (m, n, k) in [(1, 1, 1), (13, 37, 300), (97, 65, 7), (6, 32, 256)] {
            let a = randomFloats(m * k, seed: 1), b = randomFloats(k * n, seed: 2)
            var c = randomFloats(m * n, seed: 3)
            let original = c
            // A given transposed in memory: A[i, p] = aT[p * m + i].
            var aT = [Float](repeating: 0, count: m * k)
            for i in 0..<m { for p in 0..<k { aT[p * m + i] = a[i * k + p] } }
            sgemm(m: m, n: n, k: k, a: aT, aRowStride: 1, aColumnStride: m, b: b, ldb: n, c: &c, ldc: n, accumulate: true)
            for i in 0..<m {
                for j in 0..<n {
                    var expected = Double(original[i * n + j])
                    for p in 0..<k { expected += Double(a[i * k + p]) * Double(b[p * n + j]) }
                    XCTAssertEqual(Double(c[i * n + j]), expected, accuracy: 1e-3, "m \(m) n \(n) k \(k) at \(i),\(j)")
                }
            }
        }
    }

    func testSymmetricEigen() throws {
        for n in [1, 2, 3, 5, 60, 300] {
            var rng = SplitMix64(seed: UInt64(n))
            var a = [Double](repeating: 0, count: n * n)
            for i in 0..<n {
                for j in 0...i {
                    let v = Double(rng.nextUnitFloat()) - 0.5
                    a[i * n + j] = v; a[j * n + i] = v
                }
            }
            // Make some eigenvalues repeated-ish and the matrix low-rank-plus-identity-like.
            if n >= 60 { for i in 0..<n { a[i * n + i] += 3 } }
            let original = a
            let (values, vectors) = try symmetricEigen(&a, n: n)
            var worstResidual = 0.0, worstOrthogonality = 0.0
            for e in 0..<n {
                let v = Array(vectors[(e * n)..<(e * n + n)])
                for i in 0..<n {
                    var av = 0.0
                    for j in 0..<n { av += original[i * n + j] * v[j] }
                    worstResidual = max(worstResidual, abs(av - values[e] * v[i]))
                }
                for f in e..<min(n, e + 5) {
                    var dot = 0.0
                    for i in 0..<n { dot += v[i] * vectors[f * n + i] }
                    worstOrthogonality = max(worstOrthogonality, abs(dot - (e == f ? 1 : 0)))
                }
            }
            XCTAssertLessThan(worstResidual, 1e-10, "n \(n)")
            XCTAssertLessThan(worstOrthogonality, 1e-10, "n \(n)")
            let trace = (0..<n).reduce(0.0) { $0 + original[$1 * n + $1] }
            XCTAssertEqual(values.reduce(0, +), trace, accuracy: 1e-9 * Double(n))
        }
        var bad = [Double](repeating: 0, count: 3)
        XCTAssertThrowsError(try symmetricEigen(&bad, n: 2))
    }
}
