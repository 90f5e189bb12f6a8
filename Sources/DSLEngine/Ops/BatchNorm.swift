import Foundation

// Batch normalisation per channel over batch·height·width, PyTorch semantics. Without a scale
// (`bn scale=off`) γ is a constant 1 in the kernel's own block: the same loops, no weight parameter.
// inp is (B,H,W,C), weight and bias are (C), running_mean and running_var are (C), out is (B,H,W,C)
// Training: batch mean and biased variance normalise; running stats move by `momentum` toward the
// batch mean and the unbiased variance. Eval: running stats normalise.
// Forward saves x̂ = (x − mean)·invstd (B,H,W,C) and invstd (C); backward needs nothing else.
// Inference backward (`inferenceBackward`, set by `EngineGraph.inputGradient` after an eval
// forward): dx = dy·γ/√(running_var + ε), the running statistics being constants; no
// parameter gradients.
// Reductions use fixed-order Double partial sums (Reductions.swift): identical for any thread count.

/// Batch-normalisation kernel.
final class BatchNormKernel: EngineKernel {
    let channels: Int
    let rowsPerSample: Int
    let eps: Float
    let momentum: Float
    let io: UnaryTensors
    let gamma: UnsafeMutablePointer<Float>
    let beta: UnsafeMutablePointer<Float>
    let gammaGrad: UnsafeMutablePointer<Float>
    let betaGrad: UnsafeMutablePointer<Float>
    let runningMean: UnsafeMutablePointer<Float>
    let runningVar: UnsafeMutablePointer<Float>
    /// x̂, saved in training (nil when compiled for inference only).
    let normalized: UnsafeMutablePointer<Float>?
    /// Per channel: out = x·scale + shift; invstd of the last training batch; backward's means.
    let scale: UnsafeMutablePointer<Float>
    let shift: UnsafeMutablePointer<Float>
    let invStd: UnsafeMutablePointer<Float>
    let meanDy: UnsafeMutablePointer<Float>
    let meanDyXhat: UnsafeMutablePointer<Float>
    let batchMean: UnsafeMutablePointer<Double>
    let partials: UnsafeMutablePointer<Double>
    let sums: UnsafeMutablePointer<Double>
    /// Backward of the eval-mode forward (set by `EngineGraph.inputGradient` for its duration).
    var inferenceBackward = false
    /// Set at compile time when the activation after it runs in place on this output: forward
    /// stores act(y) (that activation's forward then does nothing; its backward reads act(y)).
    var fused: FusedActivation? = nil
    /// Set at compile time in a graph compiled for inference only when this batch norm reads only
    /// a convolution's output and runs in place on it: the convolution computes with weights
    /// and bias folded by `inferenceScaleShift()` (ConvKernel.foldedNorm) and, when the fused
    /// activation is a ReLU, applies it too; forward then applies any other fused activation
    /// in place, or does nothing.
    var isFolded = false

    /// Set at compile time for training, beside `fused`, when the graph planned it
    /// (`EngineGraph.fusesActivationBackward`): the gradient of the fused activation's output.
    /// Backward then does that activation's backward as well (the activation's does nothing and
    /// this kernel's own output gradient stays unwritten): it reads this gradient and multiplies
    /// by the activation's derivative at y = act(x̂·γ + β), recomputed exactly as forward stored
    /// it (`activationGradientRow`). A pass over the tensor, and the write of one, saved.
    /// Not in `inferenceBackward`, where the activation runs its own backward again.
    var fusedActivationGradient: UnsafePointer<Float>? = nil

    /// Whether an activation's backward can run inside the batch norm's (`fusedActivationGradient`):
    /// those whose derivative is a mask or a constant on one (so recomputing y is a multiply, an
    /// add and a compare).
    static func fusesBackward(of a: FusedActivation) -> Bool {
        a == .relu || a == .activation(.relu6) || a == .activation(.hardsigmoid)
    }

    /// The kernel's state and scratch, one block.
    let block: MemoryBlock

    /// Layout of that block for C channels: seven float vectors (the last two: γ ≡ 1 and its unread gradient without a scale), the batch mean, partials, sums.
    static func layout(channels c: Int) -> (layout: MemoryLayout64, floats: Int, mean: Int, partials: Int, sums: Int) {
        var l = MemoryLayout64()
        let floats = l.floats(7 * c), mean = l.doubles(c), partials = l.doubles(2 * maxReductionChunks * c), sums = l.doubles(2 * c)
        return (l, floats, mean, partials, sums)
    }

