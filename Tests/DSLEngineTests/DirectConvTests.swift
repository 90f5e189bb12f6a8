import Foundation
import XCTest
@testable import DSLEngine

/// The direct convolution kernels (DirectConv.swift) against the im2col + GEMM path, on shapes
/// that hit their edge cases: widths not a multiple of the 8-pixel tile, channel counts not a
/// multiple of 48 (ragged channel blocks) and exact multiples (full tiles), IC = 3, strides 1
/// and 2, 'valid' and large padding; plus gradient checks with the direct backward-data forced.
final class DirectConvTests: XCTestCase {
    // Winograd is kept off: it has its own tests (WinogradTests).
    override func setUp() { ConvKernel.winogradOverride = false }
    override func tearDown() { ConvKernel.directOverride = nil; ConvKernel.winogradOverride = nil }

    /// Forward output, dW, db and dX of one convolution for batch 3 with the given kernel choice.
    private func run(_ direct: Bool?, h: Int, w: Int, ic: Int, oc: Int, k: Int, s: Int, p: Int,
                     threads: Int = 2) throws -> [Float] {
        ConvKernel.directOverride = direct
        let saved = engineThreadCount
        engineThreadCount = threads
        defer { engineThreadCount = saved; ConvKernel.directOverride = nil }
        let g = EngineGraph(inputShape: (h, w, ic), maxBatch: 3, seed: 11)
        g.computesInputGradient = true
        let c = try g.add(.conv(kernel: k, stride: s, pad: p, outChannels: oc, bias: true), inputs: [0], name: "conv")
        let f = try g.add(.globalAvgPool, inputs: [c], name: "gap")
        try g.add(.softmax, inputs: [f], name: "softmax")
        try g.compile(training: true, reuseBuffers: false)
        var random = TestRandom(3)
        let x = random.normals(3 * h * w * ic)
        let labels = (0..<3).map { Int32($0 % oc) }
        g.forward(x, batch: 3, training: true)
        let convOut = Array(UnsafeBufferPointer(start: g.outputStorage(of: c), count: 3 * g.shape(of: c).count))
        g.backward(labels: labels, batch: 3)
        return convOut + Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount))
            + Array(UnsafeBufferPointer(start: g.inputGradient!, count: 3 * h * w * ic))
    }

    func testDirectKernelsMatchIm2colGemm() throws {
        let shapes: [(h: Int, w: Int, ic: Int, oc: Int, k: Int, s: Int, p: Int)] = [
            (9, 11, 48, 96, 3, 1, 1), (9, 11, 48, 50, 3, 2, 1), (7, 13, 20, 48, 3, 1, 0),
            (8, 8, 3, 96, 3, 1, 1), (10, 7, 50, 30, 5, 2, 2), (6, 9, 16, 53, 1, 2, 0),
            (5, 6, 49, 49, 3, 2, 2), (12, 5, 8, 48, 7, 1, 3), (6, 6, 96, 100, 3, 1, 2),
            (9, 9, 33, 64, 3, 2, 0), (4, 17, 64, 48, 5, 1, 4), (11, 10, 12, 80, 5, 1, 2), (13, 13, 3, 64, 7, 2, 3),
        ]
        for sh in shapes {
            let reference = try run(false, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc, k: sh.k, s: sh.s, p: sh.p)
            for mode in [nil, true] as [Bool?] {
                let direct = try run(mode, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc, k: sh.k, s: sh.s, p: sh.p)
                XCTAssertEqual(direct.count, reference.count)
                let scale = reference.map { abs($0) }.max() ?? 1
                var worst: Float = 0
                for (d, r) in zip(direct, reference) { worst = max(worst, abs(d - r) / (abs(r) + 1e-3 * scale)) }
                XCTAssertLessThan(worst, 1e-3, "\(sh) direct \(String(describing: mode))")
                let oneThread = try run(mode, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc, k: sh.k, s: sh.s, p: sh.p, threads: 1)
                XCTAssertTrue(oneThread.elementsEqual(direct) { $0.bitPattern == $1.bitPattern },
                              "\(sh): 1 and 2 threads differ")
            }
        }
    }

    /// A pass with fewer than `directMinJobs` (image, pixel band) jobs also deals its channel
    /// blocks out to jobs (`channelGroups`): one image alone (7×7 and 14×14 maps, one and four
    /// bands; ragged and whole blocks; slab and plain passes) gives the bits it gets inside a
    /// batch of eight, where every job runs all blocks.
    func testFewImagesSplitChannelBlocksWithTheSameBits() throws {
        ConvKernel.directOverride = true
        defer { ConvKernel.directOverride = nil }
        let shapes: [(h: Int, ic: Int, oc: Int, k: Int, s: Int, p: Int)] = [
            (7, 40, 320, 3, 1, 1), (14, 24, 100, 3, 1, 1), (7, 16, 130, 5, 1, 2), (9, 8, 200, 3, 2, 0), (7, 12, 96, 1, 2, 0),
        ]
        for sh in shapes {
            XCTAssertGreaterThan(channelGroups(spatialJobs: 1, blocks: (sh.oc + 47) / 48), 1)
            let g = EngineGraph(inputShape: (sh.h, sh.h, sh.ic), maxBatch: 8, seed: 5)
            let c = try g.add(.conv(kernel: sh.k, stride: sh.s, pad: sh.p, outChannels: sh.oc, bias: true), inputs: [0], name: "conv")
            try g.add(.globalAvgPool, inputs: [c], name: "gap")
            try g.compile(training: false)
            XCTAssertEqual(g.algorithm(of: c), "direct", "\(sh)")
            var random = TestRandom(9)
            let x = random.normals(8 * sh.h * sh.h * sh.ic)
            let perImage = g.shape(of: c).count
            g.forward(x, batch: 8, training: false)
            let batch8 = Array(UnsafeBufferPointer(start: g.outputStorage(of: c), count: perImage))
            for threads in [1, 2] {
                let saved = engineThreadCount
                engineThreadCount = threads
                defer { engineThreadCount = saved }
                // Whatever a job would leave unwritten stays NaN.
                UnsafeMutablePointer(mutating: g.outputStorage(of: c)).update(repeating: .nan, count: perImage)
                g.forward(x, batch: 1, training: false)
                let alone = Array(UnsafeBufferPointer(start: g.outputStorage(of: c), count: perImage))
                XCTAssertTrue(alone.elementsEqual(batch8) { $0.bitPattern == $1.bitPattern }, "\(sh), \(threads) threads")
            }
        }
    }

    /// The weight gradient's ragged channel blocks (fewer than 48 output channels left) run 16
    /// lanes at a time on their whole 16-channel groups: the same bits as the scalar loop they
    /// replace (unfused multiply-adds in the same order), whole groups of 1 and 2 with and
    /// without scalar columns after them, through the in-place and the partial-sum reductions,
    /// on odd and prime channel counts, 1×1 maps, 1×1 kernels with stride 2, strides 1-3; 1 and 2
    /// threads alike.
    func testRaggedWeightTilesKeepTheScalarBits() throws {
        let shapes: [(h: Int, w: Int, ic: Int, oc: Int, k: Int, s: Int, p: Int)] = [
            (9, 11, 48, 64, 3, 2, 1), (7, 9, 64, 80, 3, 1, 1), (6, 10, 50, 120, 5, 2, 2),
            (8, 8, 3, 40, 3, 1, 1), (7, 7, 48, 100, 3, 1, 1), (5, 13, 56, 17, 3, 2, 0),
            (11, 7, 53, 67, 3, 1, 1), (1, 1, 48, 64, 3, 1, 1), (1, 1, 61, 83, 3, 1, 1),
            (9, 9, 48, 79, 1, 2, 0), (13, 5, 97, 113, 5, 3, 2),
        ]
        defer { raggedWeightTilesVectorized = true }
        for sh in shapes {
            raggedWeightTilesVectorized = false
            let scalar = try run(true, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc, k: sh.k, s: sh.s, p: sh.p)
            raggedWeightTilesVectorized = true
            let vector = try run(true, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc, k: sh.k, s: sh.s, p: sh.p)
            XCTAssertTrue(vector.elementsEqual(scalar) { $0.bitPattern == $1.bitPattern }, "\(sh)")
            let oneThread = try run(true, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc, k: sh.k, s: sh.s, p: sh.p, threads: 1)
            XCTAssertTrue(oneThread.elementsEqual(vector) { $0.bitPattern == $1.bitPattern }, "\(sh): 1 and 2 threads differ")
            let reference = try run(false, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc, k: sh.k, s: sh.s, p: sh.p)
            let scale = reference.map { abs($0) }.max() ?? 1
            var worst: Float = 0
            for (d, r) in zip(vector, reference) { worst = max(worst, abs(d - r) / (abs(r) + 1e-3 * scale)) }
            XCTAssertLessThan(worst, 1e-3, "\(sh) against im2col + GEMM")
        }
    }

    /// Built and run on an AVX-512 machine (ours), the first layer's non-temporal stores are on:
    /// Package.swift's DSL_AVX512 condition reached the engine.
    func testNonTemporalStoresOnAVX512Machines() throws {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else {
            throw XCTSkip("no /proc/cpuinfo")
        }
        let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        XCTAssertEqual(hasAVX512F, flags.split(separator: " ").contains("avx512f"))
    }

    func testConvolutionGradientsWithDirectBackwardData() throws {
        ConvKernel.directOverride = true
        try checkConvolutionConfigurations("direct conv")
        let report = try GradientChecker().check(input: (6, 9, 48)) { g in
            try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 50, bias: true), inputs: [0], name: "conv1")
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 48, bias: true), inputs: [1], name: "conv2")
        }
        assertGradientsMatch(report, "direct conv, wide channels")
    }
}
