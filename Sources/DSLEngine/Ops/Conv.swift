// Convolution dispatcher (layouts in Layout.swift).
// inp is (B,H,W,C), weight is (K,K,C,OC), bias is (OC), out is (B,OH,OW,OC)
// - 1×1 stride-1 unpadded: plain GEMMs on the activations.
// - 3×3 stride-1 with at least 16 input and output channels and at least 32 4×4 output tiles
//   per call (`winogradMinTiles`; for inference only 16 when the output is whole tiles,
//   `winogradMinInferenceTiles`): Winograd F(4×4, 3×3) (Winograd.swift) for forward,
//   backward-data and backward-weights.
// - otherwise direct kernels (DirectConv.swift): forward (bias fused); backward-weights; and
//   backward-data, per class of dX pixels mod stride a direct convolution of the padded dY with
//   that class's rotated kernel taps. Forward and backward-data zero-pad per job in a
//   per-thread slab; backward-weights pads cache-sized chunks in the shared scratch.
// - fallback im2col + GEMM: col is (b·OH·OW, K·K·C) for a chunk of b samples (shared scratch,
//   rebuilt in backward); used for backward-data when direct would waste much work (few input
//   channels, 'valid' padding: col2im(dY × Wᵀ)), and when a padded sample does not fit the scratch.
// Forward saves nothing: backward re-reads the input. Every forward path adds the bias and, when
// the ReLU after it runs in place on the output (`fusedReLU`), applies it in the same store.
// Inference only, batch norm folded (`foldedNorm`, set by EngineGraph.compile): with the batch
// norm's eval-mode y = x·s + t per output channel, forward computes with W'[..,o] = W[..,o]·s[o]
// and b'[o] = b[o]·s[o] + t[o] (zero bias without one), so the batch norm's pass over the tensor
// disappears; results differ from the unfolded graph's in the last bits. W' and b' are computed
// again when the graph's `WeightGeneration` moved since they were (PackedWeightCache.swift).

/// Knobs of the engine's kernel choice that the fuzzer varies (tests set `ConvKernel`'s hooks).
public enum EngineTuning {
    /// The engine's default for `winogradMinTiles`.
    public static let defaultWinogradMinTiles = 32
    /// Fewest 4×4 output tiles per call for which a convolution is run with Winograd
    /// (`ConvKernel.winogradMinTiles`); 0 runs Winograd wherever it applies. Read at compile time.
    public static var winogradMinTiles: Int {
        get { ConvKernel.winogradMinTiles }
        set { ConvKernel.winogradMinTiles = newValue }
    }
}

/// Convolution kernel: forward = im2col × W (+ bias); backward = dW += colᵀ × dY, dX += col2im(dY × Wᵀ),
/// computed by the direct kernels or by im2col + GEMM (see above).
final class ConvKernel: EngineKernel {
    let io: UnaryTensors
    let kernel: Int
    let stride: Int
    let pad: Int
    let params: ParameterTensors
    let column: UnsafeMutablePointer<Float>
    /// The algorithms and workspace layout chosen from the shapes (see `ConvPlan`); the
    /// properties below read it.
    let plan: ConvPlan
    /// What backward computes (`EngineGraph.setTrainedParameters`): the weight and bias
    /// gradients of trained parameters only, the input gradient only where something before
    /// the convolution is trained. A skipped gradient is left as it was (zero).
    var trainsWeight = true, trainsBias = true, wantsInputGradient = true
    /// 1×1, stride 1, no padding: the input is its own col matrix.
    var isPointwise: Bool { plan.isPointwise }
    /// Samples per im2col chunk (fixed at compile time, so results do not depend on threads).
    var samplesPerChunk: Int { plan.samplesPerChunk }
    /// Winograd F(4×4, 3×3) for all three passes (see Winograd.swift).
    var winograd: Bool { plan.winograd }
    /// Geometry of the Winograd forward pass and of backward-data (dY → dX).
    var winogradForwardShape: WinogradShape { plan.winogradForwardShape }
    var winogradDataShape: WinogradShape { plan.winogradDataShape }
    /// Direct kernels: forward and backward-weights (padded input fits the scratch).
    var direct: Bool { plan.direct }
    /// Direct backward-data (unless it would cost clearly more than GEMM + col2im).
    var directData: Bool { plan.directData }
    /// Whether the weight gradient uses the direct kernel (else im2col + GEMM).
    var directWeights: Bool { plan.directWeights }
    /// Samples per padded chunk of the backward-weights pass (at most; see weightChunkFloats).
    var directChunk: Int { plan.directChunk }
    /// Backward-data pixel classes (dX pixels mod stride) and the padding of dY they need.
    var dataClasses: [DataClass] { plan.dataClasses }
    var dataPad: (top: Int, left: Int, hp: Int, wp: Int) { plan.dataPad }
    /// Floats of the partial sums of a small weight gradient (see `runWeightPass`).
    var weightPartialSumFloats: Int { plan.weightPartialSumFloats }
    /// Floats of the packed weights (forward, backward-data).
    var packedForwardFloats: Int { plan.packedForwardFloats }
    var packedBackwardFloats: Int { plan.packedBackwardFloats }
    let biasPartials: UnsafeMutablePointer<Double>
    /// Partial sums of a small weight gradient (see `runWeightPass`).
    let weightPartialSums: UnsafeMutablePointer<Float>
    /// Floats of the shared scratch (`column`).
    let columnFloats: Int
    /// Packed weights: forward [oc/48][k][k][ic][48], backward-data [ic/48][k][k][oc][48].
    let packedForward: UnsafeMutablePointer<Float>
    let packedBackward: UnsafeMutablePointer<Float>
    /// Set at compile time when the ReLU that follows runs in place on this output: forward then
    /// stores max(conv + bias, 0) and that ReLU's forward does nothing (`ReLUKernel.fused`).
    var fusedReLU = false
    /// Set at compile time (training) when this convolution's input is the output of a ReLU that
    /// alone reads its own input, and whose output only this convolution reads: backward-data
    /// multiplies dX by (input > 0) as it completes it, which is that ReLU's backward
    /// (`ReLUKernel.backwardInConvolution`; dX is then the ReLU's input gradient too). The
    /// Winograd pass does it in its output transform's store, the direct pass per job on the dX
    /// rows it has just completed, the GEMM paths in a pass of their own.
    var masksInputGradient = false
    /// Bias padded to a multiple of 48 (zeros when there is no bias).
    let paddedBias: UnsafeMutablePointer<Float>
    /// Input channels rounded up to 48 zeros when backward stores the input gradient
    /// (`storeInputGradient`): the initial value of the Winograd and direct passes' accumulators.
    private var gradientZeros: ZeroFloats? = nil
    var storesInputGradient: Bool { gradientZeros != nil }

