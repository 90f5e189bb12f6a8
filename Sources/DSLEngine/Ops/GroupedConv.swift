// General convolution: rectangular kernel and stride, four paddings, dilation, groups.
// inp is (B,H,W,IC), weight is (KH,KW,IC/G,OC), bias is (OC), out is (B,OH,OW,OC)
// Output channel oc belongs to group g = oc / (OC/G) and reads input channels
// g·(IC/G) ..< (g+1)·(IC/G) (PyTorch's grouping); row (kh, kw, i) of the weight matrix is
// input channel g·(IC/G) + i of that group.
// Per group g, im2col + GEMM (Gemm.swift): col_g is (b·OH·OW, KH·KW·IC/G) for a chunk of b
// samples (the shared column scratch), tap (kh, kw) of output pixel (oh, ow) reading input pixel
// (oh·SH − padTop + kh·DH, ow·SW − padLeft + kw·DW) (zero outside):
//     out[:, g] = col_g × W[:, :, :, g]                  (W's columns of group g, row stride OC)
//     dW[:, g] += col_gᵀ × dY[:, g]
//     dX[:, g] += col2im(dY[:, g] × W[:, g]ᵀ)
// A 1×1 stride-1 unpadded convolution reads the input in place (col_g = the input's channels
// of group g, row stride IC). Depthwise convolutions (G = IC = OC) run DepthwiseConv.swift.
// Forward saves nothing: backward re-reads the input. The GEMMs compute every element in a
// fixed order and col2im runs one job per sample, so results do not depend on the thread count.

/// Workspace of a general convolution (`DepthwiseConvKernel` and `GroupedConvKernel`), shared
/// with the graph's other convolutions (they run one at a time).
struct GroupedConvPlan {
    let workspace: MemoryLayout64
    /// Byte offsets: Double partial sums of the bias gradient; Float partial sums of the
    /// depthwise weight and bias gradients.
    let biasPartials: Int
    let depthwisePartials: Int
    /// Floats of one partial sum of the depthwise dW and dB (KH·KW·C + C, rounded to 16).
    let depthwisePartialFloats: Int
    /// Samples per im2col chunk (0 for depthwise and 1×1 stride-1 unpadded).
    let samplesPerChunk: Int
    let depthwise: Bool
    let pointwise: Bool

    init(_ g: ConvGeometry, input: EngineShape, output: EngineShape, maxBatch: Int) {
        depthwise = g.isDepthwise(inChannels: input.channels)
        pointwise = g.kernelHeight == 1 && g.kernelWidth == 1 && g.strideHeight == 1 && g.strideWidth == 1
            && g.padTop == 0 && g.padLeft == 0 && g.padBottom == 0 && g.padRight == 0
        let perSample = GroupedConvPlan.columnFloatsPerSample(g, input: input, output: output)
        samplesPerChunk = depthwise || pointwise ? 0 : max(1, min(maxBatch, ConvKernel.columnBudgetFloats / max(1, perSample)))
        depthwisePartialFloats = depthwise ? (g.kernelHeight * g.kernelWidth * input.channels + input.channels + 15) / 16 * 16 : 0
        var layout = MemoryLayout64()
        biasPartials = layout.doubles(maxReductionChunks * g.outChannels)
        depthwisePartials = layout.floats(depthwise ? depthwiseReductionChunks * depthwisePartialFloats : 0)
        workspace = layout
    }

    /// Floats of one group's im2col rows for one sample.
    static func columnFloatsPerSample(_ g: ConvGeometry, input: EngineShape, output: EngineShape) -> Int {
        output.height * output.width * g.kernelHeight * g.kernelWidth * (input.channels / g.groups)
    }

    /// Floats of the shared column scratch this convolution uses.
    func columnFloats(_ g: ConvGeometry, input: EngineShape, output: EngineShape) -> Int {
        samplesPerChunk * GroupedConvPlan.columnFloatsPerSample(g, input: input, output: output)
    }
}

