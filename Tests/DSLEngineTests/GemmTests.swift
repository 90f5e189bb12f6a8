import XCTest
@testable import DSLEngine

/// sgemm against a double-accumulating reference, thread-count determinism, parallelFor coverage.
final class GemmTests: XCTestCase {
    /// Deterministic pseudo-random floats in [-1, 1).
    struct Rng {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
    }

    /// sgemm on arrays.
    func runSGEMM(_ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int, a: [Float], lda: Int, b: [Float], ldb: Int,
                  beta: Float, c: inout [Float], ldc: Int) {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    sgemm(transA, transB, m: m, n: n, k: k, a: pa.baseAddress!, lda: lda,
                          b: pb.baseAddress!, ldb: ldb, beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
            }
        }
    }

    /// Runs one sgemm case (with padded leading dimensions) and checks it against a reference.
    func check(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, beta: Float,
               ldaPad: Int = 3, rng: inout Rng, file: StaticString = #filePath, line: UInt = #line) {
        let lda = (transA ? m : k) + ldaPad
        let ldb = (transB ? k : n) + 1
        let ldc = n + 2
        let aRows = transA ? k : m, bRows = transB ? n : k
        var a = [Float](repeating: 0, count: max(1, aRows * lda))
        var b = [Float](repeating: 0, count: max(1, bRows * ldb))
        var c = [Float](repeating: 0, count: max(1, m * ldc))
        for i in a.indices { a[i] = rng.next() }
        for i in b.indices { b[i] = rng.next() }
        for i in c.indices { c[i] = rng.next() }
        let c0 = c
        runSGEMM(transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc)
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0, mag = 0.0
                for p in 0..<k {
                    let av = Double(transA ? a[p * lda + i] : a[i * lda + p])
                    let bv = Double(transB ? b[j * ldb + p] : b[p * ldb + j])
                    s += av * bv
                    mag += abs(av * bv)
                }
                let ref = (beta == 0 ? 0 : Double(beta) * Double(c0[i * ldc + j])) + s
                let err = abs(Double(c[i * ldc + j]) - ref) / (mag + 1)
                worst = max(worst, err)
            }
            // Padding between rows must be untouched.
            for j in n..<ldc where i * ldc + j < c.count {
                XCTAssertEqual(c[i * ldc + j], c0[i * ldc + j], "padding overwritten", file: file, line: line)
            }
        }
        XCTAssertLessThan(worst, 1e-5, "m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB) beta=\(beta)",
                          file: file, line: line)
    }

    /// Every element of C is one chain acc = fma(a, b, acc) over k in order, from 0, C or beta·C
    /// (Gemm.swift), whatever register tile computes it: 17-32 columns on the 12×32 tile, a
    /// ragged right edge past whole 48-column panels (17-47 columns on the 8×48 kernel with zero
    /// columns past n, 1-16 on the 8×16 one), the ragged bottom rows, several k blocks. Bit for
    /// bit against that scalar chain.
    func testEveryElementIsOneFMAChainInKOrder() {
        var rng = Rng(state: 77)
        checkChains([(13, 17, 5), (8, 24, 300), (9, 31, 7), (16, 32, 64), (5, 33, 3), (8, 40, 1100), (11, 47, 9),
                     (8, 48, 20), (3, 49, 2), (10, 70, 33), (7, 16, 40), (12, 1, 9), (8, 15, 2500)], rng: &rng)
    }

    /// The 6×64 tile (n a multiple of 64 and not of 48) and the 12×32 one (17-32 columns): the
    /// same chains, with ragged bottom panels, several k blocks, A and B read in place or packed
    /// (transposed A with a 1 KiB row stride is packed in MC blocks of 6- or 12-row panels; few
    /// rows read B in place), 1 and 2 threads (rows split in multiples of MR, or columns in
    /// NR-wide panels). Then every shape forced onto each tile (ragged right edges of 1 to NR − 1
    /// columns): the tile never changes a bit.
    func testEveryTileGivesTheSameChains() {
        XCTAssertEqual(GemmTile.for(n: 64), .tile6x64)
        XCTAssertEqual(GemmTile.for(n: 320), .tile6x64)
        XCTAssertEqual(GemmTile.for(n: 192), .tile8x48)
        XCTAssertEqual(GemmTile.for(n: 96), .tile8x48)
        XCTAssertEqual(GemmTile.for(n: 16), .tile8x48)
        XCTAssertEqual(GemmTile.for(n: 17), .tile12x32)
        XCTAssertEqual(GemmTile.for(n: 24), .tile12x32)
        XCTAssertEqual(GemmTile.for(n: 32), .tile12x32)
        var rng = Rng(state: 64)
        let wide = [(13, 64, 5), (6, 64, 300), (7, 128, 1100), (12, 64, 64), (5, 256, 3), (1, 64, 9),
                    (71, 64, 33), (200, 128, 40), (11, 320, 2100), (260, 64, 12)]
        let narrow = [(13, 24, 5), (12, 32, 300), (25, 17, 1100), (11, 24, 64), (1, 32, 9), (71, 24, 33),
                      (200, 32, 40), (23, 30, 2100), (290, 24, 12)]
        let saved = engineThreadCount
        defer { engineThreadCount = saved; GemmTile.override = nil }
        for t in [1, 2] {
            engineThreadCount = t
            checkChains(wide + narrow, rng: &rng)
            // Transposed A with a row stride of 256 floats (packed in MC blocks).
            checkChains([(256, 64, 70), (250, 128, 30), (256, 24, 70), (250, 32, 30)], lda: 256, rng: &rng)
        }
        let others = [(13, 17, 5), (9, 31, 7), (16, 32, 64), (5, 33, 3), (8, 40, 1100), (11, 47, 9),
                      (3, 49, 2), (10, 70, 33), (7, 16, 40), (12, 1, 9), (6, 100, 20), (14, 96, 50)]
        for tile in [GemmTile.tile8x48, .tile6x64, .tile12x32] {
            GemmTile.override = tile
            checkChains(others + wide.prefix(4) + narrow.prefix(4), rng: &rng)
        }
    }

    /// One row of C with B untransposed streams B row by row (Gemm.swift, `gemmRow`): the same
    /// chains, with column counts around the 16-lane vectors, k around the four-row step, A
    /// transposed with a row stride, B of more than 256 KiB (two threads take column halves).
    func testOneRowStreamsTheSameChains() {
        var rng = Rng(state: 91)
        let shapes = [(1, 1, 1), (1, 15, 3), (1, 16, 4), (1, 17, 5), (1, 33, 7), (1, 100, 8), (1, 1000, 1024),
                      (1, 1001, 70), (1, 47, 2100), (1, 2048, 33)]
        let saved = engineThreadCount
        defer { engineThreadCount = saved }
        for t in [1, 2] {
            engineThreadCount = t
            checkChains(shapes, rng: &rng)
            checkChains([(1, 64, 9), (1, 300, 260)], lda: 37, rng: &rng)
        }
    }

    /// Runs sgemm on each (m, n, k) in the four transpose combinations and three betas and
    /// checks every element bit for bit against the scalar FMA chain in k order. `lda` (when
    /// given, ≥ the operand's width) is the row stride of A as stored.
    func checkChains(_ shapes: [(Int, Int, Int)], lda ldaGiven: Int? = nil, rng: inout Rng,
                     file: StaticString = #filePath, line: UInt = #line) {
        for (m, n, k) in shapes {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                for beta: Float in [0, 1, 0.5] {
                    let lda = max(ldaGiven ?? 0, transA ? m : k), ldb = transB ? k : n
                    let a = (0..<((transA ? k : m) * lda)).map { _ in rng.next() }
                    let b = (0..<(k * n)).map { _ in rng.next() }
                    var c = (0..<(m * n)).map { _ in rng.next() }
                    let c0 = c
                    runSGEMM(transA, transB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: &c, ldc: n)
                    var mismatches = 0
                    for i in 0..<m {
                        for j in 0..<n {
                            var acc: Float = beta == 0 ? 0 : (beta == 1 ? c0[i * n + j] : beta * c0[i * n + j])
                            for p in 0..<k {
                                acc = acc.addingProduct(transA ? a[p * lda + i] : a[i * lda + p],
                                                        transB ? b[j * ldb + p] : b[p * ldb + j])
                            }
                            if acc.bitPattern != c[i * n + j].bitPattern { mismatches += 1 }
                        }
                    }
                    XCTAssertEqual(mismatches, 0, "m=\(m) n=\(n) k=\(k) tA=\(transA) tB=\(transB) beta=\(beta) lda=\(lda)",
                                   file: file, line: line)
                }
            }
        }
    }

    func testEdgeSizesAllTransposes() {
        var rng = Rng(state: 1)
        let sizes = [1, 7, 8, 15, 17, 47, 48, 49, 63, 65, 97, 200]
        var count = 0
        for (idx, m) in sizes.enumerated() {
            for (jdx, n) in sizes.enumerated() {
                // k varies with the pair so that all edge sizes appear without a cubic sweep.
                let k = sizes[(idx * 5 + jdx * 7) % sizes.count]
                let ta = (idx + jdx) % 2 == 1, tb = (idx / 2 + jdx) % 2 == 1
                let beta: Float = [0, 1, 0.5][(idx + 2 * jdx) % 3]
                check(m: m, n: n, k: k, transA: ta, transB: tb, beta: beta, rng: &rng)
                count += 1
            }
        }
        XCTAssertEqual(count, sizes.count * sizes.count)
    }

    func testAllTransposeAndBetaCombos() {
        var rng = Rng(state: 2)
        for ta in [false, true] {
            for tb in [false, true] {
                for beta: Float in [0, 1, 0.5] {
                    check(m: 37, n: 101, k: 53, transA: ta, transB: tb, beta: beta, rng: &rng)
                    check(m: 1, n: 49, k: 1, transA: ta, transB: tb, beta: beta, rng: &rng)
                    check(m: 65, n: 1, k: 17, transA: ta, transB: tb, beta: beta, rng: &rng)
                    // Right edges of exactly 16 and 32 columns, with and without a ragged bottom edge.
                    check(m: 40, n: 64, k: 29, transA: ta, transB: tb, beta: beta, rng: &rng)
                    check(m: 43, n: 80, k: 33, transA: ta, transB: tb, beta: beta, rng: &rng)
                    check(m: 24, n: 16, k: 70, transA: ta, transB: tb, beta: beta, rng: &rng)
                }
            }
        }
    }

    /// k larger than one k block (several accumulation passes) and n larger than one column block.
    func testMultipleBlocks() {
        var rng = Rng(state: 3)
        check(m: 19, n: 530, k: 2100, transA: false, transB: false, beta: 1, rng: &rng)
        check(m: 203, n: 50, k: 2100, transA: true, transB: false, beta: 0.5, rng: &rng)
        check(m: 40, n: 97, k: 1000, transA: true, transB: true, beta: 0.5, rng: &rng)
        check(m: 70, n: 20, k: 390, transA: true, transB: false, beta: 0, rng: &rng)
        // Transposed A with a 1 KiB row stride takes the packed-A path (MC blocks, ragged end).
        check(m: 253, n: 50, k: 300, transA: true, transB: false, beta: 1, ldaPad: 3, rng: &rng)
        check(m: 1100, n: 9, k: 2100, transA: true, transB: true, beta: 0, ldaPad: 180, rng: &rng)
    }

    /// beta = 0 overwrites C without reading it (NaN in C must not leak into the result).
    func testBetaZeroIgnoresNaN() {
        for (m, n) in [(16, 96), (13, 50)] {
            let k = 20
            let a = [Float](repeating: 1, count: m * k), b = [Float](repeating: 0.5, count: k * n)
            var c = [Float](repeating: .nan, count: m * n)
            sgemm(false, false, m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, beta: 0, c: &c, ldc: n)
            XCTAssertEqual(c, [Float](repeating: 10, count: m * n))
        }
    }

    func testKZeroScalesC() {
        var c: [Float] = [1, 2, 3, 4]
        let a: [Float] = [0], b: [Float] = [0]
        sgemm(false, false, m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, beta: 0.5, c: &c, ldc: 2)
        XCTAssertEqual(c, [0.5, 1, 1.5, 2])
        sgemm(false, false, m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, beta: 0, c: &c, ldc: 2)
        XCTAssertEqual(c, [0, 0, 0, 0])
    }

    /// Results must be bit-identical with 1 and 2 threads (and across split strategies).
    func testThreadCountDeterminism() {
        var rng = Rng(state: 4)
        let saved = engineThreadCount
        defer { engineThreadCount = saved }
        for (m, n, k, ta, tb) in [(300, 96, 500, false, false), (24, 400, 300, false, true),
                                  (203, 150, 777, true, false), (129, 61, 64, true, true),
                                  (301, 128, 500, false, false), (20, 256, 300, true, false)] {
            let lda = ta ? m : k, ldb = tb ? k : n
            let a = (0..<(m * k)).map { _ in rng.next() }
            let b = (0..<(k * n)).map { _ in rng.next() }
            let c0 = (0..<(m * n)).map { _ in rng.next() }
            var results: [[Float]] = []
            for t in [1, 2, 3] {
                engineThreadCount = t
                var c = c0
                sgemm(ta, tb, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                      beta: 0.5, c: &c, ldc: n)
                results.append(c)
            }
            XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern))
            XCTAssertEqual(results[0].map(\.bitPattern), results[2].map(\.bitPattern))
        }
    }

    func testParallelForCoversEveryChunkOnce() {
        let saved = engineThreadCount
        defer { engineThreadCount = saved }
        for t in [1, 2, 4] {
            engineThreadCount = t
            for chunks in [0, 1, 2, 3, 17, 1000] {
                let counts = UnsafeMutablePointer<Int>.allocate(capacity: max(1, chunks))
                counts.initialize(repeating: 0, count: max(1, chunks))
                parallelFor(chunks) { counts[$0] += 1 }
                for i in 0..<chunks { XCTAssertEqual(counts[i], 1, "chunk \(i) of \(chunks), \(t) threads") }
                counts.deallocate()
            }
        }
    }

    func testNestedParallelFor() {
        let saved = engineThreadCount
        defer { engineThreadCount = saved }
        engineThreadCount = 2
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        counts.initialize(repeating: 0, count: 64)
        parallelFor(8) { i in
            parallelFor(8) { j in counts[i * 8 + j] += 1 }
        }
        for i in 0..<64 { XCTAssertEqual(counts[i], 1) }
        counts.deallocate()
    }

    /// Two threads driving parallelFor at once (one gets the pool, the other runs serially),
    /// plus sgemm called from inside a parallelFor body.
    func testConcurrentAndNestedCallers() {
        let saved = engineThreadCount
        defer { engineThreadCount = saved }
        engineThreadCount = 2
        let n = 4000
        let counts = UnsafeMutablePointer<Int>.allocate(capacity: 2 * n)
        counts.initialize(repeating: 0, count: 2 * n)
        defer { counts.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 2) { caller in
            for _ in 0..<20 {
                parallelFor(n) { i in counts[caller * n + i] += 1 }
            }
        }
        for i in 0..<(2 * n) { XCTAssertEqual(counts[i], 20) }

        var rng = Rng(state: 9)
        let m = 200, k = 120, nn = 100  // large enough for sgemm to use parallelFor itself
        let a = (0..<(m * k)).map { _ in rng.next() }
        let b = (0..<(k * nn)).map { _ in rng.next() }
        var expected = [Float](repeating: 0, count: m * nn)
        sgemm(false, false, m: m, n: nn, k: k, a: a, lda: k, b: b, ldb: nn, beta: 0, c: &expected, ldc: nn)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 4 * m * nn)
        defer { out.deallocate() }
        parallelFor(4) { t in
            sgemm(false, false, m: m, n: nn, k: k, a: a, lda: k, b: b, ldb: nn, beta: 0,
                  c: out + t * m * nn, ldc: nn)
        }
        for t in 0..<4 {
            for i in 0..<(m * nn) { XCTAssertEqual(out[t * m * nn + i].bitPattern, expected[i].bitPattern) }
        }
    }

    func testPeakIsPositive() {
        let p = machinePeakGFLOPS(threads: 2)
        XCTAssertGreaterThan(p, 0)
    }
}
