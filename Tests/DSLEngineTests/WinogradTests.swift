import XCTest
@testable import DSLEngine

/// Winograd F(4×4, 3×3) (Winograd.swift) against the im2col + GEMM path: forward, dW, db and dX
/// on shapes with ragged 4×4 tiles (sizes not a multiple of 4, 'valid' and pad 2), channel
/// counts not a multiple of 16 or 48, one image and several; plus finite-difference gradient
/// checks with Winograd forced, and bit-identical results with 1 and 2 threads.
final class WinogradTests: XCTestCase {
    override func tearDown() {
        ConvKernel.directOverride = nil
        ConvKernel.winogradOverride = nil
        winogradTilesPerJob = 16
        winogradTilesPerWeightBlock = 128
        winogradWeightBlockBytes = 1 << 20
        winogradMinWeightBlock = 32
    }

    /// Forward output, parameter gradients and dX of one 3×3 stride-1 convolution.
    private func run(winograd: Bool, batch: Int, h: Int, w: Int, ic: Int, oc: Int, p: Int,
                     threads: Int = 2) throws -> [[Float]] {
        ConvKernel.directOverride = winograd ? nil : false
        ConvKernel.winogradOverride = winograd
        let saved = engineThreadCount
        engineThreadCount = threads
        defer { engineThreadCount = saved; ConvKernel.directOverride = nil; ConvKernel.winogradOverride = nil }
        let g = EngineGraph(inputShape: (h, w, ic), maxBatch: batch, seed: 5)
        g.computesInputGradient = true
        let c = try g.add(.conv(kernel: 3, stride: 1, pad: p, outChannels: oc, bias: true), inputs: [0], name: "conv")
        let f = try g.add(.globalAvgPool, inputs: [c], name: "gap")
        try g.add(.softmax, inputs: [f], name: "softmax")
        try g.compile(training: true, reuseBuffers: false)
        var random = TestRandom(7)
        let x = random.normals(batch * h * w * ic)
        let labels = (0..<batch).map { Int32($0 % oc) }
        g.forward(x, batch: batch, training: true)
        let convOut = Array(UnsafeBufferPointer(start: g.outputStorage(of: c), count: batch * g.shape(of: c).count))
        g.backward(labels: labels, batch: batch)
        let weights = 9 * ic * oc
        let grads = Array(UnsafeBufferPointer(start: g.parameterGrads, count: g.parameterCount))
        return [convOut, Array(grads[..<weights]), Array(grads[weights...]),
                Array(UnsafeBufferPointer(start: g.inputGradient!, count: batch * h * w * ic))]
    }

    /// Fails where |fast − reference| > 1e-3·|reference| + 1e-4·(largest |reference| of the tensor):
    /// Winograd's fp32 rounding is relative to the magnitudes summed, not to each result.
    private func assertClose(_ fast: [[Float]], _ reference: [[Float]], _ message: String) {
        let names = ["output", "dW", "db", "dX"]
        for (k, (f, r)) in zip(fast, reference).enumerated() {
            XCTAssertEqual(f.count, r.count)
            let scale = r.map { abs($0) }.max() ?? 0
            if let i = f.indices.first(where: { abs(f[$0] - r[$0]) > 1e-3 * abs(r[$0]) + 1e-4 * scale }) {
                XCTFail("\(message): \(names[k])[\(i)] = \(f[i]), expected \(r[i]) (largest \(scale))")
            }
        }
    }

    func testWinogradMatchesIm2colGemm() throws {
        let shapes: [(batch: Int, h: Int, w: Int, ic: Int, oc: Int, p: Int)] = [
            (2, 8, 8, 16, 48, 1), (3, 9, 11, 20, 50, 1), (1, 7, 13, 48, 96, 0), (2, 6, 6, 96, 100, 2),
            (3, 5, 9, 17, 16, 1), (2, 4, 4, 33, 64, 0), (1, 13, 3, 64, 20, 1), (2, 3, 3, 16, 16, 2),
        ]
        for sh in shapes {
            let reference = try run(winograd: false, batch: sh.batch, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc, p: sh.p)
            let fast = try run(winograd: true, batch: sh.batch, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc, p: sh.p)
            assertClose(fast, reference, "\(sh)")
            let oneThread = try run(winograd: true, batch: sh.batch, h: sh.h, w: sh.w, ic: sh.ic, oc: sh.oc,
                                    p: sh.p, threads: 1)
            XCTAssertTrue(oneThread.joined().elementsEqual(fast.joined()) { $0.bitPattern == $1.bitPattern },
                          "\(sh): 1 and 2 threads differ")
        }
    }

