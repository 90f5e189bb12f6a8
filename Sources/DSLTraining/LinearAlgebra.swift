import Dispatch
import Foundation

// Dense linear algebra needed by ZCA whitening: a blocked, packed single-precision matrix product
// and a symmetric eigendecomposition (Householder tridiagonalisation + implicit QL), both
// self-contained (this library must not depend on the engine's kernels).

/// Worker threads for the training library's heavy loops (ZCA fitting and whitening); defaults
/// to the machine's core count, and the command line may lower it (`--threads`).
public nonisolated(unsafe) var trainingThreadCount: Int = max(1, ProcessInfo.processInfo.activeProcessorCount)

/// Whether to print the eigensolver's phase timings to stderr (set DSL_EIGEN_TRACE=1).
private let eigenTrace = ProcessInfo.processInfo.environment["DSL_EIGEN_TRACE"] != nil

private func traceEigen(_ message: String) {
    if eigenTrace { FileHandle.standardError.write(Data(("eigen: " + message + "\n").utf8)) }
}

/// Runs `body(t)` for t in 0..<count on up to `count` threads.
@inline(__always)
func runParallel(_ count: Int, _ body: (Int) -> Void) {
    if count <= 1 { body(0); return }
    withoutActuallyEscaping(body) { b in DispatchQueue.concurrentPerform(iterations: count) { b($0) } }
}

// MARK: - Matrix product

private let kernelRows = 6        // MR: rows of C per micro-kernel call
private let kernelColumns = 32    // NR: columns of C per micro-kernel call (two 16-float vectors)
private let blockDepth = 256      // KC: depth of packed panels
private let blockRows = 96        // MC: rows of A packed per block (multiple of MR)

/// C (m×n, row stride ldc) = [C +] A·B, where A[i, p] = a[i·aRowStride + p·aColumnStride]
/// (so a transposed A is just other strides) and B is row-major with row stride ldb.
func sgemm(m: Int, n: Int, k: Int,
           a: UnsafePointer<Float>, aRowStride: Int, aColumnStride: Int,
           b: UnsafePointer<Float>, ldb: Int,
           c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
    if m <= 0 || n <= 0 { return }
    if !accumulate {
        for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
    }
    if k <= 0 { return }
    let panelsN = (n + kernelColumns - 1) / kernelColumns
    let packedB = UnsafeMutablePointer<Float>.allocate(capacity: panelsN * kernelColumns * blockDepth)
    defer { packedB.deallocate() }
    let threads = min(trainingThreadCount, (m + blockRows - 1) / blockRows)
    let packedA = UnsafeMutablePointer<Float>.allocate(capacity: threads * blockRows * blockDepth)
    defer { packedA.deallocate() }
    let rowBlocks = (m + blockRows - 1) / blockRows

    var p0 = 0
    while p0 < k {
        let kc = min(blockDepth, k - p0)
        // Pack B[p0..<p0+kc, :] into NR-wide panels, zero-padded on the right.
        for panel in 0..<panelsN {
            let j0 = panel * kernelColumns
            let width = min(kernelColumns, n - j0)
            let destination = packedB + panel * kernelColumns * kc
            for p in 0..<kc {
                let source = b + (p0 + p) * ldb + j0
                let row = destination + p * kernelColumns
                for j in 0..<width { row[j] = source[j] }
                if width < kernelColumns { for j in width..<kernelColumns { row[j] = 0 } }
            }
        }
        runParallel(threads) { thread in
            let myA = packedA + thread * blockRows * blockDepth
            var block = thread
            while block < rowBlocks {
                let i0 = block * blockRows
                let mc = min(blockRows, m - i0)
                let panelsM = (mc + kernelRows - 1) / kernelRows
                // Pack A[i0..<i0+mc, p0..<p0+kc] into MR-high panels, zero-padded at the bottom.
                for panel in 0..<panelsM {
                    let r0 = i0 + panel * kernelRows
                    let height = min(kernelRows, m - r0)
                    let destination = myA + panel * kernelRows * kc
                    for p in 0..<kc {
                        let column = a + (p0 + p) * aColumnStride
                        let out = destination + p * kernelRows
                        for r in 0..<height { out[r] = column[(r0 + r) * aRowStride] }
                        if height < kernelRows { for r in height..<kernelRows { out[r] = 0 } }
                    }
                }
                for panelN in 0..<panelsN {
                    let j0 = panelN * kernelColumns
                    let width = min(kernelColumns, n - j0)
                    for panelM in 0..<panelsM {
                        let r0 = i0 + panelM * kernelRows
                        let height = min(kernelRows, m - r0)
                        microKernel(kc: kc, a: myA + panelM * kernelRows * kc, b: packedB + panelN * kernelColumns * kc,
                                    c: c + r0 * ldc + j0, ldc: ldc, rows: height, columns: width)
                    }
                }
                block += threads
            }
        }
        p0 += kc
    }
}

