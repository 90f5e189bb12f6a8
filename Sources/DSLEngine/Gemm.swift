/// Single-precision matrix multiply, row-major: C = beta·C + op(A)·op(B), where op(A) is m×k
/// and op(B) is k×n (op(X) = Xᵀ when the matching trans flag is set). lda, ldb and ldc are the
/// row strides of A, B and C as stored. Splits work over `engineThreadCount` threads such that
/// every element of C is computed by one thread in a fixed order (results do not depend on the
/// thread count).
public func sgemm(_ transA: Bool, _ transB: Bool, m: Int, n: Int, k: Int,
                  a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                  beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
    // Naive reference implementation; replaced by the packed, register-blocked kernel.
    parallelFor(m) { i in
        for j in 0..<n {
            var s: Float = 0
            for p in 0..<k {
                let av = transA ? a[p * lda + i] : a[i * lda + p]
                let bv = transB ? b[j * ldb + p] : b[p * ldb + j]
                s += av * bv
            }
            c[i * ldc + j] = (beta == 0 ? 0 : beta * c[i * ldc + j]) + s
        }
    }
}