    func storeInputGradient(_ input: Int) -> Bool {
        // The direct backward-data passes write only the pixels some tap reaches: with a stride
        // larger than the kernel, a class of pixels without taps would be left unwritten.
        if direct && directData && dataClasses.contains(where: { $0.tapsY == 0 || $0.tapsX == 0 }) { return false }
        gradientZeros = ZeroFloats(count: (io.inShape.channels + directNR - 1) / directNR * directNR)
        return true
    }
    /// In a graph compiled for inference only: the batch norm folded into this convolution
    /// (see the top of the file; `foldBatchNorm`), and the folded weights and bias.
    private(set) var foldedNorm: BatchNormKernel? = nil
    private var foldBlock: MemoryBlock? = nil
    /// The graph's weight generation (inference-only graphs), and its value when the folded
    /// weights were last computed (nil: never).
    let weightGeneration: WeightGeneration?
    private var foldedGeneration: UInt64? = nil
    /// Times the folded weights were computed (tests check that an unchanged call does not).
    private(set) var foldCount = 0
    /// In a graph compiled for inference only: the packed forward weights kept between calls
    /// (PackedWeightCache.swift); nil otherwise, and for the GEMM paths (which read W in place).
    let inferenceCache: PackedWeightCache?
    /// Winograd buffers: staged weights, transformed weights (forward, backward-data), dU.
    let winogradStage: UnsafeMutablePointer<Float>
    let winogradForward: UnsafeMutablePointer<Float>
    let winogradBackward: UnsafeMutablePointer<Float>
    let winogradGradient: UnsafeMutablePointer<Float>
    let winogradFloats: Int
    /// The kernel's own per-call buffers when the graph gave it no shared workspace (tests).
    let ownBlock: MemoryBlock?
    /// In a graph compiled for inference only, the 1×1 convolutions of the same input this one
    /// runs as one GEMM (itself first; PointwiseSiblings.swift), with its buffers in the
    /// graph's workspace (`siblingWorkspace`, laid out as `siblingLayout`); empty otherwise.
    var siblings: [ConvKernel] = []
    var siblingWorkspace: UnsafeMutableRawPointer? = nil
    /// The layout the graph sized the workspace for (at compile time).
    var siblingLayout: PointwiseSiblingLayout? = nil
    /// Set when another convolution's `siblings` holds this one: its inference forward does
    /// nothing (the leader stored its output).
    var runBySibling = false
    /// In a graph compiled for inference only, the other input of the add that alone reads this
    /// output, added as the output is stored (ResidualAdd.swift; Winograd and 1×1 GEMM only).
    var residual: ConvResidual? = nil

    /// Floats of col for one sample.
    static func columnFloatsPerSample(kernel: Int, input: EngineShape, output: EngineShape) -> Int {
        output.height * output.width * kernel * kernel * input.channels
    }

    /// Test hook: nil chooses kernels by shape; false forces im2col + GEMM everywhere; true
    /// forces the direct kernels wherever they apply (also backward-data).
    nonisolated(unsafe) static var directOverride: Bool? = nil

    /// Test hook: nil chooses by shape (unless `directOverride` is set); false never uses
    /// Winograd; true uses it wherever it applies (3×3, stride 1, padding ≤ 2).
    nonisolated(unsafe) static var winogradOverride: Bool? = nil

    /// Fewest input and output channels for which Winograd is chosen by shape.
    static let winogradMinChannels = 16

    /// Fewest 4×4 output tiles per call (batch × tiles per image) for which Winograd is chosen
    /// by shape. Winograd streams transformed weights 4× the size of the direct kernels' (36
    /// vs 9 per channel pair), reused once per 8-tile block: with few tiles that traffic costs
    /// more than the multiplications it saves. Measured at batch 1 (`dsl bench --batch 1`,
    /// inference, 2 threads): GoogLeNet's 14×14 layers (16 tiles) 0.26-0.49 ms with Winograd,
    /// 0.21-0.44 ms direct; All-CNN-C's 8×8 and 16×16 layers likewise (whole network 1.63 →
    /// 1.23-1.29 ms); the 28×28 layers (49 tiles) are faster with Winograd. (Tests and the
    /// fuzzer, through `EngineTuning`, lower it to run Winograd on small shapes.)
    nonisolated(unsafe) static var winogradMinTiles = EngineTuning.defaultWinogradMinTiles

    /// The same for a convolution compiled for inference only (no gradients) whose output is
    /// whole 4×4 tiles, when lower. There the transformed weights are packed once, not every
    /// step. Measured on the Xeon (batch 1, two threads, `dsl bench --batch 1`, five alternated
    /// runs): All-CNN-C's 16×16 layers (16 tiles) conv4 0.42 → 0.24 ms, conv5 0.81 → 0.40 ms,
    /// the network's inference 2.37–3.05 → 1.99–2.33 ms. GoogLeNet's 14×14 layers (16 tiles, a
    /// quarter of their area outside the map) stayed faster direct (the network 16.9–19.0 ms
    /// direct, 18.7–19.5 ms with them Winograd), as did All-CNN-C's 6×6 conv7 at 4 tiles (2.0–
    /// 2.8 ms with it Winograd). In training at batch 1 conv4 and conv5 were 1.6× slower with
    /// Winograd (its weights transformed and its dU built every step).
    nonisolated(unsafe) static var winogradMinInferenceTiles = 16

