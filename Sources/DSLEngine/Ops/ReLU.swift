// ReLU and leaky ReLU, elementwise; may run in place (out aliases inp). A ReLU in place on a
// convolution's output is applied by the convolution's store instead (forward only); in
// training, the backward of a ReLU before a convolution is done by the convolution's
// backward-data (`ConvKernel.masksInputGradient`), and of one after a batch norm by the batch norm.
// inp is (B,H,W,C), out is (B,H,W,C)
// Backward works from the output (out > 0 ⇔ inp > 0 when slope > 0), so the input need not be
// kept; with slope ≤ 0 the sign is read from the input instead (never in place then).
// Visualisation (`EngineGraph.inputGradient`) swaps the backward rule (`ReLUBackwardRule`):
// deconvnet passes dY where dY > 0, guided where both the input and dY are > 0 (else
// slope·dY, 0 for a plain ReLU); training always uses `.backprop`, the code path above.

/// How a backward pass treats ReLUs (Springenberg et al. 2015, "Striving for Simplicity",
/// Figure 1): which entries of the output gradient dY reach the input. Leaky ReLUs pass
/// slope·dY where the condition fails.
public enum ReLUBackwardRule: String, CaseIterable, Sendable {
    /// The gradient (Simonyan et al.'s saliency): dY where the forward input was > 0.
    case backprop
    /// Zeiler and Fergus's deconvnet: dY where dY > 0, whatever the forward input.
    case deconvnet
    /// Guided backpropagation: dY where both the forward input and dY are > 0.
    case guided
}

/// ReLU (slope 0) or leaky-ReLU kernel.
final class ReLUKernel: EngineKernel, ActivationBackwardInNorm {
    let count: Int
    let slope: Float
    /// Backward takes the sign from the output (relu, leaky with slope > 0) or else the input.
    let signFromOutput: Bool
    let io: UnaryTensors
    /// Set at compile time when this ReLU runs in place on a convolution's output and the
    /// convolution applies it in its store (`ConvKernel.fusedReLU`): forward has nothing to do.
    var fused = false
    /// Which gradients backward passes: `.backprop` (training, the gradient) unless an
    /// `EngineGraph.inputGradient` pass set another rule for its duration.
    var rule = ReLUBackwardRule.backprop
    /// Backward stores the input gradient (`storeInputGradient`).
    var storesInputGradient = false
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient = true; return true }
    /// Set at compile time (training) when the batch norm before does this ReLU's backward
    /// (`BatchNormKernel.fusedActivationGradient`): backward has nothing to do.
    var backwardInNorm = false
    /// Set at compile time (training) when the convolution after this ReLU does its backward
    /// (`ConvKernel.masksInputGradient`; the input and output gradients share storage):
    /// backward has nothing to do.
    var backwardInConvolution = false
    /// "fused fwd" when the convolution or batch norm before applies this ReLU, "fused" when the
    /// batch norm before or the convolution after does its backward too (shown by `dsl bench`).
    var algorithm: String? { backwardInNorm || backwardInConvolution ? "fused" : fused ? "fused fwd" : nil }

    init(slope: Float, signFromOutput: Bool, storage s: NodeStorage) {
        count = s.outputShape.count
        self.slope = slope
        self.signFromOutput = signFromOutput
        io = UnaryTensors(s)
    }

    func forward(batch: Int, training: Bool) {
        if fused { return }
        let total = batch * count
        let (x, y, slope) = (io.input, io.output, slope)
        let chunks = elementwiseChunks(total)
        parallelFor(chunks) { chunk in
            let range = chunkRange(chunk, of: chunks, count: total)
            if slope == 0 {
                for i in range { y[i] = max(x[i], 0) }
            } else {
                for i in range { let v = x[i]; y[i] = v > 0 ? v : slope * v }
            }
        }
    }

    func backward(batch: Int) {
        guard !backwardInNorm, !backwardInConvolution, let dIn = io.inputGrad, let dOut = io.outputGrad else { return }
        let total = batch * count
        let sign = UnsafePointer(signFromOutput ? io.output : io.input)
        let (slope, store) = (self.slope, storesInputGradient)
        let chunks = elementwiseChunks(total)
        switch rule {
        case .backprop:
            parallelFor(chunks) { chunk in
                updateGradient(dIn, chunkRange(chunk, of: chunks, count: total), store: store) { i in
                    sign[i] > 0 ? dOut[i] : slope * dOut[i]
                }
            }
        case .deconvnet:
            parallelFor(chunks) { chunk in
                updateGradient(dIn, chunkRange(chunk, of: chunks, count: total), store: store) { i in
                    dOut[i] > 0 ? dOut[i] : slope * dOut[i]
                }
            }
        case .guided:
            parallelFor(chunks) { chunk in
                updateGradient(dIn, chunkRange(chunk, of: chunks, count: total), store: store) { i in
                    sign[i] > 0 && dOut[i] > 0 ? dOut[i] : slope * dOut[i]
                }
            }
        }
    }
}