/// C[0..<rows, 0..<columns] += (packed A panel, 6×kc) · (packed B panel, kc×32).
@inline(__always)
private func microKernel(kc: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                         c: UnsafeMutablePointer<Float>, ldc: Int, rows: Int, columns: Int) {
    typealias V = SIMD16<Float>
    var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
    var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
    let rawB = UnsafeRawPointer(b)
    for p in 0..<kc {
        let b0 = rawB.loadUnaligned(fromByteOffset: p * 128, as: V.self)
        let b1 = rawB.loadUnaligned(fromByteOffset: p * 128 + 64, as: V.self)
        let ap = a + p * 6
        var s = V(repeating: ap[0]); c00 = c00.addingProduct(s, b0); c01 = c01.addingProduct(s, b1)
        s = V(repeating: ap[1]); c10 = c10.addingProduct(s, b0); c11 = c11.addingProduct(s, b1)
        s = V(repeating: ap[2]); c20 = c20.addingProduct(s, b0); c21 = c21.addingProduct(s, b1)
        s = V(repeating: ap[3]); c30 = c30.addingProduct(s, b0); c31 = c31.addingProduct(s, b1)
        s = V(repeating: ap[4]); c40 = c40.addingProduct(s, b0); c41 = c41.addingProduct(s, b1)
        s = V(repeating: ap[5]); c50 = c50.addingProduct(s, b0); c51 = c51.addingProduct(s, b1)
    }
    if rows == 6 && columns == 32 {
        func add(_ row: Int, _ v0: V, _ v1: V) {
            let raw = UnsafeMutableRawPointer(c + row * ldc)
            raw.storeBytes(of: raw.loadUnaligned(as: V.self) + v0, as: V.self)
            raw.storeBytes(of: raw.loadUnaligned(fromByteOffset: 64, as: V.self) + v1, toByteOffset: 64, as: V.self)
        }
        add(0, c00, c01); add(1, c10, c11); add(2, c20, c21); add(3, c30, c31); add(4, c40, c41); add(5, c50, c51)
        return
    }
    withUnsafeTemporaryAllocation(of: V.self, capacity: 12) { tile in
        tile[0] = c00; tile[1] = c01; tile[2] = c10; tile[3] = c11; tile[4] = c20; tile[5] = c21
        tile[6] = c30; tile[7] = c31; tile[8] = c40; tile[9] = c41; tile[10] = c50; tile[11] = c51
        for r in 0..<rows {
            for j in 0..<columns { c[r * ldc + j] += tile[2 * r + j / 16][j % 16] }
        }
    }
}

// MARK: - Symmetric eigendecomposition