    /// Largest transformed weight matrix (36 · IC · OC', floats) for which Winograd is chosen:
    /// each Winograd layer keeps three of them (forward, backward-data, dU), 4× the weights'
    /// size each; wider layers (over ~680 channels in and out) use the direct kernels.
    static let winogradMaxTransformedFloats = 1 << 24

    /// Size budget of the shared im2col scratch in floats (tests lower it to force several chunks).
    static var columnBudgetFloats = 4 << 20

    /// Samples per im2col chunk: as many as fit in the budget, at least one.
    static func samplesPerChunk(kernel: Int, input: EngineShape, output: EngineShape, maxBatch: Int) -> Int {
        let perSample = columnFloatsPerSample(kernel: kernel, input: input, output: output)
        return max(1, min(maxBatch, columnBudgetFloats / max(1, perSample)))
    }

    /// A kernel on `s`, with its algorithms chosen by `ConvPlan` and its per-call buffers in
    /// `s.workspace` (shared by every convolution of a graph, which run one at a time) or, when
    /// that is nil, in a block of its own.
    init(kernel: Int, stride: Int, pad: Int, storage s: NodeStorage) throws {
        let plan = ConvPlan(kernel: kernel, stride: stride, pad: pad, input: s.inputShapes[0], output: s.outputShape,
                            maxBatch: s.maxBatch, columnFloats: s.columnScratchFloats,
                            inputGradient: s.inputGrads[0] != nil, outputGradient: s.outputGrad != nil)
        self.plan = plan
        io = UnaryTensors(s)
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
        params = ParameterTensors(s)
        column = s.columnScratch
        columnFloats = s.columnScratchFloats
        require(plan.isPointwise || plan.samplesPerChunk * ConvKernel.columnFloatsPerSample(
            kernel: kernel, input: io.inShape, output: io.outShape) <= s.columnScratchFloats)
        winogradFloats = plan.stageFloats + plan.forwardFloats + plan.backwardFloats + plan.gradientFloats
        require(s.workspace == nil || s.workspaceBytes >= plan.workspace.bytes, "convolution workspace too small")
        let (base, own) = try s.kernelWorkspace(plan.workspace)
        ownBlock = own
        let w = plan.offsets
        biasPartials = (base + w.biasPartials).assumingMemoryBound(to: Double.self)
        weightPartialSums = (base + w.weightPartialSums).assumingMemoryBound(to: Float.self)
        winogradStage = (base + w.stage).assumingMemoryBound(to: Float.self)
        winogradForward = (base + w.forward).assumingMemoryBound(to: Float.self)
        winogradBackward = (base + w.backward).assumingMemoryBound(to: Float.self)
        winogradGradient = (base + w.gradient).assumingMemoryBound(to: Float.self)
        packedForward = (base + w.packedForward).assumingMemoryBound(to: Float.self)
        packedBackward = (base + w.packedBackward).assumingMemoryBound(to: Float.self)
        paddedBias = (base + w.paddedBias).assumingMemoryBound(to: Float.self)
        let packedFloats = plan.packedForwardWeightFloats
        weightGeneration = s.weightGeneration
        let weightFloats = kernel * kernel * io.inShape.channels * io.outShape.channels
        inferenceCache = packedFloats > 0 ? try s.weightGeneration.map {
            try PackedWeightCache(weightFloats: weightFloats, packedFloats: packedFloats, generation: $0)
        } : nil
    }

    /// Floats of the folded weights and bias (`foldBatchNorm`'s block).
    static func foldedFloats(kernel: Int, input: EngineShape, output: EngineShape) -> Int {
        kernel * kernel * input.channels * output.channels + output.channels
    }

    /// Folds `norm` (eval mode, in place on this convolution's output) into the forward pass of
    /// a graph compiled for inference only. Allocates the folded weights' block.
    func foldBatchNorm(_ norm: BatchNormKernel) throws {
        var layout = MemoryLayout64()
        _ = layout.floats(ConvKernel.foldedFloats(kernel: kernel, input: io.inShape, output: io.outShape))
        foldBlock = try MemoryBlock(layout)
        foldedNorm = norm
        norm.isFolded = true
    }

    /// The weights and bias forward computes with: the parameters, or, with a folded batch
    /// norm on an inference call, W·s and b·s + t from its running statistics (computed again
    /// when the graph's weight generation moved since the last call: the statistics and
    /// weights may have been written).
    func forwardParameters(training: Bool) -> (weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?) {
        guard !training, let norm = foldedNorm, let block = foldBlock else {
            return (UnsafePointer(params.weight), params.bias.map { UnsafePointer($0) })
        }
        let oc = io.outShape.channels, rows = kernel * kernel * io.inShape.channels
        let folded = block.floats(at: 0), bias = folded + rows * oc
        let generation = weightGeneration?.value
        if generation != nil && foldedGeneration == generation {
            #if DEBUG
            // Debug builds (the test suite) check the caller's side of the contract.
            var check = [Float](repeating: 0, count: rows * oc + oc)
            check.withUnsafeMutableBufferPointer { fold(norm, into: $0.baseAddress!) }
            require(check.indices.allSatisfy { check[$0].bitPattern == folded[$0].bitPattern },
                    WeightGeneration.staleMessage)
            #endif
            return (UnsafePointer(folded), UnsafePointer(bias))
        }
        fold(norm, into: folded)
        foldedGeneration = generation
        foldCount += 1
        return (UnsafePointer(folded), UnsafePointer(bias))
    }

    /// Writes W·s (rows × OC) and then b·s + t (OC) of `norm`'s running statistics to `folded`.
    private func fold(_ norm: BatchNormKernel, into folded: UnsafeMutablePointer<Float>) {
        let oc = io.outShape.channels, rows = kernel * kernel * io.inShape.channels
        let (s, t) = norm.inferenceScaleShift()
        let w = UnsafePointer(params.weight), bias = folded + rows * oc
        for r in 0..<rows {
            let (src, dst) = (w + r * oc, folded + r * oc)
            for o in 0..<oc { dst[o] = src[o] * s[o] }
        }
        for o in 0..<oc { bias[o] = (params.bias?[o] ?? 0) * s[o] + t[o] }
    }

