// Deterministic reductions over rows (batch·height·width) of an NHWC tensor.
//
// Forward and backward reductions use a number of partial sums that depends only on the number
// of rows, never on `engineThreadCount`; each partial sums its rows in order and the partials are
// combined in order. Results are therefore bit-identical for any thread count.

#if os(Linux)
import Glibc
#endif
#if DSL_AVX512
import _Builtin_intrinsics.intel
#endif

/// How many partial sums a reduction over `rows` rows uses (a function of `rows` only).
@inline(__always)
func reductionChunkCount(rows: Int) -> Int { max(1, min(16, rows / 32)) }

/// The items (rows or elements) of chunk `chunk` when `count` items are split into `chunks`
/// contiguous, nearly equal chunks.
@inline(__always)
public func chunkRange(_ chunk: Int, of chunks: Int, count: Int) -> Range<Int> {
    (chunk * count / chunks)..<((chunk + 1) * count / chunks)
}

/// Sets `count` floats to zero, in parallel for large buffers.
public func parallelZero(_ p: UnsafeMutablePointer<Float>, count: Int) {
    let chunks = elementwiseChunks(count)
    if chunks == 1 { p.update(repeating: 0, count: count); return }
    parallelFor(chunks) { chunk in
        let r = chunkRange(chunk, of: chunks, count: count)
        (p + r.lowerBound).update(repeating: 0, count: r.count)
    }
}

/// Largest number of partial sums any reduction uses; partial buffers hold this many rows.
let maxReductionChunks = 16

/// sums[c] += Σ_r data[r·columns + c] in fixed-order Double partials. `partials` holds at least
/// maxReductionChunks·columns doubles.
func accumulateColumnSums(_ data: UnsafePointer<Float>, rows: Int, columns: Int,
                          partials: UnsafeMutablePointer<Double>, into sums: UnsafeMutablePointer<Float>) {
    let chunks = reductionChunkCount(rows: rows)
    parallelFor(chunks) { chunk in
        let partial = partials + chunk * columns
        let range = chunkRange(chunk, of: chunks, count: rows)
        if columns <= 64 {
            blockChannelSums(kind: .plain, data, nil, center: nil, rows: range, c: columns, c0: 0,
                             first: partial, second: partial)
        } else {
            partial.update(repeating: 0, count: columns)
            for r in range {
                let row = data + r * columns
                for c in 0..<columns { partial[c] += Double(row[c]) }
            }
        }
    }
    for c in 0..<columns {
        var total = 0.0
        for chunk in 0..<chunks { total += partials[chunk * columns + c] }
        sums[c] += Float(total)
    }
}

/// Splits `count` elementwise items into a fixed number of chunks for `parallelFor`.
@inline(__always)
func elementwiseChunks(_ count: Int) -> Int { max(1, min(64, count / 4096)) }

/// Buffers at least this large (in bytes) are asked for transparent huge pages.
let hugePageThreshold = 4 << 20
/// The size of a transparent huge page on x86-64 Linux.
let hugePageBytes = 2 << 20

/// Allocates `bytes` zeroed bytes aligned to 64 bytes; a large buffer (activations, the weight
/// arena) is aligned to 2 MiB and advised to use transparent huge pages before it is touched.
/// With 4 KiB pages, a pass streaming through a 25 MB activation misses the TLB on every page:
/// All-CNN-C's first layer (batch 64, one thread) ran at 60-66 % of peak with them and 71-75 %
/// with huge pages (four interleaved runs each). Where THP is disabled the advice is ignored.
/// Throws `EngineMemoryError` when the system refuses (never traps); free with `releaseMemory`.
func allocateMemory(bytes requested: Int) throws -> UnsafeMutableRawPointer {
    let bytes = max(64, requested)
    let huge = bytes >= hugePageThreshold
    var raw: UnsafeMutableRawPointer? = nil
    guard posix_memalign(&raw, huge ? hugePageBytes : 64, bytes) == 0, let raw else {
        throw EngineMemoryError(allocationFailed: bytes)
    }
    #if os(Linux)
    if huge { _ = madvise(raw, bytes, MADV_HUGEPAGE) }
    #endif
    raw.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
    return raw
}

/// Frees memory from `allocateMemory` (nil does nothing).
func releaseMemory(_ p: UnsafeMutableRawPointer?) { free(p) }

/// `count` zeroed floats from `allocateMemory`.
func allocateFloats(_ count: Int) throws -> UnsafeMutablePointer<Float> {
    try allocateMemory(bytes: max(1, count) * 4).bindMemory(to: Float.self, capacity: max(1, count))
}

/// `count` zeroed doubles from `allocateMemory`.
func allocateDoubles(_ count: Int) throws -> UnsafeMutablePointer<Double> {
    try allocateMemory(bytes: max(1, count) * 8).bindMemory(to: Double.self, capacity: max(1, count))
}