/// Eigenvalues and eigenvectors of a symmetric n×n matrix (row-major Double, destroyed).
/// Returns eigenvalues (unsorted) and the eigenvectors as the ROWS of an n×n row-major matrix.
/// Householder tridiagonalisation, then implicit QL with Wilkinson-like shifts; the QL rotations
/// are recorded and applied to the eigenvector matrix in cache-sized column blocks.
func symmetricEigen(_ matrix: inout [Double], n: Int) throws -> (values: [Double], vectors: [Double]) {
    guard n > 0, matrix.count == n * n else { throw TrainingError("eigendecomposition: matrix is not \(n)×\(n)") }
    var diagonal = [Double](repeating: 0, count: n)
    var offDiagonal = [Double](repeating: 0, count: n)  // offDiagonal[i] couples i and i+1
    var betas = [Double](repeating: 0, count: n)
    var clock = Date()
    func phase(_ name: String) {
        traceEigen(String(format: "%@ %.2f s", name, -clock.timeIntervalSinceNow))
        clock = Date()
    }
    matrix.withUnsafeMutableBufferPointer { buffer in
        tridiagonalize(buffer.baseAddress!, n: n, diagonal: &diagonal, offDiagonal: &offDiagonal, betas: &betas)
    }
    phase("tridiagonalize")
    // Q = H_0 H_1 … H_{n-3}, accumulated backwards in place of an identity matrix.
    var q = [Double](repeating: 0, count: n * n)
    q.withUnsafeMutableBufferPointer { qBuffer in
        matrix.withUnsafeBufferPointer { aBuffer in
            accumulateReflections(aBuffer.baseAddress!, q: qBuffer.baseAddress!, n: n, betas: betas)
        }
    }
    // Eigenvectors of A are Q·Y (Y from QL); as rows: Yᵀ·Qᵀ, so start from Qᵀ and rotate rows.
    phase("accumulate")
    var vectors = [Double](repeating: 0, count: n * n)
    for i in 0..<n { for j in 0..<n { vectors[j * n + i] = q[i * n + j] } }
    q = []
    phase("transpose")
    try tridiagonalQL(diagonal: &diagonal, offDiagonal: &offDiagonal, n: n, vectors: &vectors)
    phase("QL")
    return (diagonal, vectors)
}

/// y[0..<count] += alpha · x[0..<count]
@inline(__always)
private func axpy(_ count: Int, _ alpha: Double, _ x: UnsafePointer<Double>, _ y: UnsafeMutablePointer<Double>) {
    for j in 0..<count { y[j] += alpha * x[j] }
}