    /// Sets `paddedBias` to `bias` (zeros without one), zero-padded to a multiple of 48. The
    /// workspace is shared with the graph's other convolutions, so every pass refills it.
    func fillPaddedBias(_ bias: UnsafePointer<Float>?) {
        let oc = io.outShape.channels, padded = (oc + directNR - 1) / directNR * directNR
        if let bias { paddedBias.update(from: bias, count: oc) } else { paddedBias.update(repeating: 0, count: oc) }
        (paddedBias + oc).update(repeating: 0, count: padded - oc)
    }

    /// The packed forward weights: the inference cache's when there is one and this is not a
    /// training call, otherwise `pack` run into the shared workspace's `buffer`.
    private func forwardWeights(_ weight: UnsafePointer<Float>, training: Bool, buffer: UnsafeMutablePointer<Float>,
                                pack: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> UnsafePointer<Float> {
        if !training, let cache = inferenceCache { return cache.packedWeights(for: weight, pack: pack) }
        pack(weight, buffer)
        return UnsafePointer(buffer)
    }

    /// Forward with Winograd F(4×4, 3×3); bias is added by the output transform.
    func winogradForwardPass(batch: Int, training: Bool) {
        let (ic, oc) = (io.inShape.channels, io.outShape.channels)
        let (stage, mStride) = (winogradStage, winogradForwardShape.mStride)
        let (weight, bias) = forwardParameters(training: training)
        let packed = forwardWeights(weight, training: training, buffer: winogradForward) { w, into in
            winogradStageForward(w, ic: ic, oc: oc, into: stage)
            winogradPackWeights(stage, inC: ic, outP: mStride, into: into)
        }
        fillPaddedBias(bias)
        runWinogradPass(WinogradPass(shape: winogradForwardShape, samples: batch, source: UnsafePointer(io.input),
                                     packed: packed, output: io.output, bias: paddedBias, relu: fusedReLU,
                                     residual: training ? nil : residual))
    }

    /// dX += the stride-1 convolution of dY (padded by 2 − pad) with the rotated, transposed kernel.
    func winogradDataGradient(batch: Int, dOut: UnsafeMutablePointer<Float>, dIn: UnsafeMutablePointer<Float>) {
        let (ic, oc) = (io.inShape.channels, io.outShape.channels)
        winogradStageBackward(params.weight, ic: ic, oc: oc, into: winogradStage)
        winogradPackWeights(winogradStage, inC: oc, outP: winogradDataShape.mStride, into: winogradBackward)
        // Stored: the output transform adds the zeros as the forward pass adds a bias.
        runWinogradPass(WinogradPass(shape: winogradDataShape, samples: batch, source: UnsafePointer(dOut),
                                     packed: winogradBackward, output: dIn, bias: gradientZeros?.pointer,
                                     mask: masksInputGradient ? UnsafePointer(io.input) : nil))
    }

    /// Forward with the direct kernel; bias is added by the kernel. Padding is applied per job
    /// in a small per-thread slab (slab mode), so the whole batch is one pass.
    func directForward(batch: Int, training: Bool) {
        require(training || residual == nil, "a fused residual add needs the Winograd or 1×1 GEMM path")
        let (h, w, ic) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow, oc) = (io.outShape.height, io.outShape.width, io.outShape.channels)
        let k = kernel
        let (weight, bias) = forwardParameters(training: training)
        let packed = forwardWeights(weight, training: training, buffer: packedForward) { weights, into in
            packForwardWeights(weights, k: k, ic: ic, oc: oc, into: into)
        }
        fillPaddedBias(bias)
        let (hp, wp, s) = (h + 2 * pad, w + 2 * pad, stride)
        var pass = DirectPass(source: UnsafePointer(io.input), srcImage: hp * wp * ic, srcY: s * wp * ic, srcX: s * ic,
                              taps: kernel, tapStride: wp * ic, run: kernel * ic,
                              samples: batch, gridH: oh, gridW: ow, outC: oc,
                              packed: packed, output: io.output,
                              outImage: io.outShape.count, outY: ow * oc, outX: oc, initial: paddedBias, relu: fusedReLU)
        if pad > 0 {
            pass.slab = SlabSource(raw: UnsafePointer(io.input), h: h, w: w, c: ic, top: pad, left: pad, wp: wp,
                                   rowStep: s, rowOffset: 0, colStep: s, colOffset: 0)
        }
        runDirectPass(pass)
    }

    /// Whether the direct weight gradient also computes the bias gradient (small dW).
    var fusesBiasGradient: Bool {
        directWeights && params.biasGrad != nil
            && usesWeightPartials(kernel: kernel, c: io.inShape.channels, oc: io.outShape.channels)
    }

    /// dW += Σ input ⊗ dY with the direct kernel (and dB += Σ dY when `fusesBiasGradient`).
    func directWeightGradient(batch: Int, dOut: UnsafeMutablePointer<Float>) {
        let (h, w, ic) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (inCount, outCount) = (io.inShape.count, io.outShape.count)
        let (hp, wp) = (h + 2 * pad, w + 2 * pad)
        // Padded chunks of ≤ weightChunkFloats (1 MiB), so that the copy stays in cache.
        let chunk = pad == 0 ? batch : max(1, min(directChunk, weightChunkFloats / (hp * wp * ic)))
        var first = 0
        while first < batch {
            let samples = min(chunk, batch - first)
            let src: UnsafePointer<Float>
            if pad == 0 {
                src = UnsafePointer(io.input + first * inCount)
            } else {
                padCopy(io.input + first * inCount, samples: samples, h: h, w: w, c: ic,
                        top: pad, left: pad, hp: hp, wp: wp, into: column)
                src = UnsafePointer(column)
            }
            runWeightPass(WeightPass(source: src, hp: hp, wp: wp, c: ic, samples: samples,
                                     outH: io.outShape.height, outW: io.outShape.width, oc: io.outShape.channels,
                                     stride: stride, kernel: kernel,
                                     dY: UnsafePointer(dOut + first * outCount), dW: params.weightGrad,
                                     dB: fusesBiasGradient ? params.biasGrad : nil,
                                     partials: weightPartialSumFloats > 0 ? weightPartialSums : nil))
            first += samples
        }
    }