    init(eps: Float, momentum: Float, scale hasScale: Bool = true, storage s: NodeStorage) throws {
        channels = s.outputShape.channels
        rowsPerSample = s.outputShape.height * s.outputShape.width
        self.eps = eps
        self.momentum = momentum
        io = UnaryTensors(s)
        runningMean = s.buffers[0]
        runningVar = s.buffers[1]
        normalized = s.saved
        let l = BatchNormKernel.layout(channels: channels)
        block = try MemoryBlock(l.layout)
        scale = block.floats(at: l.floats)
        shift = scale + channels
        invStd = scale + 2 * channels
        meanDy = scale + 3 * channels
        meanDyXhat = scale + 4 * channels
        if hasScale {
            gamma = s.parameters[0]
            beta = s.parameters[1]
            gammaGrad = s.parameterGrads[0]
            betaGrad = s.parameterGrads[1]
        } else {
            // No scale parameter: γ ≡ 1 from the kernel's own block, and its gradient lands in
            // a scratch vector nobody reads.
            gamma = scale + 5 * channels
            gamma.update(repeating: 1, count: channels)
            gammaGrad = scale + 6 * channels
            beta = s.parameters[0]
            betaGrad = s.parameterGrads[0]
        }
        batchMean = block.doubles(at: l.mean)
        partials = block.doubles(at: l.partials)
        sums = block.doubles(at: l.sums)
    }

    /// sums[c] = Σ_r a[r,c] (and sums[C + c] = Σ_r a[r,c]·b[r,c] when b is given), fixed order.
    /// With `activation` (backward, `fusedActivationGradient`): a is the activation's output
    /// gradient and b is x̂, and the rows summed are those of g = a·act'(y) instead of a, made a
    /// block of rows at a time in this thread's scratch (`activationGradientRow`): the sums of
    /// the gradient the activation's own backward would have stored, with the same chains.
    private func channelSums(_ a: UnsafePointer<Float>, times b: UnsafePointer<Float>?,
                             center: UnsafePointer<Double>?, rows: Int, activation: FusedActivation? = nil) {
        let c = channels
        let chunks = reductionChunkCount(rows: rows)
        let (partials, sums) = (self.partials, self.sums)
        let kind: ChannelSumKind = b != nil ? .withProducts : (center != nil ? .centeredSquares : .plain)
        let (gamma, beta) = (UnsafePointer(self.gamma), UnsafePointer(self.beta))
        parallelFor(chunks) { chunk in
            let first = partials + chunk * 2 * c, second = first + c
            let rowRange = chunkRange(chunk, of: chunks, count: rows)
            if let activation, let b {
                // Blocks of ≥ 1024 floats (at least one row), in L1 between making and summing.
                let blockRows = max(1, 1024 / c)
                let g = BatchNormKernel.gradientScratch.floats(blockRows * c)
                first.update(repeating: 0, count: 2 * c)
                for start in stride(from: rowRange.lowerBound, to: rowRange.upperBound, by: blockRows) {
                    let n = min(blockRows, rowRange.upperBound - start)
                    for r in 0..<n {
                        let at = (start + r) * c
                        activationGradientRow(activation, dy: a + at, xhat: b + at, gamma: gamma, beta: beta,
                                              into: g + r * c, count: c)
                    }
                    let nx = b + start * c
                    if c <= 64 {
                        blockChannelSums(kind: .withProducts, UnsafePointer(g), nx, center: nil, rows: 0..<n, c: c, c0: 0,
                                         first: first, second: second, accumulating: true)
                    } else {
                        for r in 0..<n {
                            let (rowA, rowB) = (g + r * c, nx + r * c)
                            for ch in 0..<c {
                                first[ch] += Double(rowA[ch])
                                second[ch] += Double(rowA[ch]) * Double(rowB[ch])
                            }
                        }
                    }
                }
                return
            }
            if c <= 64 {
                blockChannelSums(kind: kind, a, b, center: center, rows: rowRange, c: c, c0: 0,
                                 first: first, second: second)
                return
            }
            first.update(repeating: 0, count: 2 * c)
            for r in rowRange {
                let rowA = a + r * c
                if let b = b {
                    let rowB = b + r * c
                    for ch in 0..<c {
                        first[ch] += Double(rowA[ch])
                        second[ch] += Double(rowA[ch]) * Double(rowB[ch])
                    }
                } else if let center = center {
                    for ch in 0..<c { let d = Double(rowA[ch]) - center[ch]; first[ch] += d * d }
                } else {
                    for ch in 0..<c { first[ch] += Double(rowA[ch]) }
                }
            }
        }
        sums.update(repeating: 0, count: 2 * c)
        if b == nil { for chunk in 0..<chunks { (partials + chunk * 2 * c + c).update(repeating: 0, count: c) } }
        for chunk in 0..<chunks {
            let partial = partials + chunk * 2 * c
            for ch in 0..<(2 * c) { sums[ch] += partial[ch] }
        }
    }