/// Reduces the symmetric matrix to tridiagonal form with Householder reflections
/// H_k = I − β_k v_k v_kᵀ acting on indices k+1..<n; v_k is left in row k (columns k+1..<n).
/// One pass over the trailing block per step: the rank-2 update of step k is fused with the
/// matrix–vector product of step k+1 (A symmetric, so p = β Σ_i v_i A[i, :] uses whole rows).
private func tridiagonalize(_ a: UnsafeMutablePointer<Double>, n: Int,
                            diagonal: inout [Double], offDiagonal: inout [Double], betas: inout [Double]) {
    if n == 1 { diagonal[0] = a[0]; return }
    let threads = min(trainingThreadCount, 8)
    let p = UnsafeMutablePointer<Double>.allocate(capacity: n)
    let w = UnsafeMutablePointer<Double>.allocate(capacity: n)
    let partial = UnsafeMutablePointer<Double>.allocate(capacity: n * threads)
    defer { p.deallocate(); w.deallocate(); partial.deallocate() }

    /// Turns row k's tail x = A[k, k+1..<n] into the Householder vector in place; returns β and α.
    func makeReflection(_ k: Int) -> (beta: Double, alpha: Double) {
        let x = a + k * n + k + 1
        let m = n - k - 1
        var norm2 = 0.0
        for j in 0..<m { norm2 += x[j] * x[j] }
        if norm2 == 0 { return (0, 0) }
        let norm = norm2.squareRoot()
        let alpha = x[0] > 0 ? -norm : norm
        // v = x − α e₁, vᵀv = 2(norm² − α x₀)
        let vv = 2 * (norm2 - alpha * x[0])
        x[0] -= alpha
        return (2 / vv, alpha)
    }

    /// p = β Σ_i v_i A[k+1+i, k+1..<n] over rows in `rows` (relative), into `out`.
    func accumulateProduct(_ k: Int, beta: Double, rows: Range<Int>, into out: UnsafeMutablePointer<Double>) {
        let m = n - k - 1
        let v = a + k * n + k + 1
        out.update(repeating: 0, count: m)
        for i in rows where v[i] != 0 { axpy(m, beta * v[i], a + (k + 1 + i) * n + k + 1, out) }
    }

    if n == 2 {
        diagonal[0] = a[0]; diagonal[1] = a[3]; offDiagonal[0] = a[1]; offDiagonal[1] = 0
        return
    }
    // Step 0's product has no previous update to fuse with.
    var reflection = makeReflection(0)
    betas[0] = reflection.beta
    accumulateProduct(0, beta: reflection.beta, rows: 0..<(n - 1), into: p)

    for k in 0..<(n - 2) {
        diagonal[k] = a[k * n + k]
        offDiagonal[k] = reflection.beta == 0 ? a[k * n + k + 1] : reflection.alpha
        let m = n - k - 1
        let v = a + k * n + k + 1
        let beta = reflection.beta
        if beta == 0 {
            // Nothing to reflect: restore x (makeReflection left it unchanged) and start the next step.
            offDiagonal[k] = 0
            if k + 1 < n - 2 {
                reflection = makeReflection(k + 1); betas[k + 1] = reflection.beta
                accumulateProduct(k + 1, beta: reflection.beta, rows: 0..<(n - k - 2), into: p)
            }
            continue
        }
        // w = p − (β/2)(pᵀv) v
        var pv = 0.0
        for j in 0..<m { pv += p[j] * v[j] }
        let half = 0.5 * beta * pv
        for j in 0..<m { w[j] = p[j] - half * v[j] }
        // Update the first row of the block, then build the next reflection from it.
        let first = a + (k + 1) * n + k + 1
        axpy(m, -v[0], w, first); axpy(m, -w[0], UnsafePointer(v), first)
        let hasNext = k + 1 < n - 2
        if hasNext { reflection = makeReflection(k + 1); betas[k + 1] = reflection.beta }
        let nextBeta = hasNext ? reflection.beta : 0
        let nextV = a + (k + 1) * n + k + 2
        // Remaining rows: rank-2 update of the upper triangle (row r keeps columns r..<n only),
        // fused with the next product p' = β' S' v' read from the same, freshly updated, entries:
        // entry (r, c) contributes to p'_r (as S'[r][c] v'_c) and, off the diagonal, to p'_c.
        // Rows shrink, so the rows are split between threads by area, not by count.
        let rowCount = m - 1
        let chunks = rowCount >= 256 ? threads : 1
        runParallel(chunks) { t in
            func boundary(_ t: Int) -> Int {
                let fraction = Double(t) / Double(chunks)
                return 1 + Int((Double(rowCount) * (1 - (1 - fraction).squareRoot())).rounded())
            }
            let lo = t == 0 ? 1 : boundary(t), hi = t == chunks - 1 ? m : boundary(t + 1)
            let out = partial + t * n
            out.update(repeating: 0, count: m - 1)
            for i in lo..<hi {
                let row = a + (k + 1 + i) * n + k + 1 + i      // starts at the diagonal entry
                let length = m - i
                if nextBeta == 0 {
                    let vi = v[i], wi = w[i], vs = v + i, ws = w + i
                    for j in 0..<length { row[j] -= vi * ws[j] + wi * vs[j] }
                } else {
                    let dot = updateRowAndAccumulate(length, row: row, v: v + i, w: w + i, vi: v[i], wi: w[i],
                                                     nextV: nextV + (i - 1), out: out + (i - 1))
                    out[i - 1] += dot
                }
            }
        }
        if hasNext {
            p.update(from: partial, count: m - 1)
            for t in 1..<max(1, chunks) { axpy(m - 1, 1, partial + t * n, p) }
            for j in 0..<(m - 1) { p[j] *= nextBeta }
        }
    }
    diagonal[n - 2] = a[(n - 2) * n + n - 2]
    diagonal[n - 1] = a[(n - 1) * n + n - 1]
    offDiagonal[n - 2] = a[(n - 2) * n + n - 1]
    offDiagonal[n - 1] = 0
    for k in max(0, n - 2)..<n { betas[k] = 0 }
}