    /// dX += Σ dY ⊗ W with the direct kernel: for each class of dX pixels (y, x) mod stride, a
    /// direct convolution of the padded dY with that class's kernel taps, rotated and transposed
    /// (for stride 1 the single class is the usual full correlation with the rotated kernel).
    func directDataGradient(batch: Int, dOut: UnsafeMutablePointer<Float>, dIn: UnsafeMutablePointer<Float>) {
        let (oh, ow, oc) = (io.outShape.height, io.outShape.width, io.outShape.channels)
        let (h, w, ic) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let inCount = io.inShape.count
        let s = stride
        for cl in dataClasses where cl.tapsY > 0 && cl.tapsX > 0 {
            packBackwardWeights(params.weight, k: kernel, stride: s, ic: ic, oc: oc, class: cl,
                                into: packedBackward + cl.packedOffset)
        }
        let (top, left, hp, wp) = (dataPad.top, dataPad.left, dataPad.hp, dataPad.wp)
        let unpadded = hp == oh && wp == ow
        var passes: [DirectPass] = []
        for cl in dataClasses where cl.tapsY > 0 && cl.tapsX > 0 {
            let y0 = cl.ey - (cl.tapsY - 1) + top, x0 = cl.ex - (cl.tapsX - 1) + left
            var pass = DirectPass(
                source: UnsafePointer(dOut) + (y0 * wp + x0) * oc, srcImage: hp * wp * oc, srcY: wp * oc, srcX: oc,
                taps: cl.tapsY, tapStride: wp * oc, run: cl.tapsX * oc,
                samples: batch, gridH: (h - cl.ry + s - 1) / s, gridW: (w - cl.rx + s - 1) / s, outC: ic,
                packed: packedBackward + cl.packedOffset,
                output: dIn + (cl.ry * w + cl.rx) * ic,
                outImage: inCount, outY: s * w * ic, outX: s * ic, initial: gradientZeros?.pointer)
            if unpadded {
                runDirectPass(pass)
            } else {
                pass.slab = SlabSource(raw: UnsafePointer(dOut), h: oh, w: ow, c: oc, top: top, left: left, wp: wp,
                                       rowStep: 1, rowOffset: y0, colStep: 1, colOffset: x0)
                passes.append(pass)
            }
        }
        // All classes in one parallel loop: each job completes a band of dX for every class.
        let mask = inputGradientMask(dIn)
        runDirectPasses(passes, mask: unpadded ? nil : mask, maskStride: s)
        if unpadded, let mask { mask.apply(batch: batch) }
    }

    func forward(batch: Int, training: Bool) {
        if !training && runBySibling { return }
        if !training && !siblings.isEmpty {
            forwardSiblings(batch: batch)
            return
        }
        forwardAlone(batch: batch, training: training)
    }

    /// This convolution's forward pass on its own (see the top of the file).
    func forwardAlone(batch: Int, training: Bool) {
        if winograd {
            winogradForwardPass(batch: batch, training: training)
            return
        }
        if direct {
            directForward(batch: batch, training: training)
            return
        }
        let (inCount, outCount) = (io.inShape.count, io.outShape.count)
        let rowsPerSample = io.outShape.height * io.outShape.width
        let depth = kernel * kernel * io.inShape.channels
        let oc = io.outShape.channels
        let (weight, bias) = forwardParameters(training: training)
        var first = 0
        while first < batch {
            let samples = min(samplesPerChunk, batch - first)
            let a: UnsafePointer<Float>
            if isPointwise {
                a = UnsafePointer(io.input + first * inCount)
            } else {
                im2col(UnsafePointer(io.input + first * inCount), samples: samples)
                a = UnsafePointer(column)
            }
            sgemm(false, false, m: samples * rowsPerSample, n: oc, k: depth, a: a, lda: depth,
                  b: weight, ldb: oc, beta: 0, c: io.output + first * outCount, ldc: oc)
            first += samples
        }
        if !training, let residual {
            // The add after this convolution (ResidualAdd.swift): out = (out + bias) + r.
            require(isPointwise && !fusedReLU, "a fused residual add needs the 1×1 GEMM path without a ReLU")
            fillPaddedBias(bias)
            let rows = batch * rowsPerSample
            let (out, b, rc) = (io.output, bias == nil ? nil : UnsafePointer(paddedBias), residual.channels)
            let chunks = elementwiseChunks(rows * oc)
            parallelFor(chunks) { chunk in
                for r in chunkRange(chunk, of: chunks, count: rows) {
                    let row = out + r * oc
                    storeConvRow(row, from: row, count: oc, bias: b, relu: false, residual: (residual, residual.source + r * rc))
                }
            }
        } else if bias != nil || fusedReLU {
            fillPaddedBias(bias)
            let rows = batch * rowsPerSample
            let (out, bias, relu) = (io.output, UnsafePointer(paddedBias), fusedReLU)
            let chunks = elementwiseChunks(rows * oc)
            parallelFor(chunks) { chunk in
                for r in chunkRange(chunk, of: chunks, count: rows) {
                    storeConvRow(out + r * oc, from: out + r * oc, count: oc, bias: bias, relu: relu)
                }
            }
        }
    }

    /// "winograd", "gemm" (1×1), "direct" or "im2col+gemm", with the backward passes that differ.
    var algorithm: String? {
        if winograd { return "winograd" }
        if isPointwise { return "gemm" }
        if !direct { return "im2col+gemm" }
        var gemmParts: [String] = []
        if !directWeights { gemmParts.append("dW") }
        if io.inputGrad != nil && !directData { gemmParts.append("dX") }
        return gemmParts.isEmpty ? "direct" : "direct (\(gemmParts.joined(separator: ", ")): gemm)"
    }

    /// Its own buffers, if any (the shared workspace is counted once by the graph).
    var ownedScratchBytes: Int { (ownBlock?.bytes ?? 0) + (inferenceCache?.block.bytes ?? 0) + (foldBlock?.bytes ?? 0) }

