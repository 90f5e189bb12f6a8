import XCTest
import Dispatch
#if os(Linux)
import Glibc
#endif
@testable import DSLEngine

/// A float buffer fenced by guard pages, for running one kernel on exactly-sized tensors: the
/// data starts 64-byte aligned (as the planner's arena offsets are) and ends, rounded up to 16
/// floats, right before a PROT_NONE page, so a read or write past the rounded end faults; the
/// slack before the data and between its end and the guard page holds a canary that `intact`
/// checks (a write there would otherwise go unnoticed).
final class GuardedFloats {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    private let base: UnsafeMutableRawPointer
    private let mappedBytes: Int
    private let page: Int
    private let slackBefore: Int
    private let slackAfter: Int
    /// A NaN bit pattern no kernel produces from finite data.
    static let canary: UInt32 = 0x7FA5_A5A5

    init(_ count: Int, values: [Float]? = nil) {
        self.count = count
        page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let rounded = max(16, (count + 15) / 16 * 16) * 4
        let dataPages = (rounded + page - 1) / page
        mappedBytes = (dataPages + 2) * page
        let raw = mmap(nil, mappedBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let raw, raw != UnsafeMutableRawPointer(bitPattern: -1) else { fatalError("mmap failed") }
        base = raw
        _ = mprotect(base, page, PROT_NONE)
        _ = mprotect(base + (dataPages + 1) * page, page, PROT_NONE)
        let start = base + page + dataPages * page - rounded
        slackBefore = (start - (base + page)) / 4
        slackAfter = rounded / 4 - count
        pointer = start.bindMemory(to: Float.self, capacity: rounded / 4)
        let all = (base + page).bindMemory(to: UInt32.self, capacity: dataPages * page / 4)
        all.update(repeating: GuardedFloats.canary, count: dataPages * page / 4)
        if let values {
            precondition(values.count == count)
            pointer.update(from: values, count: count)
        } else {
            pointer.update(repeating: 0, count: count)
        }
    }

    deinit { munmap(base, mappedBytes) }

    /// The slack around the data still holds the canary.
    var intact: Bool {
        let before = (base + page).assumingMemoryBound(to: UInt32.self)
        for i in 0..<slackBefore where before[i] != GuardedFloats.canary { return false }
        let after = UnsafeMutableRawPointer(pointer + count).assumingMemoryBound(to: UInt32.self)
        for i in 0..<slackAfter where after[i] != GuardedFloats.canary { return false }
        return true
    }

    var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    /// The first n values.
    func first(_ n: Int) -> [Float] { Array(UnsafeBufferPointer(start: pointer, count: n)) }
}

/// The guarded tensors of one kernel and the `NodeStorage` that binds them.
final class KernelTensors {
    var buffers: [GuardedFloats] = []
    func make(_ count: Int, _ values: [Float]? = nil) -> GuardedFloats {
        let b = GuardedFloats(count, values: values)
        buffers.append(b)
        return b
    }
    var intact: Bool { buffers.allSatisfy(\.intact) }
}

/// Runs a kernel without parameters on guarded tensors: inputs `xs` (shapes `shapes`), input
/// gradients starting at `dx0`, output gradient `dy`, each padded with poison to `maxBatch`
/// samples, the output poisoned; `make` builds the kernel on that storage; forward (training)
/// and backward run on `threads` threads. Returns y of `batch` samples followed by each dX, and
/// whether every guard held.
func runParameterless(shapes: [EngineShape], output out: EngineShape, xs: [[Float]], dx0: [[Float]], dy: [Float],
                      batch: Int, maxBatch: Int, threads: Int,
                      make: (NodeStorage) -> EngineKernel) -> (values: [Float], intact: Bool) {
    func padded(_ v: [Float], _ n: Int) -> [Float] { v + [Float](repeating: poison, count: n - v.count) }
    let t = KernelTensors()
    let ins = shapes.indices.map { t.make(maxBatch * shapes[$0].count, padded(xs[$0], maxBatch * shapes[$0].count)) }
    let grads = shapes.indices.map { t.make(maxBatch * shapes[$0].count, padded(dx0[$0], maxBatch * shapes[$0].count)) }
    let ys = t.make(maxBatch * out.count, [Float](repeating: poison, count: maxBatch * out.count))
    let dys = t.make(maxBatch * out.count, padded(dy, maxBatch * out.count))
    let storage = NodeStorage(inputs: ins.map(\.pointer), inputShapes: shapes, inputGrads: grads.map(\.pointer),
                              output: ys.pointer, outputShape: out, outputGrad: dys.pointer,
                              parameters: [], parameterGrads: [], buffers: [], saved: nil,
                              columnScratch: ys.pointer, columnScratchFloats: 0, maxBatch: maxBatch)
    let kernel = make(storage)
    withThreads(threads) {
        kernel.forward(batch: batch, training: true)
        kernel.backward(batch: batch)
    }
    return (ys.first(batch * out.count) + grads.indices.flatMap { grads[$0].first(batch * shapes[$0].count) }, t.intact)
}

/// Runs `body` with `engineThreadCount` set to `threads`.
func withThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
    let saved = engineThreadCount
    engineThreadCount = threads
    defer { engineThreadCount = saved }
    return try body()
}

