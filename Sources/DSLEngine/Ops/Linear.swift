// Fully connected layer on the flattened NHWC input (features in (h,w,c) order).
// inp is (B,F) with F = H·W·C, weight is (F,OUT), bias is (OUT), out is (B,1,1,OUT)
// Forward saves nothing; backward re-reads the input for dW += inpᵀ × dY.

/// Linear kernel: out = inp × W (+ bias).
final class LinearKernel: EngineKernel {
    let features: Int
    let outFeatures: Int
    let input: UnsafeMutablePointer<Float>
    let inputGrad: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?
    let weight: UnsafeMutablePointer<Float>
    let weightGrad: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>?
    let biasGrad: UnsafeMutablePointer<Float>?
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
        input = s.inputs[0]
        inputGrad = s.inputGrads[0]
        output = s.output
        outputGrad = s.outputGrad
        weight = s.parameters[0]
        weightGrad = s.parameterGrads[0]
        bias = s.parameters.count > 1 ? s.parameters[1] : nil
        biasGrad = s.parameterGrads.count > 1 ? s.parameterGrads[1] : nil
        block = try MemoryBlock(LinearKernel.layout(outFeatures: outFeatures))
        biasPartials = block.doubles(at: 0)
    }

    func forward(batch: Int, training: Bool) {
        let (f, o) = (features, outFeatures)
        sgemm(false, false, m: batch, n: o, k: f, a: input, lda: f, b: weight, ldb: o,
              beta: 0, c: output, ldc: o)
        if let bias = bias {
            for r in 0..<batch {
                let row = output + r * o
                for j in 0..<o { row[j] += bias[j] }
            }
        }
    }

    var ownedScratchBytes: Int { block.bytes }

    func backward(batch: Int) {
        guard let dOut = outputGrad else { return }
        let (f, o) = (features, outFeatures)
        sgemm(true, false, m: f, n: o, k: batch, a: input, lda: f, b: dOut, ldb: o,
              beta: 1, c: weightGrad, ldc: o)
        if let dIn = inputGrad {
            sgemm(false, true, m: batch, n: f, k: o, a: dOut, lda: o, b: weight, ldb: o,
                  beta: 1, c: dIn, ldc: f)
        }
        if let biasGrad = biasGrad {
            accumulateColumnSums(dOut, rows: batch, columns: o, partials: biasPartials, into: biasGrad)
        }
    }
}