    /// dW += colᵀ × dY over im2col chunks (the GEMM path of the weight gradient).
    func gemmWeightGradient(batch: Int, dOut: UnsafeMutablePointer<Float>) {
        let rowsPerSample = io.outShape.height * io.outShape.width
        let depth = kernel * kernel * io.inShape.channels
        var first = 0
        while first < batch {
            let samples = min(samplesPerChunk, batch - first)
            im2col(UnsafePointer(io.input + first * io.inShape.count), samples: samples)
            sgemm(true, false, m: depth, n: io.outShape.channels, k: samples * rowsPerSample, a: UnsafePointer(column), lda: depth,
                  b: UnsafePointer(dOut + first * io.outShape.count), ldb: io.outShape.channels, beta: 1, c: params.weightGrad, ldc: io.outShape.channels)
            first += samples
        }
    }

    func backward(batch: Int) {
        guard let dOut = io.outputGrad else { return }
        let dInput = wantsInputGradient ? io.inputGrad : nil
        // A stored input gradient nobody needs (setTrainedParameters): zeros, as it was.
        if !wantsInputGradient, storesInputGradient, let dIn = io.inputGrad { parallelZero(dIn, count: batch * io.inShape.count) }
        let biasGrad = trainsBias ? params.biasGrad : nil
        if winograd {
            if trainsWeight {
                runWinogradWeightGradient(shape: winogradForwardShape, samples: batch, input: UnsafePointer(io.input),
                                          dY: UnsafePointer(dOut), dW: params.weightGrad, dU: winogradGradient,
                                          scratch: column, scratchFloats: columnFloats)
            }
            if let dIn = dInput { winogradDataGradient(batch: batch, dOut: dOut, dIn: dIn) }
            if let biasGrad {
                accumulateColumnSums(dOut, rows: batch * io.outShape.height * io.outShape.width,
                                     columns: io.outShape.channels, partials: biasPartials, into: biasGrad)
            }
            return
        }
        if direct {
            if trainsWeight {
                if directWeights { directWeightGradient(batch: batch, dOut: dOut) } else { gemmWeightGradient(batch: batch, dOut: dOut) }
            }
            if let dIn = dInput {
                if directData {
                    directDataGradient(batch: batch, dOut: dOut, dIn: dIn)
                } else {
                    gemmDataGradient(batch: batch, dOut: dOut, dIn: dIn)
                    maskInputGradient(dIn, batch: batch)
                }
            }
            // The direct weight kernel sums the bias gradient as it goes; without it, sum here.
            if let biasGrad, !(fusesBiasGradient && trainsWeight) {
                accumulateColumnSums(dOut, rows: batch * io.outShape.height * io.outShape.width,
                                     columns: io.outShape.channels, partials: biasPartials, into: biasGrad)
            }
            return
        }
        let (inCount, outCount) = (io.inShape.count, io.outShape.count)
        let rowsPerSample = io.outShape.height * io.outShape.width
        let depth = kernel * kernel * io.inShape.channels
        let (ic, oc) = (io.inShape.channels, io.outShape.channels)
        var first = 0
        while first < batch {
            let samples = min(samplesPerChunk, batch - first)
            let rows = samples * rowsPerSample
            let dY = UnsafePointer(dOut + first * outCount)
            // dW += colᵀ × dY
            if trainsWeight {
                let col: UnsafePointer<Float>
                if isPointwise {
                    col = UnsafePointer(io.input + first * inCount)
                } else {
                    im2col(UnsafePointer(io.input + first * inCount), samples: samples)
                    col = UnsafePointer(column)
                }
                sgemm(true, false, m: depth, n: oc, k: rows, a: col, lda: depth, b: dY, ldb: oc,
                      beta: 1, c: params.weightGrad, ldc: oc)
            }
            // dX += col2im(dY × Wᵀ) (stored: beta 0, whose accumulators start from +0 as
            // beta 1's start from the zeroed gradient)
            if let dIn = dInput {
                if isPointwise {
                    sgemm(false, true, m: rows, n: ic, k: oc, a: dY, lda: oc, b: params.weight, ldb: oc,
                          beta: storesInputGradient ? 0 : 1, c: dIn + first * inCount, ldc: ic)
                } else {
                    sgemm(false, true, m: rows, n: depth, k: oc, a: dY, lda: oc, b: params.weight, ldb: oc,
                          beta: 0, c: column, ldc: depth)
                    col2im(dIn + first * inCount, samples: samples, zeroFirst: storesInputGradient)
                }
            }
            first += samples
        }
        if let dIn = dInput { maskInputGradient(dIn, batch: batch) }
        if let biasGrad {
            accumulateColumnSums(dOut, rows: batch * rowsPerSample, columns: oc,
                                 partials: biasPartials, into: biasGrad)
        }
    }

    /// The GEMM paths' dX, complete: times (input > 0) when `masksInputGradient`, in a pass.
    private func maskInputGradient(_ dIn: UnsafeMutablePointer<Float>, batch: Int) {
        inputGradientMask(dIn)?.apply(batch: batch)
    }

    /// dX's mask by this convolution's input when `masksInputGradient`, else nil.
    private func inputGradientMask(_ dIn: UnsafeMutablePointer<Float>) -> GradientMask? {
        guard masksInputGradient else { return nil }
        return GradientMask(gradient: dIn, input: UnsafePointer(io.input), h: io.inShape.height,
                            w: io.inShape.width, c: io.inShape.channels)
    }

    /// dX += col2im(dY × Wᵀ), chunk by chunk (im2col-sized chunks of the shared scratch).
    func gemmDataGradient(batch: Int, dOut: UnsafeMutablePointer<Float>, dIn: UnsafeMutablePointer<Float>) {
        let (inCount, outCount) = (io.inShape.count, io.outShape.count)
        let rowsPerSample = io.outShape.height * io.outShape.width
        let depth = kernel * kernel * io.inShape.channels
        let oc = io.outShape.channels
        var first = 0
        while first < batch {
            let samples = min(samplesPerChunk, batch - first)
            sgemm(false, true, m: samples * rowsPerSample, n: depth, k: oc, a: UnsafePointer(dOut + first * outCount),
                  lda: oc, b: params.weight, ldb: oc, beta: 0, c: column, ldc: depth)
            col2im(dIn + first * inCount, samples: samples, zeroFirst: storesInputGradient)
            first += samples
        }
    }