/// General (grouped, dilated, rectangular) convolution by im2col + GEMM per group.
final class GroupedConvKernel: EngineKernel {
    let g: ConvGeometry
    let io: UnaryTensors
    let plan: GroupedConvPlan
    let params: ParameterTensors
    let column: UnsafeMutablePointer<Float>
    let biasPartials: UnsafeMutablePointer<Double>
    let ownBlock: MemoryBlock?

    init(_ g: ConvGeometry, storage s: NodeStorage) throws {
        self.g = g
        io = UnaryTensors(s)
        plan = GroupedConvPlan(g, input: io.inShape, output: io.outShape, maxBatch: s.maxBatch)
        params = ParameterTensors(s)
        column = s.columnScratch
        require(plan.pointwise || plan.samplesPerChunk * GroupedConvPlan.columnFloatsPerSample(g, input: io.inShape, output: io.outShape)
                    <= s.columnScratchFloats, "column scratch too small")
        let (base, own) = try s.kernelWorkspace(plan.workspace)
        ownBlock = own
        biasPartials = (base + plan.biasPartials).assumingMemoryBound(to: Double.self)
    }

    var ownedScratchBytes: Int { ownBlock?.bytes ?? 0 }
    var algorithm: String? { plan.pointwise ? "gemm per group" : "im2col+gemm per group" }

    private var icg: Int { io.inShape.channels / g.groups }
    private var ocg: Int { io.outShape.channels / g.groups }
    private var depth: Int { g.kernelHeight * g.kernelWidth * icg }

    func forward(batch: Int, training: Bool) {
        let (ic, oc) = (io.inShape.channels, io.outShape.channels)
        let (icg, ocg, depth) = (icg, ocg, depth)
        let rowsPerSample = io.outShape.height * io.outShape.width
        if plan.pointwise {
            for group in 0..<g.groups {
                sgemm(false, false, m: batch * rowsPerSample, n: ocg, k: icg, a: UnsafePointer(io.input + group * icg), lda: ic,
                      b: UnsafePointer(params.weight + group * ocg), ldb: oc, beta: 0, c: io.output + group * ocg, ldc: oc)
            }
        } else {
            var first = 0
            while first < batch {
                let samples = min(plan.samplesPerChunk, batch - first)
                for group in 0..<g.groups {
                    im2col(UnsafePointer(io.input + first * io.inShape.count), samples: samples, group: group)
                    sgemm(false, false, m: samples * rowsPerSample, n: ocg, k: depth, a: UnsafePointer(column), lda: depth,
                          b: UnsafePointer(params.weight + group * ocg), ldb: oc, beta: 0,
                          c: io.output + first * io.outShape.count + group * ocg, ldc: oc)
                }
                first += samples
            }
        }
        if let bias = params.bias {
            let rows = batch * rowsPerSample, y = io.output, b = UnsafePointer(bias)
            let chunks = elementwiseChunks(rows * oc)
            parallelFor(chunks) { chunk in
                for r in chunkRange(chunk, of: chunks, count: rows) {
                    let row = y + r * oc
                    for o in 0..<oc { row[o] += b[o] }
                }
            }
        }
    }