/// Bytes that `allocateMemory` takes for a request (what the memory plan counts).
func allocatedBytes(_ requested: Int) -> Int { max(64, requested) }

/// Several buffers of one kernel carved out of one allocation (each 64-byte aligned), so that
/// a kernel's memory is allocated, counted and freed as one piece and a failed allocation
/// leaves nothing behind.
struct MemoryLayout64 {
    private(set) var bytes = 0
    /// Reserves `count` elements of `stride` bytes; returns their byte offset.
    mutating func reserve(_ count: Int, stride: Int) -> Int {
        let offset = bytes
        bytes += (max(0, count) * stride + 63) / 64 * 64
        return offset
    }
    mutating func floats(_ count: Int) -> Int { reserve(count, stride: 4) }
    mutating func doubles(_ count: Int) -> Int { reserve(count, stride: 8) }
}

/// The allocation of a `MemoryLayout64`, freed with its owner.
final class MemoryBlock {
    let base: UnsafeMutableRawPointer
    let bytes: Int
    init(_ layout: MemoryLayout64) throws {
        bytes = allocatedBytes(layout.bytes)
        base = try allocateMemory(bytes: layout.bytes)
    }
    deinit { releaseMemory(base) }
    func floats(at offset: Int) -> UnsafeMutablePointer<Float> { (base + offset).assumingMemoryBound(to: Float.self) }
    func doubles(at offset: Int) -> UnsafeMutablePointer<Double> { (base + offset).assumingMemoryBound(to: Double.self) }
}

// MARK: - Per-channel sums in registers

/// Eight doubles: one register of per-channel sums.
typealias D8 = SIMD8<Double>

/// Floats p[0 ..< lanes] (lanes 1...8) widened to doubles, zeros in the other lanes; a partial
/// group is one masked load with AVX-512 (nothing past `lanes` is read).
@inline(__always) func loadWidened(_ p: UnsafePointer<Float>, _ lanes: Int) -> D8 {
    #if DSL_AVX512
    // (`loadUnaligned(as: SIMD8<Float>.self)` compiled to a call here, not a load.)
    let f = lanes == 8 ? _mm256_loadu_ps(p) : _mm256_maskz_loadu_ps(__mmask8(truncatingIfNeeded: (1 << lanes) - 1), p)
    return _mm512_cvtps_pd(f)
    #else
    var v = D8()
    for l in 0..<lanes { v[l] = Double(p[l]) }
    return v
    #endif
}

/// The kind of sum as a type, so that `blockChannelSums` is specialised per kind (a constant
/// kind in each copy: the per-element `switch` folds away; as a parameter of an inlined function
/// the compiler kept some copies generic, testing the kind for every element).
protocol ChannelSumKindType { static var kind: ChannelSumKind { get } }
enum PlainSums: ChannelSumKindType { static var kind: ChannelSumKind { .plain } }
enum CenteredSquareSums: ChannelSumKindType { static var kind: ChannelSumKind { .centeredSquares } }
enum ProductSums: ChannelSumKindType { static var kind: ChannelSumKind { .withProducts } }

/// `blockChannelSums` for a kind known only at run time.
@inline(__always)
func blockChannelSums(kind: ChannelSumKind, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>?,
                      center: UnsafePointer<Double>?, rows: Range<Int>, c: Int, c0: Int,
                      first: UnsafeMutablePointer<Double>, second: UnsafeMutablePointer<Double>,
                      accumulating: Bool = false) {
    switch kind {
    case .plain:
        blockChannelSums(PlainSums.self, a, nil, center: nil, rows: rows, c: c, c0: c0,
                         first: first, second: second, accumulating: accumulating)
    case .centeredSquares:
        blockChannelSums(CenteredSquareSums.self, a, nil, center: center, rows: rows, c: c, c0: c0,
                         first: first, second: second, accumulating: accumulating)
    case .withProducts:
        blockChannelSums(ProductSums.self, a, b, center: nil, rows: rows, c: c, c0: c0,
                         first: first, second: second, accumulating: accumulating)
    }
}

/// What `channelSums` adds per element: x; (x − center)²; or x and x·y.
enum ChannelSumKind { case plain, centeredSquares, withProducts }