    /// Fills `column` with the im2col rows of `samples` samples starting at `x`.
    private func im2col(_ x: UnsafePointer<Float>, samples: Int) {
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let (k, s, p) = (kernel, stride, pad)
        let col = column
        let depth = k * k * c
        parallelFor(samples * oh) { job in
            let sample = job / oh, outRow = job % oh
            let xs = x + sample * h * w * c
            var dst = col + job * ow * depth
            for outCol in 0..<ow {
                let left = outCol * s - p
                let kwStart = max(0, -left), kwEnd = min(k, w - left)
                for kh in 0..<k {
                    let ih = outRow * s - p + kh
                    if ih < 0 || ih >= h || kwStart >= kwEnd {
                        dst.update(repeating: 0, count: k * c)
                    } else {
                        if kwStart > 0 { dst.update(repeating: 0, count: kwStart * c) }
                        (dst + kwStart * c).update(from: xs + (ih * w + left + kwStart) * c,
                                                   count: (kwEnd - kwStart) * c)
                        if kwEnd < k { (dst + kwEnd * c).update(repeating: 0, count: (k - kwEnd) * c) }
                    }
                    dst += k * c
                }
            }
        }
    }

    /// Accumulates the col-shaped gradient in `column` back onto `samples` input samples at `dx`
    /// (onto zeros, each sample zeroed by its own job, when `zeroFirst`).
    private func col2im(_ dx: UnsafeMutablePointer<Float>, samples: Int, zeroFirst: Bool) {
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let (k, s, p) = (kernel, stride, pad)
        let col = UnsafePointer(column)
        let depth = k * k * c
        // One job per sample: samples write disjoint parts of dx, and each sample is summed in a fixed order.
        parallelFor(samples) { sample in
            let dxs = dx + sample * h * w * c
            if zeroFirst { dxs.update(repeating: 0, count: h * w * c) }
            for outRow in 0..<oh {
                for outCol in 0..<ow {
                    let src = col + ((sample * oh + outRow) * ow + outCol) * depth
                    let left = outCol * s - p
                    let kwStart = max(0, -left), kwEnd = min(k, w - left)
                    if kwStart >= kwEnd { continue }
                    for kh in 0..<k {
                        let ih = outRow * s - p + kh
                        if ih < 0 || ih >= h { continue }
                        let from = src + (kh * k + kwStart) * c
                        let to = dxs + (ih * w + left + kwStart) * c
                        for i in 0..<((kwEnd - kwStart) * c) { to[i] += from[i] }
                    }
                }
            }
        }
    }
}

/// What a convolution decides from its shapes before any memory exists: the algorithm of each
/// pass and the layout of its per-call workspace (packed and transformed weights, partial
/// sums). The graph plans memory with it before compiling; `ConvKernel` is built from it.
struct ConvPlan {
    let isPointwise: Bool
    let samplesPerChunk: Int
    let winograd: Bool
    let direct: Bool
    let directData: Bool
    let directWeights: Bool
    let directChunk: Int
    let dataClasses: [DataClass]
    let dataPad: (top: Int, left: Int, hp: Int, wp: Int)
    let winogradForwardShape: WinogradShape
    let winogradDataShape: WinogradShape
    let weightPartialSumFloats: Int
    let packedForwardFloats: Int
    let packedBackwardFloats: Int
    let stageFloats: Int, forwardFloats: Int, backwardFloats: Int, gradientFloats: Int
    /// Floats of the packed forward weights (Winograd's U or the direct panels; 0 for GEMM).
    var packedForwardWeightFloats: Int { winograd ? forwardFloats : direct ? packedForwardFloats : 0 }
    /// The workspace: every buffer below, 64-byte aligned, in one piece.
    let workspace: MemoryLayout64
    /// Byte offsets of the workspace's buffers.
    let offsets: (biasPartials: Int, weightPartialSums: Int, stage: Int, forward: Int, backward: Int,
                  gradient: Int, packedForward: Int, packedBackward: Int, paddedBias: Int)

