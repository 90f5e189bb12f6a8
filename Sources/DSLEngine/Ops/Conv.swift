// Convolution as im2col + GEMM (layouts in Layout.swift).
// inp is (B,H,W,C), weight is (K,K,C,OC), bias is (OC), out is (B,OH,OW,OC)
// col is (b·OH·OW, K·K·C) for a chunk of b samples (shared scratch, rebuilt in backward)
// Forward saves nothing: backward re-reads the input to rebuild col.

/// Convolution kernel: forward = im2col × W (+ bias); backward = dW += colᵀ × dY, dX += col2im(dY × Wᵀ).
final class ConvKernel: EngineKernel {
    let inShape: EngineShape
    let outShape: EngineShape
    let kernel: Int
    let stride: Int
    let pad: Int
    let input: UnsafeMutablePointer<Float>
    let inputGrad: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?
    let weight: UnsafeMutablePointer<Float>
    let weightGrad: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>?
    let biasGrad: UnsafeMutablePointer<Float>?
    let column: UnsafeMutablePointer<Float>
    /// Samples per im2col chunk (fixed at compile time, so results do not depend on threads).
    let samplesPerChunk: Int
    /// 1×1, stride 1, no padding: the input is its own col matrix.
    let isPointwise: Bool
    let biasPartials: UnsafeMutablePointer<Double>

    /// Floats of col for one sample.
    static func columnFloatsPerSample(kernel: Int, input: EngineShape, output: EngineShape) -> Int {
        output.height * output.width * kernel * kernel * input.channels
    }

    /// Size budget of the shared im2col scratch in floats (tests lower it to force several chunks).
    static var columnBudgetFloats = 4 << 20

    /// Samples per im2col chunk: as many as fit in the budget, at least one.
    static func samplesPerChunk(kernel: Int, input: EngineShape, output: EngineShape, maxBatch: Int) -> Int {
        let perSample = columnFloatsPerSample(kernel: kernel, input: input, output: output)
        return max(1, min(maxBatch, columnBudgetFloats / max(1, perSample)))
    }

    init(kernel: Int, stride: Int, pad: Int, storage s: NodeStorage) {
        inShape = s.inputShapes[0]
        outShape = s.outputShape
        self.kernel = kernel
        self.stride = stride
        self.pad = pad
        input = s.inputs[0]
        inputGrad = s.inputGrads[0]
        output = s.output
        outputGrad = s.outputGrad
        weight = s.parameters[0]
        weightGrad = s.parameterGrads[0]
        bias = s.parameters.count > 1 ? s.parameters[1] : nil
        biasGrad = s.parameterGrads.count > 1 ? s.parameterGrads[1] : nil
        column = s.columnScratch
        isPointwise = kernel == 1 && stride == 1 && pad == 0
        samplesPerChunk = isPointwise ? s.maxBatch
            : ConvKernel.samplesPerChunk(kernel: kernel, input: inShape, output: outShape, maxBatch: s.maxBatch)
        require(isPointwise || samplesPerChunk * ConvKernel.columnFloatsPerSample(
            kernel: kernel, input: inShape, output: outShape) <= s.columnScratchFloats)
        biasPartials = allocateDoubles(maxReductionChunks * outShape.channels)
    }

    deinit { biasPartials.deallocate() }

    func forward(batch: Int, training: Bool) {
        let (inCount, outCount) = (inShape.count, outShape.count)
        let rowsPerSample = outShape.height * outShape.width
        let depth = kernel * kernel * inShape.channels
        let oc = outShape.channels
        var first = 0
        while first < batch {
            let samples = min(samplesPerChunk, batch - first)
            let a: UnsafePointer<Float>
            if isPointwise {
                a = UnsafePointer(input + first * inCount)
            } else {
                im2col(UnsafePointer(input + first * inCount), samples: samples)
                a = UnsafePointer(column)
            }
            sgemm(false, false, m: samples * rowsPerSample, n: oc, k: depth, a: a, lda: depth,
                  b: weight, ldb: oc, beta: 0, c: output + first * outCount, ldc: oc)
            first += samples
        }
        if let bias = bias {
            let rows = batch * rowsPerSample
            let out = output
            let chunks = elementwiseChunks(rows * oc)
            parallelFor(chunks) { chunk in
                for r in chunkRange(chunk, of: chunks, count: rows) {
                    let row = out + r * oc
                    for o in 0..<oc { row[o] += bias[o] }
                }
            }
        }
    }

    var ownedScratchBytes: Int { maxReductionChunks * outShape.channels * 8 }

    func backward(batch: Int) {
        guard let dOut = outputGrad else { return }
        let (inCount, outCount) = (inShape.count, outShape.count)
        let rowsPerSample = outShape.height * outShape.width
        let depth = kernel * kernel * inShape.channels
        let (ic, oc) = (inShape.channels, outShape.channels)
        var first = 0
        while first < batch {
            let samples = min(samplesPerChunk, batch - first)
            let rows = samples * rowsPerSample
            let dY = UnsafePointer(dOut + first * outCount)
            // dW += colᵀ × dY
            let col: UnsafePointer<Float>
            if isPointwise {
                col = UnsafePointer(input + first * inCount)
            } else {
                im2col(UnsafePointer(input + first * inCount), samples: samples)
                col = UnsafePointer(column)
            }
            sgemm(true, false, m: depth, n: oc, k: rows, a: col, lda: depth, b: dY, ldb: oc,
                  beta: 1, c: weightGrad, ldc: oc)
            // dX += col2im(dY × Wᵀ)
            if let dIn = inputGrad {
                if isPointwise {
                    sgemm(false, true, m: rows, n: ic, k: oc, a: dY, lda: oc, b: weight, ldb: oc,
                          beta: 1, c: dIn + first * inCount, ldc: ic)
                } else {
                    sgemm(false, true, m: rows, n: depth, k: oc, a: dY, lda: oc, b: weight, ldb: oc,
                          beta: 0, c: column, ldc: depth)
                    col2im(dIn + first * inCount, samples: samples)
                }
            }
            first += samples
        }
        if let biasGrad = biasGrad {
            accumulateColumnSums(dOut, rows: batch * rowsPerSample, columns: oc,
                                 partials: biasPartials, into: biasGrad)
        }
    }

    /// Fills `column` with the im2col rows of `samples` samples starting at `x`.
    private func im2col(_ x: UnsafePointer<Float>, samples: Int) {
        let (h, w, c) = (inShape.height, inShape.width, inShape.channels)
        let (oh, ow) = (outShape.height, outShape.width)
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

    /// Accumulates the col-shaped gradient in `column` back onto `samples` input samples at `dx`.
    private func col2im(_ dx: UnsafeMutablePointer<Float>, samples: Int) {
        let (h, w, c) = (inShape.height, inShape.width, inShape.channels)
        let (oh, ow) = (outShape.height, outShape.width)
        let (k, s, p) = (kernel, stride, pad)
        let col = UnsafePointer(column)
        let depth = k * k * c
        // One job per sample: samples write disjoint parts of dx, and each sample is summed in a fixed order.
        parallelFor(samples) { sample in
            let dxs = dx + sample * h * w * c
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