    func forward(batch: Int, training: Bool) {
        let c = channels, rows = batch * rowsPerSample
        let x = UnsafePointer(io.input)
        if training {
            channelSums(x, times: nil, center: nil, rows: rows)
            for ch in 0..<c { batchMean[ch] = sums[ch] / Double(rows) }
            channelSums(x, times: nil, center: UnsafePointer(batchMean), rows: rows)
            for ch in 0..<c {
                let variance = sums[ch] / Double(rows)
                let inv = Float(1 / (variance + Double(eps)).squareRoot())
                invStd[ch] = inv
                scale[ch] = gamma[ch] * inv
                shift[ch] = beta[ch] - Float(batchMean[ch]) * gamma[ch] * inv
                let unbiased = rows > 1 ? variance * Double(rows) / Double(rows - 1) : variance
                runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * Float(batchMean[ch])
                runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * Float(unbiased)
            }
            if let xhat = normalized {
                let (mean, inv, y, g, b, fused) = (UnsafePointer(batchMean), invStd, io.output, gamma, beta, fused)
                let chunks = elementwiseChunks(rows * c)
                parallelFor(chunks) { chunk in
                    let range = chunkRange(chunk, of: chunks, count: rows)
                    var block = range.lowerBound
                    for r in range {
                        let (src, nx, dst) = (x + r * c, xhat + r * c, y + r * c)
                        for ch in 0..<c {
                            let v = Float(Double(src[ch]) - mean[ch]) * inv[ch]
                            nx[ch] = v
                            dst[ch] = v * g[ch] + b[ch]
                        }
                        // The fused activation over blocks of ≥ 1024 floats just stored (in L1).
                        if let a = fused, (r + 1 - block) * c >= 1024 || r + 1 == range.upperBound {
                            applyFusedActivation(a, y + block * c, count: (r + 1 - block) * c)
                            block = r + 1
                        }
                    }
                }
                return
            }
        } else if isFolded {
            // The convolution before stored its folded output here (in place); what is left is
            // an activation it could not apply.
            if let a = fused, a != .relu {
                let y = io.output, count = rows * c
                let chunks = elementwiseChunks(count)
                parallelFor(chunks) { chunk in
                    let range = chunkRange(chunk, of: chunks, count: count)
                    applyFusedActivation(a, y + range.lowerBound, count: range.count)
                }
            }
            return
        } else {
            inferenceScaleShift()
        }
        let (y, sc, sh, fused) = (io.output, scale, shift, fused)
        let chunks = elementwiseChunks(rows * c)
        parallelFor(chunks) { chunk in
            let range = chunkRange(chunk, of: chunks, count: rows)
            var block = range.lowerBound
            for r in range {
                let (src, dst) = (x + r * c, y + r * c)
                for ch in 0..<c { dst[ch] = src[ch] * sc[ch] + sh[ch] }
                if let a = fused, (r + 1 - block) * c >= 1024 || r + 1 == range.upperBound {
                    applyFusedActivation(a, y + block * c, count: (r + 1 - block) * c)
                    block = r + 1
                }
            }
        }
    }

    /// Fills `scale` and `shift` from the running statistics: eval-mode output = x·scale + shift.
    @discardableResult
    func inferenceScaleShift() -> (scale: UnsafePointer<Float>, shift: UnsafePointer<Float>) {
        for ch in 0..<channels {
            let inv = 1 / (runningVar[ch] + eps).squareRoot()
            scale[ch] = gamma[ch] * inv
            shift[ch] = beta[ch] - runningMean[ch] * gamma[ch] * inv
        }
        return (UnsafePointer(scale), UnsafePointer(shift))
    }

    var ownedScratchBytes: Int { block.bytes }