    /// Several forward jobs and backward-weights blocks, the last ones ragged.
    func testSmallJobsAndBlocks() throws {
        let reference = try run(winograd: false, batch: 3, h: 10, w: 9, ic: 24, oc: 40, p: 1)
        winogradTilesPerJob = 8
        winogradTilesPerWeightBlock = 10
        let fast = try run(winograd: true, batch: 3, h: 10, w: 9, ic: 24, oc: 40, p: 1)
        assertClose(fast, reference, "8-tile jobs, 10-tile blocks")
    }

    /// Input channels a multiple of 8 (no ragged 8-row tile of dU): the backward-weights block
    /// size (which `winogradWeightBlock` fits to L2) does not change a bit of any result; blocks
    /// of 8, 24 and 128 tiles over 3 images of 13×11 (48 tiles; the last block ragged), for 24
    /// channels into 20 (the 8×32 kernel), 16 into 64 (a last panel of 16 columns) and 48 into 96
    /// (full 8×48 tiles).
    func testBlockSizeDoesNotChangeTheBits() throws {
        for (ic, oc) in [(24, 20), (16, 64), (48, 96)] {
            var results: [[[Float]]] = []
            for block in [8, 24, 128] {
                winogradTilesPerWeightBlock = block
                winogradWeightBlockBytes = Int.max / 2
                results.append(try run(winograd: true, batch: 3, h: 13, w: 11, ic: ic, oc: oc, p: 1))
            }
            for (k, r) in results.enumerated().dropFirst() {
                XCTAssertTrue(r[1].elementsEqual(results[0][1]) { $0.bitPattern == $1.bitPattern },
                              "\(ic) → \(oc): dW with blocks of \([8, 24, 128][k]) tiles differs from blocks of 8")
            }
        }
    }

    /// The backward-weights block: V and G of at most `winogradWeightBlockBytes` (at least
    /// `winogradMinWeightBlock` tiles, a multiple of 8) when the input channels are a multiple of
    /// 8; `winogradTilesPerWeightBlock` for a layer with a ragged 8-row tile; never beyond the
    /// scratch.
    func testWeightBlockFitsL2() {
        func shape(_ c: Int, _ oc: Int) -> WinogradShape {
            WinogradShape(h: 32, w: 32, c: c, pad: 1, oh: 32, ow: 32, oc: oc)
        }
        let big = 1 << 30
        // 96 → 96: 36·(96 + 96)·4 = 27,648 bytes a tile; 1 MiB holds 37, rounded down to 32.
        XCTAssertEqual(winogradWeightBlock(shape(96, 96), scratchFloats: big), 32)
        // 192 → 192: 18 tiles fit; the floor of 32 applies.
        XCTAssertEqual(winogradWeightBlock(shape(192, 192), scratchFloats: big), 32)
        // 16 → 16: 36·(16 + 48)·4 = 9,216 bytes; 113 fit → 112.
        XCTAssertEqual(winogradWeightBlock(shape(16, 16), scratchFloats: big), 112)
        // 20 input channels: a ragged row tile, the block stays at 128.
        XCTAssertEqual(winogradWeightBlock(shape(20, 96), scratchFloats: big), 128)
        // The scratch limits it: room for 9 tiles (a multiple of 8 is not required there).
        XCTAssertEqual(winogradWeightBlock(shape(96, 96), scratchFloats: 9 * 36 * 192), 9)
        XCTAssertEqual(winogradWeightBlock(shape(96, 96), scratchFloats: 7 * 36 * 192), 0)
    }

