import XCTest
@testable import DSLEngine

/// Deterministic test data (SplitMix64 + Box–Muller), independent of the engine's own RNG.
struct TestRandom {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }
    mutating func normal() -> Float {
        let u1 = 1 - uniform(), u2 = uniform()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
    mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func normals(_ count: Int) -> [Float] { (0..<count).map { _ in normal() } }
    /// Distinct values spaced ≥ 0.02 apart and ≥ 0.01 from zero, in random order: finite
    /// differences with step ≤ 0.005 never cross a ReLU kink or change a max-pool winner.
    mutating func spaced(_ count: Int) -> [Float] {
        var values = (0..<count).map { Float($0 - count / 2) * 0.02 + 0.01 }
        for i in stride(from: count - 1, to: 0, by: -1) { values.swapAt(i, int(i + 1)) }
        return values
    }
}

/// Outcome of a finite-difference gradient check.
struct GradientCheckReport: CustomStringConvertible {
    var checked = 0
    var failures: [String] = []
    /// Entries whose one-sided differences disagree by more than the mismatch (a kink was crossed).
    var nonsmoothSkipped = 0
    var worstRelativeError: Double = 0
    var passed: Bool { failures.isEmpty && nonsmoothSkipped * 10 <= max(checked, 20) }
    var description: String {
        "checked \(checked), failed \(failures.count), skipped as nonsmooth \(nonsmoothSkipped), worst relative error "
            + String(format: "%.2e", worstRelativeError) + " (entries above the absolute floor)" + (failures.isEmpty ? "" : "\n" + failures.prefix(30).joined(separator: "\n"))
    }
}

/// Finite-difference gradient check of a whole graph: the analytic gradients of `backward`
/// (parameters and input) against central differences of the softmax cross-entropy loss.
struct GradientChecker {
    var batch = 2
    var step: Float = 1e-2
    /// Entries checked per parameter tensor and for the input.
    var entriesPerTensor = 40
    var relativeTolerance = 1e-2
    /// Absolute slack as a fraction of the largest analytic gradient magnitude.
    var absoluteTolerance = 2e-3
    /// Input values: "normal" N(0,1) or spaced distinct values (for kinks).
    var spacedInput = false
    /// Input values are multiplied by this (spaced values 0.02·scale apart, to reach kinks at ±3 and 6).
    var inputScale: Float = 1
    var seed: UInt64 = 1
    /// Label smoothing of the loss (both the analytic gradient and the finite differences use it).
    var labelSmoothing: Float = 0
    /// The label smoothing of the analytic gradient when not `labelSmoothing` (to show the check can fail).
    var backwardLabelSmoothing: Float?
    /// Changes the analytic gradients before the comparison (to show the check can fail).
    var corruptAnalytic: ((inout [Float]) -> Void)?