    /// Backward stores the input gradient (`storeInputGradient`).
    var storesInputGradient = false
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient = true; return true }

    /// Says so when folded into the convolution before it (shown by `dsl bench`).
    var algorithm: String? { isFolded ? "folded into the convolution" : nil }

    func backward(batch: Int) {
        if inferenceBackward {
            // scale = γ·invstd(running), set by the eval forward pass.
            guard let dOut = io.outputGrad, let dIn = io.inputGrad else { return }
            let c = channels, rows = batch * rowsPerSample
            let (sc, store) = (scale, storesInputGradient)
            let chunks = elementwiseChunks(rows * c)
            parallelFor(chunks) { chunk in
                for r in chunkRange(chunk, of: chunks, count: rows) {
                    let (dy, dx) = (dOut + r * c, dIn + r * c)
                    updateGradient(dx, 0..<c, store: store) { ch in dy[ch] * sc[ch] }
                }
            }
            return
        }
        guard let xhat = normalized else { return }
        // dy: this kernel's output gradient, or (activation backward fused) the activation's,
        // which `activationGradientRow` turns into this kernel's a row at a time.
        let activation = fusedActivationGradient != nil ? fused : nil
        guard let dOut = fusedActivationGradient ?? io.outputGrad.map({ UnsafePointer($0) }) else { return }
        let c = channels, rows = batch * rowsPerSample
        // sums[0..<C] = Σ dy, sums[C..<2C] = Σ dy·x̂
        channelSums(dOut, times: UnsafePointer(xhat), center: nil, rows: rows, activation: activation)
        let n = Double(rows)
        for ch in 0..<c {
            betaGrad[ch] += Float(sums[ch])
            gammaGrad[ch] += Float(sums[c + ch])
        }
        guard let dIn = io.inputGrad else { return }
        // dx = γ·invstd·(dy − mean(dy) − x̂·mean(dy·x̂))
        for ch in 0..<c {
            meanDy[ch] = Float(sums[ch] / n)
            meanDyXhat[ch] = Float(sums[c + ch] / n)
        }
        let (g, b, inv, meanDy, meanDyXhat, store) = (gamma, UnsafePointer(beta), invStd, self.meanDy, self.meanDyXhat, storesInputGradient)
        let chunks = elementwiseChunks(rows * c)
        parallelFor(chunks) { chunk in
            let row = activation != nil ? BatchNormKernel.gradientScratch.floats(c) : nil
            for r in chunkRange(chunk, of: chunks, count: rows) {
                var (dy, nx, dx) = (dOut + r * c, UnsafePointer(xhat + r * c), dIn + r * c)
                if let activation, let row {
                    activationGradientRow(activation, dy: dy, xhat: nx, gamma: UnsafePointer(g), beta: b, into: row, count: c)
                    dy = UnsafePointer(row)
                }
                updateGradient(dx, 0..<c, store: store) { ch in
                    g[ch] * inv[ch] * (dy[ch] - meanDy[ch] - nx[ch] * meanDyXhat[ch])
                }
            }
        }
    }

    /// Per-thread rows of the activation's gradient (`fusedActivationGradient`).
    private static let gradientScratch = ThreadScratch()
}

/// out[ch] = dy[ch]·act'(y[ch]) + 0 for one row of `count` channels: what the activation's own
/// backward stores (ReLUKernel, ActivationKernel: the derivative read from the output), with the
/// output y = act(x̂·γ + β) recomputed by the expressions the batch norm's forward stored it
/// with (x̂·γ + β, then `applyFusedActivation`'s), so the same bits. For the activations of
/// `BatchNormKernel.fusesBackward`.
@inline(__always)
func activationGradientRow(_ a: FusedActivation, dy: UnsafePointer<Float>, xhat: UnsafePointer<Float>,
                           gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                           into out: UnsafeMutablePointer<Float>, count: Int) {
    switch a {
    case .relu:
        for ch in 0..<count {
            let y = max(xhat[ch] * gamma[ch] + beta[ch], 0)
            out[ch] = (y > 0 ? dy[ch] : 0 * dy[ch]) + 0
        }
    case .activation(.relu6):
        for ch in 0..<count {
            let y = activationValue(.relu6, xhat[ch] * gamma[ch] + beta[ch])
            out[ch] = dy[ch] * activationDerivative(.relu6, x: 0, y: y) + 0
        }
    case .activation(.hardsigmoid):
        for ch in 0..<count {
            let y = activationValue(.hardsigmoid, xhat[ch] * gamma[ch] + beta[ch])
            out[ch] = dy[ch] * activationDerivative(.hardsigmoid, x: 0, y: y) + 0
        }
    case .activation:
        preconditionFailure("no fused backward for \(a)")
    }
}