    init(kernel k: Int, stride: Int, pad p: Int, input inShape: EngineShape, output outShape: EngineShape,
         maxBatch: Int, columnFloats: Int, inputGradient: Bool, outputGradient: Bool) {
        isPointwise = k == 1 && stride == 1 && p == 0
        samplesPerChunk = isPointwise ? maxBatch
            : ConvKernel.samplesPerChunk(kernel: k, input: inShape, output: outShape, maxBatch: maxBatch)
        let sumFloats = usesWeightPartials(kernel: k, c: inShape.channels, oc: outShape.channels)
            ? partialSumFloats(kernel: k, c: inShape.channels, oc: outShape.channels) : 0
        weightPartialSumFloats = sumFloats
        let paddedIn = (inShape.height + 2 * p) * (inShape.width + 2 * p) * inShape.channels
        let override = ConvKernel.directOverride
        let (ic, oc) = (inShape.channels, outShape.channels)
        let (icp, ocp) = ((ic + directNR - 1) / directNR * directNR, (oc + directNR - 1) / directNR * directNR)
        winogradForwardShape = WinogradShape(h: inShape.height, w: inShape.width, c: ic, pad: p,
                                             oh: outShape.height, ow: outShape.width, oc: oc)
        winogradDataShape = WinogradShape(h: outShape.height, w: outShape.width, c: oc, pad: 2 - p,
                                          oh: inShape.height, ow: inShape.width, oc: ic)
        let byShape = override == nil && ic >= ConvKernel.winogradMinChannels && oc >= ConvKernel.winogradMinChannels
            && 36 * max(ic * ocp, oc * icp) <= ConvKernel.winogradMaxTransformedFloats
            && maxBatch * ((outShape.height + 3) / 4) * ((outShape.width + 3) / 4)
                >= (inputGradient || outputGradient || outShape.height % 4 != 0 || outShape.width % 4 != 0
                    ? ConvKernel.winogradMinTiles : min(ConvKernel.winogradMinTiles, ConvKernel.winogradMinInferenceTiles))
        let wOverride = ConvKernel.winogradOverride
        winograd = WinogradShape.applies(kernel: k, stride: stride, pad: p) && wOverride != false
            && (wOverride == true || byShape)
            && (!outputGradient || winogradWeightBlock(winogradForwardShape, scratchFloats: columnFloats) > 0)
        // Backward-data and dU buffers only when those gradients are computed.
        stageFloats = winograd ? 9 * max(ic * ocp, oc * icp) : 0
        forwardFloats = winograd ? 36 * ic * ocp : 0
        backwardFloats = winograd && inputGradient ? 36 * oc * icp : 0
        gradientFloats = winograd && outputGradient ? 36 * ic * ocp : 0
        direct = !winograd && override != false && !isPointwise && (p == 0 || paddedIn <= columnFloats)
        directChunk = p == 0 ? maxBatch : max(1, min(maxBatch, columnFloats / max(1, paddedIn)))
        dataClasses = makeDataClasses(kernel: k, stride: stride, pad: p, ic: ic, oc: oc)
        // Padding of dY so that every class's taps stay inside the padded buffer.
        var (top, bottom, left, right) = (0, 0, 0, 0)
        var directFlops = 0
        for cl in dataClasses where cl.tapsY > 0 && cl.tapsX > 0 {
            let gh = (inShape.height - cl.ry + stride - 1) / stride, gw = (inShape.width - cl.rx + stride - 1) / stride
            top = max(top, cl.tapsY - 1 - cl.ey); bottom = max(bottom, gh + cl.ey - outShape.height)
            left = max(left, cl.tapsX - 1 - cl.ex); right = max(right, gw + cl.ex - outShape.width)
            directFlops += gh * gw * cl.tapsY * cl.tapsX
        }
        let (hp, wp) = (outShape.height + top + bottom, outShape.width + left + right)
        dataPad = (top, left, hp, wp)
        // Direct backward-data computes zero-padded channels (IC rounded up to 48) and, for
        // 'valid' convolutions, the border of the full correlation: use it unless that costs
        // clearly more than the GEMM (+ col2im) path (measured: GEMM runs at ~80 % of peak).
        let gemmFlops = outShape.height * outShape.width * k * k * ic
        directData = direct && (override == true || (directFlops * icp * 4 <= gemmFlops * 5 && oc >= directNR))
        // The direct weight gradient keeps an input-channel tile × 48 output channels in
        // registers; with fewer than 48 channels on either side most lanes idle and it ran up
        // to 13x slower than im2col + GEMM (PyramidNet stage 1: 424 ms vs 33 ms per layer).
        // A small dW (the first layer's 3 input channels) is reduced with partial sums instead
        // if its channels fill whole 48-channel tiles (All-CNN-C conv1: 5.7 → 4.6 ms; GoogLeNet
        // conv1, 64 channels = 48 + a ragged 16, took 190 ms this way, 30 ms by GEMM, when the
        // ragged block was scalar code).
        // (Strided layers' dW by im2col + GEMM: the same bits where every block is a full 8×48
        // tile (oc a multiple of 48, depth of 8, no partial sums), faster on All-CNN-C conv6
        // (8.4-9.0 → 7.6-7.8 ms at 2 threads) but slower on conv3 (9.5-9.6 → 9.8-9.9 ms),
        // ConvBenchTests wall times, batch 64: 0.5 ms of a 135 ms step; not taken.)
        directWeights = direct && (override == true || (oc >= directNR
            && (ic >= directNR || (k * k * ic * oc <= weightPartialFloats && oc % directNR == 0))))
        packedForwardFloats = direct ? ocp * k * k * ic : 0
        packedBackwardFloats = directData ? icp * k * k * oc : 0
        var layout = MemoryLayout64()
        offsets = (biasPartials: layout.doubles(maxReductionChunks * oc),
                   weightPartialSums: layout.floats(sumFloats),
                   stage: layout.floats(stageFloats), forward: layout.floats(forwardFloats),
                   backward: layout.floats(backwardFloats), gradient: layout.floats(gradientFloats),
                   packedForward: layout.floats(packedForwardFloats), packedBackward: layout.floats(packedBackwardFloats),
                   paddedBias: layout.floats(ocp))
        workspace = layout
    }
}

/// One pixel's row of a GEMM convolution's output (the 1×1 and im2col paths' bias pass, the
/// sibling GEMM's scatter, PointwiseSiblings.swift): to[o] = from[o] + bias[o], then max(·, 0)
/// with `relu`, then the fused residual add (`ConvResidual.added`, with the residual's row);
/// a plain copy with neither bias nor ReLU. `from` may be `to`. A ReLU without a bias is passed
/// zeros as its bias (x + 0, as the unfused ReLU's input would be). The one place these
/// expressions are written, so that every path stores the same bits.
@inline(__always)
func storeConvRow(_ to: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>, count: Int,
                  bias: UnsafePointer<Float>?, relu: Bool,
                  residual: (ConvResidual, row: UnsafePointer<Float>)? = nil) {
    // In place, the loops read and write one pointer: the vectoriser then needs no run-time
    // overlap check (which an equal `from` and `to` would fail, falling back to scalar code).
    if UnsafePointer(to) == from {
        convRowBody(to, from: UnsafePointer(to), count: count, bias: bias, relu: relu, residual: residual)
    } else {
        convRowBody(to, from: from, count: count, bias: bias, relu: relu, residual: residual)
    }
}

@inline(__always)
private func convRowBody(_ to: UnsafeMutablePointer<Float>, from: UnsafePointer<Float>, count: Int,
                         bias: UnsafePointer<Float>?, relu: Bool, residual: (ConvResidual, row: UnsafePointer<Float>)?) {
    if let (residual, res) = residual {
        precondition(!relu, "a fused residual add follows no ReLU")
        if let bias {
            for o in 0..<count { to[o] = residual.added(from[o] + bias[o], res, channel: o) }
        } else {
            for o in 0..<count { to[o] = residual.added(from[o], res, channel: o) }
        }
    } else if let bias {
        if relu {
            for o in 0..<count { to[o] = max(from[o] + bias[o], 0) }
        } else {
            for o in 0..<count { to[o] = from[o] + bias[o] }
        }
    } else if UnsafePointer(to) != from {
        to.update(from: from, count: count)
    }
}
