#if os(Linux)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Elementwise activations with PyTorch's definitions; forward and backward side by side.
// inp is (B,H,W,C), out is (B,H,W,C)
// Forward saves nothing. Backward reads the output for relu6, hardsigmoid, sigmoid and tanh
// (so these may run in place, like ReLU), the input for gelu, silu and hardswish.
// Gradients at the kinks are autograd's (aten/src/ATen/native/cpu/Activation.cpp):
//   relu6 = hardtanh(0, 6):  dx = dy where 0 < x < 6, else 0 (0 at x = 0 and at x = 6)
//   hardsigmoid:             dx = dy/6 where −3 < x < 3, else 0
//   hardswish:               dx = 0 for x < −3, dy·(x/3 + 1/2) for −3 ≤ x ≤ 3, dy for x > 3
// From the output: 0 < relu6(x) < 6 ⇔ 0 < x < 6 and 0 < hardsigmoid(x) < 1 ⇔ −3 < x < 3.
// gelu (exact): y = x·Φ(x), dy/dx = Φ(x) + x·φ(x), Φ(x) = (1 + erf(x/√2))/2, φ(x) = e^(−x²/2)/√(2π).
// silu: y = x·σ(x), dy/dx = σ(x)·(1 + x·(1 − σ(x))). sigmoid: σ' = y(1 − y). tanh: 1 − y².
// Work is split into a fixed number of contiguous chunks (each element computed alone), so
// results do not depend on the thread count.

/// The forward value of `a` at x (scalar, Float; the kernel's loops call it).
@inline(__always) func activationValue(_ a: EngineActivation, _ x: Float) -> Float {
    switch a {
    case .gelu: return 0.5 * x * (1 + erff(x * 0.70710678118654752))
    case .silu: return x / (1 + expf(-x))
    case .relu6: return min(max(x, 0), 6)
    case .hardswish: return x * min(max(x + 3, 0), 6) / 6
    case .hardsigmoid: return min(max(x + 3, 0), 6) / 6
    case .sigmoid: return 1 / (1 + expf(-x))
    case .tanh: return tanhf(x)
    }
}

/// dy/dx of `a`, from the input x (gelu, silu, hardswish) or the output y (the others).
@inline(__always) func activationDerivative(_ a: EngineActivation, x: Float, y: Float) -> Float {
    switch a {
    case .gelu:
        return 0.5 * (1 + erff(x * 0.70710678118654752)) + x * 0.39894228040143268 * expf(-0.5 * x * x)
    case .silu:
        let s = 1 / (1 + expf(-x))
        return s * (1 + x * (1 - s))
    case .relu6: return y > 0 && y < 6 ? 1 : 0
    case .hardswish: return x < -3 ? 0 : (x <= 3 ? x / 3 + 0.5 : 1)
    case .hardsigmoid: return y > 0 && y < 1 ? 1.0 / 6 : 0
    case .sigmoid: return y * (1 - y)
    case .tanh: return 1 - y * y
    }
}

/// An activation a batch-norm kernel applies in its own store when the activation runs in place
/// on its output (`EngineGraph.compile`), saving a pass over the tensor: ReLU, or an activation
/// whose backward reads only the output (`EngineActivation.backwardFromOutput`).
enum FusedActivation: Equatable {
    case relu
    case activation(EngineActivation)
}

/// Applies `a` in place to `count` floats just stored (one row, in L1).
func applyFusedActivation(_ a: FusedActivation, _ p: UnsafeMutablePointer<Float>, count: Int) {
    switch a {
    case .relu: for i in 0..<count { p[i] = max(p[i], 0) }
    case .activation(.relu6): for i in 0..<count { p[i] = activationValue(.relu6, p[i]) }
    case .activation(.hardsigmoid): for i in 0..<count { p[i] = activationValue(.hardsigmoid, p[i]) }
    case .activation(.sigmoid): for i in 0..<count { p[i] = activationValue(.sigmoid, p[i]) }
    case .activation(.tanh): for i in 0..<count { p[i] = activationValue(.tanh, p[i]) }
    case .activation(let other): for i in 0..<count { p[i] = activationValue(other, p[i]) }
    }
}

/// Activation kernel (one of `EngineActivation`), standalone or in place after any node.
final class ActivationKernel: EngineKernel {
    let count: Int
    let kind: EngineActivation
    let input: UnsafeMutablePointer<Float>
    let inputGrad: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    let outputGrad: UnsafeMutablePointer<Float>?

    init(_ kind: EngineActivation, storage s: NodeStorage) {
        count = s.outputShape.count
        self.kind = kind
        input = s.inputs[0]
        inputGrad = s.inputGrads[0]
        output = s.output
        outputGrad = s.outputGrad
    }

    /// Set at compile time when the batch norm before applies this activation in its store
    /// (`BatchNormKernel.fused`): forward has nothing to do.
    var fused = false

    var algorithm: String? { fused ? "fused fwd" : input == output ? "in place" : nil }

    func forward(batch: Int, training: Bool) {
        if fused { return }
        let total = batch * count
        let (x, y, kind) = (UnsafePointer(input), output, kind)
        let chunks = elementwiseChunks(total)
        parallelFor(chunks) { chunk in
            let range = chunkRange(chunk, of: chunks, count: total)
            // One specialised loop per kind (the switch hoisted out of the loop).
            switch kind {
            case .relu6: for i in range { y[i] = activationValue(.relu6, x[i]) }
            case .hardsigmoid: for i in range { y[i] = activationValue(.hardsigmoid, x[i]) }
            case .hardswish: for i in range { y[i] = activationValue(.hardswish, x[i]) }
            case .sigmoid: for i in range { y[i] = activationValue(.sigmoid, x[i]) }
            case .silu: for i in range { y[i] = activationValue(.silu, x[i]) }
            case .tanh: for i in range { y[i] = activationValue(.tanh, x[i]) }
            case .gelu: for i in range { y[i] = activationValue(.gelu, x[i]) }
            }
        }
    }

    func backward(batch: Int) {
        guard let dIn = inputGrad, let dOut = outputGrad else { return }
        let total = batch * count
        let (x, y, dy, kind) = (UnsafePointer(input), UnsafePointer(output), UnsafePointer(dOut), kind)
        let fromOutput = kind.backwardFromOutput
        let chunks = elementwiseChunks(total)
        parallelFor(chunks) { chunk in
            let range = chunkRange(chunk, of: chunks, count: total)
            // In place, x and y are the same storage and only y is meaningful: read only it.
            let src = fromOutput ? y : x
            switch kind {
            case .relu6: for i in range { dIn[i] += dy[i] * activationDerivative(.relu6, x: 0, y: src[i]) }
            case .hardsigmoid: for i in range { dIn[i] += dy[i] * activationDerivative(.hardsigmoid, x: 0, y: src[i]) }
            case .sigmoid: for i in range { dIn[i] += dy[i] * activationDerivative(.sigmoid, x: 0, y: src[i]) }
            case .tanh: for i in range { dIn[i] += dy[i] * activationDerivative(.tanh, x: 0, y: src[i]) }
            case .hardswish: for i in range { dIn[i] += dy[i] * activationDerivative(.hardswish, x: src[i], y: 0) }
            case .silu: for i in range { dIn[i] += dy[i] * activationDerivative(.silu, x: src[i], y: 0) }
            case .gelu: for i in range { dIn[i] += dy[i] * activationDerivative(.gelu, x: src[i], y: 0) }
            }
        }
    }
}