    /// Builds the graph with `build` (a softmax is appended if the graph does not end in one),
    /// compiles it for training, and compares gradients.
    func check(input: (h: Int, w: Int, c: Int), reuseBuffers: Bool = true,
               build: (EngineGraph) throws -> Void) throws -> GradientCheckReport {
        let graph = EngineGraph(inputShape: input, maxBatch: batch, seed: seed)
        graph.computesInputGradient = true
        try build(graph)
        if graph.op(of: graph.nodeCount - 1) != .softmax {
            try graph.add(.softmax, inputs: [graph.nodeCount - 1], name: "softmax")
        }
        try graph.compile(training: true, reuseBuffers: reuseBuffers)
        var random = TestRandom(seed &+ 77)
        // Non-trivial affine parameters: biases and BN scales away from their 0/1 initialisation.
        for parameter in graph.parameters where parameter.name.hasSuffix(".bias") || parameter.shape.count == 1 {
            for i in 0..<parameter.count { parameter.value[i] += 0.3 * random.normal() }
        }
        let inputCount = batch * graph.inputShape.count
        let x = (spacedInput ? random.spaced(inputCount) : random.normals(inputCount)).map { $0 * inputScale }
        let classes = graph.classCount
        let labels = (0..<batch).map { _ in Int32(random.int(classes)) }
        let dropoutSeed: UInt64 = 12345

        func lossAt(_ x: [Float]) -> Double {
            graph.reseedDropout(dropoutSeed)
            graph.forward(x, batch: batch, training: true)
            return graph.lossInDouble(labels: labels, batch: batch, labelSmoothing: labelSmoothing).loss
        }

        graph.reseedDropout(dropoutSeed)
        graph.forward(x, batch: batch, training: true)
        graph.backward(labels: labels, batch: batch, labelSmoothing: backwardLabelSmoothing ?? labelSmoothing)
        var analytic = Array(UnsafeBufferPointer(start: graph.parameterGrads, count: graph.parameterCount))
        analytic += Array(UnsafeBufferPointer(start: graph.inputGradient!, count: inputCount))
        corruptAnalytic?(&analytic)
        // Absolute slack is relative to the largest gradient of the same tensor.
        var tensorScale = [Double](repeating: 0, count: analytic.count)
        var ranges = graph.parameters.map { $0.offset..<($0.offset + $0.count) }
        ranges.append(graph.parameterCount..<analytic.count)
        for range in ranges {
            let largest = analytic[range].map { Double(abs($0)) }.max() ?? 0
            for i in range { tensorScale[i] = largest }
        }
        let baseline = lossAt(x)

        // Entries: a spread of indices from every parameter tensor and from the input.
        var entries: [(name: String, index: Int)] = []
        for parameter in graph.parameters {
            let n = min(entriesPerTensor, parameter.count)
            for e in 0..<n { entries.append((parameter.name, parameter.offset + (e * parameter.count) / n + random.int(max(1, parameter.count / n)))) }
        }
        let n = min(entriesPerTensor, inputCount)
        for e in 0..<n { entries.append(("input", graph.parameterCount + (e * inputCount) / n + random.int(max(1, inputCount / n)))) }

        var report = GradientCheckReport()
        let h = step
        for (name, index) in entries {
            let isInput = index >= graph.parameterCount
            func perturbed(_ delta: Float) -> Double {
                if isInput {
                    var moved = x
                    moved[index - graph.parameterCount] += delta
                    return lossAt(moved)
                }
                let original = graph.parameterValues[index]
                graph.parameterValues[index] = original + delta
                defer { graph.parameterValues[index] = original }
                return lossAt(x)
            }
            let plus = perturbed(h), minus = perturbed(-h)
            let numeric = (plus - minus) / (2 * Double(h))
            let a = Double(analytic[index])
            let mismatch = abs(a - numeric)
            report.checked += 1
            let allowed = relativeTolerance * max(abs(a), abs(numeric)) + absoluteTolerance * tensorScale[index] + 1e-7
            if mismatch <= allowed {
                if max(abs(a), abs(numeric)) > max(10 * absoluteTolerance * tensorScale[index], 1e-5) {
                    report.worstRelativeError = max(report.worstRelativeError, mismatch / max(abs(a), abs(numeric)))
                }
                continue
            }
            let forwardSlope = (plus - baseline) / Double(h), backwardSlope = (baseline - minus) / Double(h)
            if abs(forwardSlope - backwardSlope) > mismatch {
                report.nonsmoothSkipped += 1
                continue
            }
            report.failures.append("\(name)[\(index)]: analytic \(a), numeric \(numeric)")
        }
        return report
    }
}

extension EngineGraph {
    /// Forward on an array (test convenience).
    @discardableResult
    func forward(_ x: [Float], batch: Int, training: Bool) -> [Float] {
        let out = x.withUnsafeBufferPointer { forward($0.baseAddress!, batch: batch, training: training) }
        return Array(UnsafeBufferPointer(start: out, count: batch * outputShape.count))
    }

    /// Loss of the last forward pass for array labels.
    func lossInDouble(labels: [Int32], batch: Int, labelSmoothing: Float = 0) -> (loss: Double, correct: Int) {
        labels.withUnsafeBufferPointer { lossInDouble(labels: $0.baseAddress!, batch: batch, labelSmoothing: labelSmoothing) }
    }

    /// Backward for array labels.
    @discardableResult
    func backward(labels: [Int32], batch: Int, labelSmoothing: Float = 0) -> (loss: Float, correct: Int) {
        labels.withUnsafeBufferPointer { backward(labels: $0.baseAddress!, batch: batch, labelSmoothing: labelSmoothing) }
    }
}

/// Asserts a gradient check passed, printing its report.
func assertGradientsMatch(_ report: GradientCheckReport, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
    if ProcessInfo.processInfo.environment["DSL_GRADCHECK_VERBOSE"] != nil { print("gradient check \(label): \(report)") }
    XCTAssertTrue(report.passed, "\(label): \(report)", file: file, line: line)
    XCTAssertGreaterThan(report.checked, 0, file: file, line: line)
}

/// Gradient checks of a single convolution on a 7×7×3 input for every kernel size, stride and
/// padding the specs use (kernels 1, 3, 5, 7; strides 1, 2; 'same', 'valid' and wider padding),
/// under whatever kernel choice the caller has set.
func checkConvolutionConfigurations(_ label: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let configurations: [(kernel: Int, stride: Int, pad: Int, bias: Bool)] = [
        (1, 1, 0, true), (1, 2, 0, false), (1, 1, 1, true),
        (3, 1, 1, true), (3, 2, 1, false), (3, 1, 0, false), (3, 2, 2, true),
        (5, 1, 2, true), (5, 2, 2, false), (5, 1, 0, true),
        (7, 1, 3, false), (7, 2, 3, true), (7, 1, 0, false),
    ]
    for (k, s, p, bias) in configurations {
        let report = try GradientChecker().check(input: (7, 7, 3)) { g in
            try g.add(.conv(kernel: k, stride: s, pad: p, outChannels: 4, bias: bias), inputs: [0], name: "conv1")
        }
        assertGradientsMatch(report, "\(label) k\(k) s\(s) p\(p) bias \(bias)", file: file, line: line)
    }
}