/// For one upper-triangle row segment starting at its diagonal entry (index 0):
/// row[t] −= vi·w[t] + wi·v[t]; then out[t] += nextV[0]·row[t] for t ≥ 1, and returns Σ_t row[t]·nextV[t].
@inline(__always)
private func updateRowAndAccumulate(_ length: Int, row: UnsafeMutablePointer<Double>, v: UnsafePointer<Double>, w: UnsafePointer<Double>,
                                    vi: Double, wi: Double, nextV: UnsafePointer<Double>, out: UnsafeMutablePointer<Double>) -> Double {
    typealias V = SIMD8<Double>
    let first = row[0] - vi * w[0] - wi * v[0]
    row[0] = first
    var dot = first * nextV[0]
    let scale = nextV[0]
    let viV = V(repeating: vi), wiV = V(repeating: wi), scaleV = V(repeating: scale)
    var sum0 = V(), sum1 = V()
    let rowRaw = UnsafeMutableRawPointer(row), vRaw = UnsafeRawPointer(v), wRaw = UnsafeRawPointer(w)
    let nextRaw = UnsafeRawPointer(nextV), outRaw = UnsafeMutableRawPointer(out)
    var t = 1
    while t + 16 <= length {
        let o0 = t * 8, o1 = o0 + 64
        var r0 = rowRaw.loadUnaligned(fromByteOffset: o0, as: V.self)
        var r1 = rowRaw.loadUnaligned(fromByteOffset: o1, as: V.self)
        r0 = r0 - viV * wRaw.loadUnaligned(fromByteOffset: o0, as: V.self) - wiV * vRaw.loadUnaligned(fromByteOffset: o0, as: V.self)
        r1 = r1 - viV * wRaw.loadUnaligned(fromByteOffset: o1, as: V.self) - wiV * vRaw.loadUnaligned(fromByteOffset: o1, as: V.self)
        rowRaw.storeBytes(of: r0, toByteOffset: o0, as: V.self)
        rowRaw.storeBytes(of: r1, toByteOffset: o1, as: V.self)
        sum0 = sum0.addingProduct(r0, nextRaw.loadUnaligned(fromByteOffset: o0, as: V.self))
        sum1 = sum1.addingProduct(r1, nextRaw.loadUnaligned(fromByteOffset: o1, as: V.self))
        outRaw.storeBytes(of: outRaw.loadUnaligned(fromByteOffset: o0, as: V.self).addingProduct(scaleV, r0), toByteOffset: o0, as: V.self)
        outRaw.storeBytes(of: outRaw.loadUnaligned(fromByteOffset: o1, as: V.self).addingProduct(scaleV, r1), toByteOffset: o1, as: V.self)
        t += 16
    }
    while t < length {
        let value = row[t] - vi * w[t] - wi * v[t]
        row[t] = value
        dot += value * nextV[t]
        out[t] += scale * value
        t += 1
    }
    return dot + (sum0 + sum1).sum()
}