/// For one block of up to 64 channels starting at `c0` (of `c` per row) and the rows `rows`
/// (callers use it for rows of at most 64 channels: for wider rows the compiler's vectorised
/// row loop, adding each row into the sums in memory, measured faster, MobileNetV2's 96-960
/// channels; for up to 64 channels with a ragged group of 8 its scalar remainder loop was slow):
/// first[ch] = Σ_r f(a[r, ch]) (and second[ch] = Σ_r a[r, ch]·b[r, ch] for `.withProducts`;
/// `second` is not touched otherwise),
/// each channel's sum one Double chain starting from 0 over the rows in order, the chain the
/// scalar loop `first[ch] += Double(a[r, ch])` makes; kept in registers (up to 16) across the
/// rows instead of read and written in memory for every row. With `accumulating` the chains
/// go on from the sums already in `first` (and `second`) instead of 0: rows summed a block at
/// a time give the bits of one call over all of them.
@inline(never)
func blockChannelSums<K: ChannelSumKindType>(_: K.Type, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>?,
                                             center: UnsafePointer<Double>?, rows: Range<Int>, c: Int, c0: Int,
                                             first: UnsafeMutablePointer<Double>, second: UnsafeMutablePointer<Double>,
                                             accumulating: Bool = false) {
    let kind = K.kind
    let width = min(64, c - c0)
    let groups = (width + 7) / 8, lastLanes = width - (groups - 1) * 8
    /// Group g's lanes of `v` (8 doubles per group, the last group's `lastLanes`), zeros past them.
    @inline(__always) func group(_ v: UnsafePointer<Double>, _ g: Int) -> D8 {
        var x = D8()
        for l in 0..<(g == groups - 1 ? lastLanes : 8) { x[l] = v[c0 + g * 8 + l] }
        return x
    }
    var s0 = D8(), s1 = D8(), s2 = D8(), s3 = D8(), s4 = D8(), s5 = D8(), s6 = D8(), s7 = D8()
    var t0 = D8(), t1 = D8(), t2 = D8(), t3 = D8(), t4 = D8(), t5 = D8(), t6 = D8(), t7 = D8()
    var m0 = D8(), m1 = D8(), m2 = D8(), m3 = D8(), m4 = D8(), m5 = D8(), m6 = D8(), m7 = D8()
    if accumulating {
        let (f, t) = (UnsafePointer(first), UnsafePointer(second))
        s0 = group(f, 0); if groups > 1 { s1 = group(f, 1) }; if groups > 2 { s2 = group(f, 2) }; if groups > 3 { s3 = group(f, 3) }
        if groups > 4 { s4 = group(f, 4) }; if groups > 5 { s5 = group(f, 5) }; if groups > 6 { s6 = group(f, 6) }
        if groups > 7 { s7 = group(f, 7) }
        if kind == .withProducts {
            t0 = group(t, 0); if groups > 1 { t1 = group(t, 1) }; if groups > 2 { t2 = group(t, 2) }; if groups > 3 { t3 = group(t, 3) }
            if groups > 4 { t4 = group(t, 4) }; if groups > 5 { t5 = group(t, 5) }; if groups > 6 { t6 = group(t, 6) }
            if groups > 7 { t7 = group(t, 7) }
        }
    }
    if kind == .centeredSquares, let center {
        m0 = group(center, 0)
        if groups > 1 { m1 = group(center, 1) }; if groups > 2 { m2 = group(center, 2) }; if groups > 3 { m3 = group(center, 3) }
        if groups > 4 { m4 = group(center, 4) }; if groups > 5 { m5 = group(center, 5) }; if groups > 6 { m6 = group(center, 6) }
        if groups > 7 { m7 = group(center, 7) }
    }
    @inline(__always) func add(_ g: Int, _ rowA: UnsafePointer<Float>, _ rowB: UnsafePointer<Float>,
                               _ s: inout D8, _ t: inout D8, _ m: D8) {
        let lanes = g == groups - 1 ? lastLanes : 8
        let x = loadWidened(rowA + g * 8, lanes)
        switch kind {
        case .plain: s += x
        case .centeredSquares: let d = x - m; s += d * d
        case .withProducts: s += x; t += x * loadWidened(rowB + g * 8, lanes)
        }
    }
    for r in rows {
        let rowA = a + r * c + c0, rowB = (b ?? a) + r * c + c0
        add(0, rowA, rowB, &s0, &t0, m0)
        if groups > 1 { add(1, rowA, rowB, &s1, &t1, m1) }
        if groups > 2 { add(2, rowA, rowB, &s2, &t2, m2) }
        if groups > 3 { add(3, rowA, rowB, &s3, &t3, m3) }
        if groups > 4 { add(4, rowA, rowB, &s4, &t4, m4) }
        if groups > 5 { add(5, rowA, rowB, &s5, &t5, m5) }
        if groups > 6 { add(6, rowA, rowB, &s6, &t6, m6) }
        if groups > 7 { add(7, rowA, rowB, &s7, &t7, m7) }
    }
    @inline(__always) func put(_ g: Int, _ s: D8, _ t: D8) {
        guard g < groups else { return }
        for l in 0..<(g == groups - 1 ? lastLanes : 8) {
            first[c0 + g * 8 + l] = s[l]
            if kind == .withProducts { second[c0 + g * 8 + l] = t[l] }
        }
    }
    put(0, s0, t0); put(1, s1, t1); put(2, s2, t2); put(3, s3, t3)
    put(4, s4, t4); put(5, s5, t5); put(6, s6, t6); put(7, s7, t7)
}
