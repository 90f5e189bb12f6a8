import XCTest
@testable import DSLEngine

/// im2col/col2im against direct index formulas, the adjoint identity, and thread determinism.
final class Im2colTests: XCTestCase {
    struct Case { var b, h, w, c, k, s, p: Int
        var oh: Int { (h + 2 * p - k) / s + 1 }
        var ow: Int { (w + 2 * p - k) / s + 1 }
    }
    let cases = [Case(b: 2, h: 5, w: 6, c: 3, k: 3, s: 1, p: 1), Case(b: 3, h: 7, w: 7, c: 5, k: 3, s: 2, p: 1),
                 Case(b: 1, h: 4, w: 5, c: 17, k: 1, s: 1, p: 0), Case(b: 2, h: 8, w: 6, c: 2, k: 3, s: 2, p: 0),
                 Case(b: 1, h: 3, w: 3, c: 4, k: 5, s: 1, p: 2), Case(b: 2, h: 6, w: 6, c: 32, k: 3, s: 1, p: 1)]

    func value(_ i: Int) -> Float { Float((i * 7919) % 211) / 211 - 0.5 }

    func testIm2colMatchesDefinition() {
        for t in cases {
            let input = (0..<(t.b * t.h * t.w * t.c)).map(value)
            let kRow = t.k * t.k * t.c
            var col = [Float](repeating: .nan, count: t.b * t.oh * t.ow * kRow)
            im2colNHWC(input: input, batch: t.b, h: t.h, w: t.w, c: t.c, kernel: t.k, stride: t.s,
                       pad: t.p, outH: t.oh, outW: t.ow, col: &col)
            for b in 0..<t.b { for oh in 0..<t.oh { for ow in 0..<t.ow {
                for kh in 0..<t.k { for kw in 0..<t.k { for ci in 0..<t.c {
                    let ih = oh * t.s - t.p + kh, iw = ow * t.s - t.p + kw
                    let expect: Float = (ih >= 0 && ih < t.h && iw >= 0 && iw < t.w)
                        ? input[((b * t.h + ih) * t.w + iw) * t.c + ci] : 0
                    let r = (b * t.oh + oh) * t.ow + ow
                    XCTAssertEqual(col[r * kRow + (kh * t.k + kw) * t.c + ci], expect)
                } } }
            } } }
        }
    }

    func testCol2imIsAdjointAndAccumulates() {
        for t in cases {
            let nIn = t.b * t.h * t.w * t.c
            let nCol = t.b * t.oh * t.ow * t.k * t.k * t.c
            let x = (0..<nIn).map(value)
            let y = (0..<nCol).map { value($0 + 5) }
            var col = [Float](repeating: 0, count: nCol)
            im2colNHWC(input: x, batch: t.b, h: t.h, w: t.w, c: t.c, kernel: t.k, stride: t.s,
                       pad: t.p, outH: t.oh, outW: t.ow, col: &col)
            let base = (0..<nIn).map { value($0 + 11) }
            var grad = base
            col2imNHWC(col: y, batch: t.b, h: t.h, w: t.w, c: t.c, kernel: t.k, stride: t.s,
                       pad: t.p, outH: t.oh, outW: t.ow, inputGradient: &grad)
            // <im2col(x), y> == <x, col2im(y)>
            var lhs = 0.0, rhs = 0.0
            for i in 0..<nCol { lhs += Double(col[i]) * Double(y[i]) }
            for i in 0..<nIn { rhs += Double(x[i]) * Double(grad[i] - base[i]) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-3 * max(1, abs(lhs)))
        }
    }

    func testCol2imDeterministicAcrossThreads() {
        let saved = engineThreadCount
        defer { engineThreadCount = saved }
        let t = Case(b: 4, h: 9, w: 9, c: 8, k: 3, s: 1, p: 1)
        let nCol = t.b * t.oh * t.ow * t.k * t.k * t.c
        let y = (0..<nCol).map(value)
        var results: [[Float]] = []
        for threads in [1, 2] {
            engineThreadCount = threads
            var grad = [Float](repeating: 0, count: t.b * t.h * t.w * t.c)
            col2imNHWC(col: y, batch: t.b, h: t.h, w: t.w, c: t.c, kernel: t.k, stride: t.s,
                       pad: t.p, outH: t.oh, outW: t.ow, inputGradient: &grad)
            results.append(grad)
        }
        XCTAssertEqual(results[0].map(\.bitPattern), results[1].map(\.bitPattern))
    }
}