    func backward(batch: Int) {
        guard let dOut = io.outputGrad else { return }
        let (ic, oc) = (io.inShape.channels, io.outShape.channels)
        let (icg, ocg, depth) = (icg, ocg, depth)
        let rowsPerSample = io.outShape.height * io.outShape.width
        if plan.pointwise {
            let rows = batch * rowsPerSample
            for group in 0..<g.groups {
                let dY = UnsafePointer(dOut + group * ocg)
                sgemm(true, false, m: icg, n: ocg, k: rows, a: UnsafePointer(io.input + group * icg), lda: ic, b: dY, ldb: oc,
                      beta: 1, c: params.weightGrad + group * ocg, ldc: oc)
                if let dIn = io.inputGrad {
                    sgemm(false, true, m: rows, n: icg, k: ocg, a: dY, lda: oc, b: UnsafePointer(params.weight + group * ocg), ldb: oc,
                          beta: 1, c: dIn + group * icg, ldc: ic)
                }
            }
        } else {
            var first = 0
            while first < batch {
                let samples = min(plan.samplesPerChunk, batch - first)
                let rows = samples * rowsPerSample
                for group in 0..<g.groups {
                    let dY = UnsafePointer(dOut + first * io.outShape.count + group * ocg)
                    im2col(UnsafePointer(io.input + first * io.inShape.count), samples: samples, group: group)
                    sgemm(true, false, m: depth, n: ocg, k: rows, a: UnsafePointer(column), lda: depth, b: dY, ldb: oc,
                          beta: 1, c: params.weightGrad + group * ocg, ldc: oc)
                    if let dIn = io.inputGrad {
                        sgemm(false, true, m: rows, n: depth, k: ocg, a: dY, lda: oc, b: UnsafePointer(params.weight + group * ocg), ldb: oc,
                              beta: 0, c: column, ldc: depth)
                        col2im(dIn + first * io.inShape.count, samples: samples, group: group)
                    }
                }
                first += samples
            }
        }
        if let biasGrad = params.biasGrad {
            accumulateColumnSums(dOut, rows: batch * rowsPerSample, columns: oc, partials: biasPartials, into: biasGrad)
        }
    }

    /// Fills `column` with group `group`'s im2col rows of `samples` samples starting at `x`.
    private func im2col(_ x: UnsafePointer<Float>, samples: Int, group: Int) {
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let (kh, kw, icg) = (g.kernelHeight, g.kernelWidth, icg)
        let (sh, sw, dh, dw, top, left) = (g.strideHeight, g.strideWidth, g.dilationHeight, g.dilationWidth, g.padTop, g.padLeft)
        let col = column, depth = depth, offset = group * icg
        parallelFor(samples * oh) { job in
            let sample = job / oh, outRow = job % oh
            let xs = x + sample * h * w * c + offset
            var dst = col + job * ow * depth
            for outCol in 0..<ow {
                for i in 0..<kh {
                    let ih = outRow * sh - top + i * dh
                    for j in 0..<kw {
                        let iw = outCol * sw - left + j * dw
                        if ih < 0 || ih >= h || iw < 0 || iw >= w {
                            dst.update(repeating: 0, count: icg)
                        } else {
                            dst.update(from: xs + (ih * w + iw) * c, count: icg)
                        }
                        dst += icg
                    }
                }
            }
        }
    }

    /// Accumulates the col-shaped gradient in `column` onto group `group`'s channels of dx.
    private func col2im(_ dx: UnsafeMutablePointer<Float>, samples: Int, group: Int) {
        let (h, w, c) = (io.inShape.height, io.inShape.width, io.inShape.channels)
        let (oh, ow) = (io.outShape.height, io.outShape.width)
        let (kh, kw, icg) = (g.kernelHeight, g.kernelWidth, icg)
        let (sh, sw, dh, dw, top, left) = (g.strideHeight, g.strideWidth, g.dilationHeight, g.dilationWidth, g.padTop, g.padLeft)
        let col = UnsafePointer(column), depth = depth, offset = group * icg
        // One job per sample: samples write disjoint parts of dx, each summed in a fixed order.
        parallelFor(samples) { sample in
            let dxs = dx + sample * h * w * c + offset
            var src = col + sample * oh * ow * depth
            for outRow in 0..<oh {
                for outCol in 0..<ow {
                    for i in 0..<kh {
                        let ih = outRow * sh - top + i * dh
                        for j in 0..<kw {
                            let iw = outCol * sw - left + j * dw
                            if ih >= 0 && ih < h && iw >= 0 && iw < w {
                                let to = dxs + (ih * w + iw) * c
                                for ch in 0..<icg { to[ch] += src[ch] }
                            }
                            src += icg
                        }
                    }
                }
            }
        }
    }
}