/// Two training steps of a compiled graph ending in softmax (`computesInputGradient` set), SGD
/// at 0.05 between them, on `threads` threads: inputs normal from `random`, image i labelled
/// (3i + step) mod 10. Every parameter gradient and the input gradient of each step as bit
/// patterns by name ("step0 conv.weight", "step1 d(input)"), for bit-for-bit comparisons.
func trainingGradientBits(_ g: EngineGraph, batch: Int, threads: Int,
                          random: inout TestRandom) throws -> [String: [UInt32]] {
    var result: [String: [UInt32]] = [:]
    try withThreads(threads) {
        for step in 0..<2 {
            let input = random.normals(batch * g.inputShape.count)
            let labels = (0..<batch).map { Int32(($0 * 3 + step) % 10) }
            _ = g.forward(input, batch: batch, training: true)
            labels.withUnsafeBufferPointer { _ = g.backward(labels: $0.baseAddress!, batch: batch) }
            for p in g.parameters {
                result["step\(step) \(p.name)"] = UnsafeBufferPointer(start: p.grad, count: p.count).map(\.bitPattern)
            }
            let dInput = try XCTUnwrap(g.gradient(of: 0))
            result["step\(step) d(input)"] = UnsafeBufferPointer(start: dInput, count: batch * g.inputShape.count).map(\.bitPattern)
            for i in 0..<g.parameterCount { g.parameterValues[i] -= 0.05 * g.parameterGrads[i] }
        }
    }
    return result
}

/// Compares a kernel result with a Double reference: |got − ref| ≤ rel·(abs + floor·max abs),
/// where abs[i] is the sum of the magnitudes of the terms of element i (so the bound is the
/// rounding a float sum of those terms can show). Returns a message on the first mismatch.
func mismatch(_ got: [Float], _ ref: [Double], abs: [Double], rel: Double, floor: Double = 1e-2,
              _ label: String) -> String? {
    guard got.count == ref.count else { return "\(label): \(got.count) values, expected \(ref.count)" }
    let largest = abs.max() ?? 0
    for i in got.indices {
        let g = Double(got[i])
        let allowed = rel * (abs[i] + floor * largest) + 1e-30
        if !(Swift.abs(g - ref[i]) <= allowed) {
            return "\(label)[\(i)]: got \(got[i]), expected \(ref[i]) (allowed error \(allowed))"
        }
    }
    return nil
}

/// Fills a compiled graph's parameters with uniform values in [−1, 1) and its batch norms'
/// running statistics with means in [−1, 1) and variances in [0.05, 3) drawn from `seed`.
func fillParametersAndStatistics(_ g: EngineGraph, seed: UInt64) {
    var rng = TestRandom(seed)
    for i in 0..<g.parameterCount { g.parameterValues[i] = Float(2 * rng.uniform() - 1) }
    for b in g.buffers {
        for i in 0..<b.count {
            b.value[i] = b.name.hasSuffix("running_var") ? Float(0.05 + 2.95 * rng.uniform()) : Float(2 * rng.uniform() - 1)
        }
    }
}

/// "median (min-max)" of benchmark times, one decimal.
func medianAndRange(_ v: [Double]) -> String {
    let s = v.sorted()
    return String(format: "%.1f (%.1f-%.1f)", s[s.count / 2], s[0], s[s.count - 1])
}

/// Benchmarks graphs compiled for inference only against each other: random normal images,
/// two warm-up passes each, then `rounds` rounds of one profiled pass per graph in turn;
/// `record(graph index, graph, milliseconds of the pass)` after each (the graph's
/// `forwardSeconds` then hold that pass's per-node times).
func alternateInferencePasses(_ graphs: [EngineGraph], batch: Int, rounds: Int,
                              _ record: (Int, EngineGraph, Double) -> Void) {
    var r = TestRandom(1)
    let x = r.normals(batch * graphs[0].inputShape.count)
    for g in graphs { for _ in 0..<2 { g.forward(x, batch: batch, training: false) } }
    for _ in 0..<rounds {
        for (i, g) in graphs.enumerated() {
            g.profiling = true
            let t0 = DispatchTime.now().uptimeNanoseconds
            g.forward(x, batch: batch, training: false)
            record(i, g, Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-6)
            g.profiling = false
        }
    }
}

/// Milliseconds a profiled graph's forward passes spent in the nodes whose op `isKind` accepts.
func forwardMilliseconds(_ g: EngineGraph, _ isKind: (EngineOp) -> Bool) -> Double {
    1000 * (1..<g.nodeCount).filter { g.op(of: $0).map(isKind) ?? false }.reduce(0) { $0 + g.forwardSeconds[$1] }
}

/// Whether two float arrays are bit-identical.
func bitIdentical(_ a: [Float], _ b: [Float]) -> Bool {
    a.count == b.count && a.elementsEqual(b) { $0.bitPattern == $1.bitPattern }
}

/// NaN: fills memory a kernel must overwrite before reading (outputs, scratch) and samples
/// beyond the batch, so that reading it shows in the results.
let poison = Float.nan

extension TestRandom {
    /// A random element.
    mutating func pick<T>(_ values: [T]) -> T { values[int(values.count)] }
}

/// A test case whose tests run Winograd on small maps too (`ConvKernel.winogradMinTiles` 0: the
/// engine's rule would give their few-tile layers to the direct kernels), restored after each
/// test.
class WinogradOnSmallMapsTestCase: XCTestCase {
    private var savedTiles = ConvKernel.winogradMinTiles
    override func setUp() {
        super.setUp()
        savedTiles = ConvKernel.winogradMinTiles
        ConvKernel.winogradMinTiles = 0
    }
    override func tearDown() {
        ConvKernel.winogradMinTiles = savedTiles
        super.tearDown()
    }
}
