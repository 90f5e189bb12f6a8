// Deterministic reductions over rows (batch·height·width) of an NHWC tensor.
//
// Forward and backward reductions use a number of partial sums that depends only on the number
// of rows, never on `engineThreadCount`; each partial sums its rows in order and the partials are
// combined in order. Results are therefore bit-identical for any thread count.

#if os(Linux)
import Glibc
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
        partial.update(repeating: 0, count: columns)
        for r in chunkRange(chunk, of: chunks, count: rows) {
            let row = data + r * columns
            for c in 0..<columns { partial[c] += Double(row[c]) }
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