    /// The kernel is chosen by shape: 3×3 stride 1 with ≥ 16 channels on both sides, and at
    /// least `winogradMinTiles` 4×4 output tiles per call (batch × tiles per image); for
    /// inference only, `winogradMinInferenceTiles` when the output is whole tiles.
    func testChosenByShape() throws {
        XCTAssertEqual(ConvKernel.winogradMinTiles, 32)
        XCTAssertEqual(ConvKernel.winogradMinInferenceTiles, 16)
        // 8×8 maps: 4 whole tiles per image. Training needs 32 tiles (batch 8, not 7); inference
        // 16 (batch 4, not 3). 6×6 maps: 4 tiles per image, partly outside the map: 32 for both.
        for (side, batch, training, chosen) in [(8, 7, true, false), (8, 8, true, true), (8, 1, true, false),
                                                (8, 3, false, false), (8, 4, false, true), (8, 7, false, true),
                                                (6, 4, false, false), (6, 7, false, false), (6, 8, false, true)] {
            let g = EngineGraph(inputShape: (side, side, 16), maxBatch: batch, seed: 1)
            let a = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 16, bias: true), inputs: [0], name: "a")
            if training {
                let f = try g.add(.globalAvgPool, inputs: [a], name: "gap")
                try g.add(.softmax, inputs: [f], name: "softmax")
            }
            try g.compile(training: training)
            XCTAssertEqual(g.algorithm(of: a) == "winograd", chosen, "\(side)×\(side), batch \(batch), training \(training)")
        }
        let g = EngineGraph(inputShape: (8, 8, 16), maxBatch: 8, seed: 1)
        let a = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 16, bias: true), inputs: [0], name: "a")
        let b = try g.add(.conv(kernel: 3, stride: 2, pad: 1, outChannels: 48, bias: true), inputs: [a], name: "b")
        let c = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 8, bias: true), inputs: [b], name: "c")
        let d = try g.add(.conv(kernel: 3, stride: 1, pad: 3, outChannels: 16, bias: true), inputs: [c], name: "d")
        let f = try g.add(.globalAvgPool, inputs: [d], name: "gap")
        try g.add(.softmax, inputs: [f], name: "softmax")
        try g.compile(training: true)
        XCTAssertEqual(g.algorithm(of: a), "winograd")
        XCTAssertNotEqual(g.algorithm(of: b), "winograd")   // stride 2
        XCTAssertNotEqual(g.algorithm(of: c), "winograd")   // 8 output channels
        XCTAssertNotEqual(g.algorithm(of: d), "winograd")   // padding 3 (backward-data needs ≤ 2)
        // Very wide layers keep their memory: 36 · 720 · 720 transformed floats is over the limit.
        let wide = EngineGraph(inputShape: (2, 2, 720), maxBatch: 1, seed: 1)
        let w = try wide.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 720, bias: false), inputs: [0], name: "w")
        try wide.compile(training: false)
        XCTAssertNotEqual(wide.algorithm(of: w), "winograd")
        XCTAssertGreaterThan(36 * 720 * 720, ConvKernel.winogradMaxTransformedFloats)
    }

    /// Training needs room for a block of transformed tiles in the shared scratch; without it
    /// the convolution falls back to the other kernels (and still computes the same result).
    func testFallsBackWhenTheScratchIsTooSmall() throws {
        let saved = ConvKernel.columnBudgetFloats
        defer { ConvKernel.columnBudgetFloats = saved }
        ConvKernel.columnBudgetFloats = 1
        let g = EngineGraph(inputShape: (4, 4, 16), maxBatch: 32, seed: 1)
        let a = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 16, bias: true), inputs: [0], name: "a")
        let f = try g.add(.globalAvgPool, inputs: [a], name: "gap")
        try g.add(.softmax, inputs: [f], name: "softmax")
        try g.compile(training: true)
        XCTAssertNotEqual(g.algorithm(of: a), "winograd")
        let inference = EngineGraph(inputShape: (4, 4, 16), maxBatch: 32, seed: 1)
        let b = try inference.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 16, bias: true), inputs: [0], name: "a")
        try inference.compile(training: false)
        XCTAssertEqual(inference.algorithm(of: b), "winograd")   // forward only: no block needed
    }

    /// An inference-only graph (no backward buffers) computes the same forward output.
    /// Batch 1 on a 16×16 output (16 tiles): the inference graph runs Winograd, as one job of 16
    /// tiles on one thread and two of 8 on two; the output has the same bits either way, and
    /// the same as a training graph's forward (Winograd forced there: training needs 32 tiles).
    /// Also over a grid (inference, Winograd forced, 1 against 2 threads): odd and prime channel
    /// counts, a 12×12 map (9 tiles: jobs of 8 and 1), 5×5 (4 tiles, partial), batch 2 of 8×8,
    /// a 1×1 map.
    func testBatchOneInferenceSplitsTilesWithoutChangingTheBits() throws {
        let saved = engineThreadCount
        defer { engineThreadCount = saved; ConvKernel.winogradOverride = nil }
        let shapes = [(16, 1, 24, 40, false), (16, 1, 17, 29, true), (12, 1, 13, 31, true),
                      (5, 1, 29, 16, true), (8, 2, 48, 50, true), (1, 1, 19, 17, true)]
        for (side, batch, ic, oc, forced) in shapes {
            var random = TestRandom(5)
            let x = random.normals(batch * side * side * ic)
            var outputs: [[Float]] = []
            // (A training graph forced to Winograd falls back where its backward-weights block does
            // not fit the batch-1 scratch: compared for the first shape only.)
            let runs = forced ? [(1, false), (2, false)] : [(1, false), (2, false), (2, true)]
            for (threads, training) in runs {
                engineThreadCount = threads
                ConvKernel.winogradOverride = training || forced ? true : nil
                let g = EngineGraph(inputShape: (side, side, ic), maxBatch: batch, seed: 9)
                let c = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: oc, bias: true), inputs: [0], name: "c")
                let f = try g.add(.globalAvgPool, inputs: [c], name: "gap")
                try g.add(.softmax, inputs: [f], name: "softmax")
                try g.compile(training: training)
                let label = "\(side)×\(side)×\(ic) → \(oc), batch \(batch), \(threads) threads, training \(training)"
                XCTAssertEqual(g.algorithm(of: c), "winograd", label)
                g.forward(x, batch: batch, training: false)
                outputs.append(Array(UnsafeBufferPointer(start: g.outputStorage(of: c), count: batch * g.shape(of: c).count)))
            }
            for o in outputs.dropFirst() {
                XCTAssertTrue(outputs[0].elementsEqual(o) { $0.bitPattern == $1.bitPattern }, "\(side)×\(side)×\(ic) → \(oc)")
            }
        }
    }

    func testInferenceGraphMatchesTrainingGraph() throws {
        var random = TestRandom(3)
        let x = random.normals(2 * 12 * 12 * 24)
        var outputs: [[Float]] = []
        let savedTiles = ConvKernel.winogradMinTiles
        defer { ConvKernel.winogradMinTiles = savedTiles }
        ConvKernel.winogradMinTiles = 0
        for training in [true, false] {
            let g = EngineGraph(inputShape: (12, 12, 24), maxBatch: 2, seed: 9)
            let c = try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 40, bias: true), inputs: [0], name: "c")
            let f = try g.add(.globalAvgPool, inputs: [c], name: "gap")
            try g.add(.softmax, inputs: [f], name: "softmax")
            try g.compile(training: training)
            XCTAssertEqual(g.algorithm(of: c), "winograd")
            g.forward(x, batch: 2, training: false)
            outputs.append(Array(UnsafeBufferPointer(start: g.outputStorage(of: c), count: 2 * g.shape(of: c).count)))
        }
        XCTAssertTrue(outputs[0].elementsEqual(outputs[1]) { $0.bitPattern == $1.bitPattern })
    }

    func testWinogradGradients() throws {
        ConvKernel.winogradOverride = true
        for (p, bias) in [(1, true), (0, false), (2, true)] {
            let report = try GradientChecker().check(input: (6, 7, 3)) { g in
                try g.add(.conv(kernel: 3, stride: 1, pad: p, outChannels: 5, bias: bias), inputs: [0], name: "conv1")
            }
            assertGradientsMatch(report, "winograd conv p\(p) bias \(bias)")
        }
        let report = try GradientChecker().check(input: (5, 9, 16)) { g in
            try g.add(.conv(kernel: 3, stride: 1, pad: 1, outChannels: 20, bias: true), inputs: [0], name: "conv1")
            try g.add(.conv(kernel: 3, stride: 1, pad: 0, outChannels: 16, bias: false), inputs: [1], name: "conv2")
        }
        assertGradientsMatch(report, "winograd conv chain")
    }
}