/// Q = H_0 H_1 … H_{n-3} (row-major into `q`), applying the reflections right to left to I.
/// Reflections are applied in groups of `groupSize` as one block reflector P = I − V T Vᵀ
/// (compact WY form), so each pass over the matrix does `groupSize` reflections' work.
private func accumulateReflections(_ a: UnsafePointer<Double>, q: UnsafeMutablePointer<Double>, n: Int, betas: [Double]) {
    q.update(repeating: 0, count: n * n)
    for i in 0..<n { q[i * n + i] = 1 }
    if n < 3 { return }
    let groupSize = 32, tileWidth = 256
    let reflections = n - 2                        // H_0 … H_{n-3}
    let v = UnsafeMutablePointer<Double>.allocate(capacity: n * groupSize)   // V, row-major (rows × groupSize)
    let t = UnsafeMutablePointer<Double>.allocate(capacity: groupSize * groupSize)
    let threads = min(trainingThreadCount, 8)
    let scratch = UnsafeMutablePointer<Double>.allocate(capacity: threads * 2 * groupSize * tileWidth)
    defer { v.deallocate(); t.deallocate(); scratch.deallocate() }

    var groupEnd = reflections
    while groupEnd > 0 {
        let k0 = max(0, groupEnd - groupSize)
        let b = groupEnd - k0
        let firstRow = k0 + 1                      // rows (and columns) k0+1 ..< n are touched
        let rows = n - firstRow
        // V[r][j] = v_{k0+j}[row firstRow + r], zero above reflection j's own start (row k0+j+1).
        v.update(repeating: 0, count: rows * b)
        for j in 0..<b {
            let k = k0 + j
            for r in (k + 1)..<n { v[(r - firstRow) * b + j] = a[k * n + r] }
        }
        // T upper triangular: T[j][j] = β_j, T[0..<j, j] = −β_j T[0..<j, 0..<j] (V[:, 0..<j]ᵀ v_j).
        t.update(repeating: 0, count: b * b)
        for j in 0..<b {
            let beta = betas[k0 + j]
            t[j * b + j] = beta
            if j == 0 || beta == 0 { continue }
            var dots = [Double](repeating: 0, count: j)
            for r in 0..<rows {
                let row = v + r * b
                let vj = row[j]
                if vj == 0 { continue }
                for i in 0..<j { dots[i] += row[i] * vj }
            }
            for i in 0..<j {
                var sum = 0.0
                for l in i..<j { sum += t[i * b + l] * dots[l] }
                t[i * b + j] = -beta * sum
            }
        }
        // M ← M − V (T (Vᵀ M)) on the block rows/columns firstRow..<n, by column tiles.
        let tiles = (rows + tileWidth - 1) / tileWidth
        let workers = min(threads, tiles)
        runParallel(workers) { worker in
            let y = scratch + worker * 2 * groupSize * tileWidth
            let z = y + groupSize * tileWidth
            var tile = worker
            while tile < tiles {
                let c0 = firstRow + tile * tileWidth
                let width = min(tileWidth, n - c0)
                y.update(repeating: 0, count: b * tileWidth)
                for r in 0..<rows {
                    let mRow = q + (firstRow + r) * n + c0
                    let vRow = v + r * b
                    for j in 0..<b where vRow[j] != 0 { axpy(width, vRow[j], mRow, y + j * tileWidth) }
                }
                // Z = T Y (T upper triangular).
                for i in 0..<b {
                    let zRow = z + i * tileWidth
                    zRow.update(repeating: 0, count: width)
                    for l in i..<b where t[i * b + l] != 0 { axpy(width, t[i * b + l], y + l * tileWidth, zRow) }
                }
                for r in 0..<rows {
                    let mRow = q + (firstRow + r) * n + c0
                    let vRow = v + r * b
                    for j in 0..<b where vRow[j] != 0 { axpy(width, -vRow[j], z + j * tileWidth, mRow) }
                }
                tile += workers
            }
        }
        groupEnd = k0
    }
}

/// One recorded plane rotation of QL: rows (i, i+1) of the eigenvector matrix.
private struct Rotation { var row: Int32; var cosine: Double; var sine: Double }

/// Implicit QL with shifts on the tridiagonal (diagonal, offDiagonal); eigenvalues end in
/// `diagonal`, and the rotations are applied to the rows of `vectors` (row-major n×n).
private func tridiagonalQL(diagonal d: inout [Double], offDiagonal e: inout [Double], n: Int, vectors: inout [Double]) throws {
    var rotations: [Rotation] = []
    let flushSize = 1 << 20
    var totalRotations = 0
    rotations.reserveCapacity(flushSize + n)
    func flush() {
        if rotations.isEmpty { return }
        vectors.withUnsafeMutableBufferPointer { buffer in
            applyRotations(rotations, to: buffer.baseAddress!, n: n)
        }
        totalRotations += rotations.count
        rotations.removeAll(keepingCapacity: true)
    }
    for l in 0..<n {
        var iterations = 0
        while true {
            var m = l
            while m < n - 1 {
                let dd = abs(d[m]) + abs(d[m + 1])
                if abs(e[m]) <= Double.ulpOfOne * dd { break }
                m += 1
            }
            if m == l { break }
            iterations += 1
            if iterations > 60 { throw TrainingError("eigendecomposition: QL did not converge for eigenvalue \(l)") }
            var g = (d[l + 1] - d[l]) / (2 * e[l])
            var r = (g * g + 1).squareRoot()
            g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r))
            var s = 1.0, c = 1.0, p = 0.0
            var i = m - 1
            var deflated = false
            while i >= l {
                let f = s * e[i], b = c * e[i]
                r = (f * f + g * g).squareRoot()
                e[i + 1] = r
                if r == 0 {
                    d[i + 1] -= p; e[m] = 0; deflated = true
                    break
                }
                s = f / r; c = g / r
                g = d[i + 1] - p
                r = (d[i] - g) * s + 2 * c * b
                p = s * r
                d[i + 1] = g + p
                g = c * r - b
                rotations.append(Rotation(row: Int32(i), cosine: c, sine: s))
                i -= 1
            }
            if deflated { continue }
            d[l] -= p; e[l] = g; e[m] = 0
            if rotations.count >= flushSize { flush() }
        }
    }
    flush()
    traceEigen("QL rotations: \(totalRotations)")
}

