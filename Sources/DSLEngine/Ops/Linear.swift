// Fully connected layer on the flattened NHWC input (features in (h,w,c) order).
// inp is (B,F) with F = H·W·C, weight is (F,OUT), bias is (OUT), out is (B,1,1,OUT)
// Forward saves nothing; backward re-reads the input for dW += inpᵀ × dY.

/// Linear kernel: out = inp × W (+ bias).
final class LinearKernel: EngineKernel {
    let features: Int
    let outFeatures: Int
    let io: UnaryTensors
    let params: ParameterTensors
    let biasPartials: UnsafeMutablePointer<Double>
    let block: MemoryBlock

    /// Bytes of its scratch (bias-gradient partial sums) for `outFeatures` outputs.
    static func layout(outFeatures: Int) -> MemoryLayout64 {
        var l = MemoryLayout64()
        _ = l.doubles(maxReductionChunks * outFeatures)
        return l
    }

    init(storage s: NodeStorage) throws {
        features = s.inputShapes[0].count
        outFeatures = s.outputShape.channels
        io = UnaryTensors(s)
        params = ParameterTensors(s)
        block = try MemoryBlock(LinearKernel.layout(outFeatures: outFeatures))
        biasPartials = block.doubles(at: 0)
    }

    func forward(batch: Int, training: Bool) {
        let (f, o) = (features, outFeatures)
        sgemm(false, false, m: batch, n: o, k: f, a: io.input, lda: f, b: params.weight, ldb: o,
              beta: 0, c: io.output, ldc: o)
        if let bias = params.bias {
            for r in 0..<batch {
                let row = io.output + r * o
                for j in 0..<o { row[j] += bias[j] }
            }
        }
    }

    var ownedScratchBytes: Int { block.bytes }

    func backward(batch: Int) {
        guard let dOut = io.outputGrad else { return }
        let (f, o) = (features, outFeatures)
        sgemm(true, false, m: f, n: o, k: batch, a: io.input, lda: f, b: dOut, ldb: o,
              beta: 1, c: params.weightGrad, ldc: o)
        if let dIn = io.inputGrad {
            sgemm(false, true, m: batch, n: f, k: o, a: dOut, lda: o, b: params.weight, ldb: o,
                  beta: 1, c: dIn, ldc: f)
        }
        if let biasGrad = params.biasGrad {
            accumulateColumnSums(dOut, rows: batch, columns: o, partials: biasPartials, into: biasGrad)
        }
    }
}