/// Applies rotations in order to rows (i, i+1) of z: z_{i+1} ← s·z_i + c·z_{i+1}, z_i ← c·z_i − s·z_{i+1}.
/// Works on column strips of 32 copied into a contiguous buffer (n × 32 doubles, cache-sized;
/// operating on the strip in place would map every row to the same few cache sets).
private func applyRotations(_ rotations: [Rotation], to z: UnsafeMutablePointer<Double>, n: Int) {
    typealias V = SIMD8<Double>
    let strip = 32
    let strips = (n + strip - 1) / strip
    let threads = min(trainingThreadCount, strips)
    let buffers = UnsafeMutablePointer<Double>.allocate(capacity: threads * n * strip)
    defer { buffers.deallocate() }
    rotations.withUnsafeBufferPointer { list in
        runParallel(threads) { t in
            let buffer = buffers + t * n * strip
            let raw = UnsafeMutableRawPointer(buffer)
            var s0 = t
            while s0 < strips {
                let j0 = s0 * strip
                let width = min(strip, n - j0)
                if width < strip { buffer.update(repeating: 0, count: n * strip) }
                for row in 0..<n { (buffer + row * strip).update(from: z + row * n + j0, count: width) }
                // A QL sweep rotates rows (i, i+1), (i−1, i), (i−2, i−1), …: the new row i of one
                // rotation is the lower row of the next, so it is carried in registers, not memory.
                var carried0 = V(), carried1 = V(), carried2 = V(), carried3 = V()
                var carriedRow = -2                       // row held in the carried registers
                for rotation in list {
                    let row = Int(rotation.row)
                    let upper = raw + row * strip * 8
                    let lower = upper + strip * 8
                    if row + 1 != carriedRow {
                        if carriedRow >= 0 {
                            let held = raw + carriedRow * strip * 8
                            held.storeBytes(of: carried0, as: V.self); held.storeBytes(of: carried1, toByteOffset: 64, as: V.self)
                            held.storeBytes(of: carried2, toByteOffset: 128, as: V.self); held.storeBytes(of: carried3, toByteOffset: 192, as: V.self)
                        }
                        carried0 = lower.loadUnaligned(as: V.self); carried1 = lower.loadUnaligned(fromByteOffset: 64, as: V.self)
                        carried2 = lower.loadUnaligned(fromByteOffset: 128, as: V.self); carried3 = lower.loadUnaligned(fromByteOffset: 192, as: V.self)
                    }
                    let c = V(repeating: rotation.cosine), s = V(repeating: rotation.sine)
                    let x0 = upper.loadUnaligned(as: V.self), x1 = upper.loadUnaligned(fromByteOffset: 64, as: V.self)
                    let x2 = upper.loadUnaligned(fromByteOffset: 128, as: V.self), x3 = upper.loadUnaligned(fromByteOffset: 192, as: V.self)
                    lower.storeBytes(of: s * x0 + c * carried0, as: V.self)
                    lower.storeBytes(of: s * x1 + c * carried1, toByteOffset: 64, as: V.self)
                    lower.storeBytes(of: s * x2 + c * carried2, toByteOffset: 128, as: V.self)
                    lower.storeBytes(of: s * x3 + c * carried3, toByteOffset: 192, as: V.self)
                    carried0 = c * x0 - s * carried0; carried1 = c * x1 - s * carried1
                    carried2 = c * x2 - s * carried2; carried3 = c * x3 - s * carried3
                    carriedRow = row
                }
                if carriedRow >= 0 {
                    let held = raw + carriedRow * strip * 8
                    held.storeBytes(of: carried0, as: V.self); held.storeBytes(of: carried1, toByteOffset: 64, as: V.self)
                    held.storeBytes(of: carried2, toByteOffset: 128, as: V.self); held.storeBytes(of: carried3, toByteOffset: 192, as: V.self)
                }
                for row in 0..<n { (z + row * n + j0).update(from: buffer + row * strip, count: width) }
                s0 += threads
            }
        }
    }
}
