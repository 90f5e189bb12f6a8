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

// σ(x) and silu run 16 lanes at a time with a vector e^x (libm's expf is a scalar call: silu
// took 2 ns per element, 12× a memory-bound pass, and EfficientNet applies it everywhere).
// Every element goes through the same vector code (a ragged end is padded into a vector), so
// a value depends only on its input, not on where a chunk or a row boundary falls.

@inline(__always) private func load(_ p: UnsafePointer<Float>) -> DV { UnsafeRawPointer(p).loadUnaligned(as: DV.self) }
@inline(__always) private func store(_ p: UnsafeMutablePointer<Float>, _ v: DV) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: DV.self)
}

/// e^x per lane: x clamped to [−87, 88], x = n·ln 2 + r with |r| ≤ ln 2 / 2 (n by the
/// 1.5·2²³ rounding trick, ln 2 in two parts), e^r by Cephes' expf polynomial (≤ 2 ulp),
/// 2ⁿ built in the exponent bits.
@inline(__always) func vectorExp(_ v: DV) -> DV {
    var x = v.replacing(with: 88, where: v .> 88)
    x = x.replacing(with: -87, where: x .< -87)
    let magic = DV(repeating: 12_582_912)   // 1.5·2²³: adding it rounds to an integer
    let shifted = x * 1.44269504088896341 + magic
    let n = shifted - magic
    var r = x - n * 0.693359375
    r = r - n * -2.12194440e-4
    var p = DV(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    let er = p * (r * r) + r + 1
    let bits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self) &<< 23 &+ 0x3F80_0000
    return er * unsafeBitCast(bits, to: DV.self)
}

/// σ(x) = 1/(1 + e^−x) per lane.
@inline(__always) func vectorSigmoid(_ x: DV) -> DV { 1 / (1 + vectorExp(-x)) }

/// erf(x) per lane: the rational approximation x·P(x²)/Q(x²) on x clamped to [−4, 4] (outside,
/// erf is ±1 in single precision) used by Eigen and XLA for float erf; absolute error below
/// 2·10⁻⁷ against libm's erff (GeluTests checks it over a dense grid).
@inline(__always) func vectorErf(_ v: DV) -> DV {
    var x = v.replacing(with: 4, where: v .> 4)
    x = x.replacing(with: -4, where: x .< -4)
    let x2 = x * x
    var p = x2 * -2.72614225801306e-10 + 2.77068142495902e-08
    p = x2 * p + -2.10102402082508e-06
    p = x2 * p + -5.69250639462346e-05
    p = x2 * p + -7.34990630326855e-04
    p = x2 * p + -2.95459980854025e-03
    p = x2 * p + -1.60960333262415e-02
    var q = x2 * -1.45660718464996e-05 + -2.13374055278905e-04
    q = x2 * q + -1.68282697438203e-03
    q = x2 * q + -7.37332916720468e-03
    q = x2 * q + -1.42647390514189e-02
    return x * p / q
}

/// gelu(x) = x·Φ(x) = x·(1 + erf(x/√2))/2 per lane.
@inline(__always) func vectorGELU(_ x: DV) -> DV { 0.5 * x * (1 + vectorErf(x * 0.70710678118654752)) }

/// gelu'(x) = Φ(x) + x·φ(x) per lane.
@inline(__always) func vectorGELUDerivative(_ x: DV) -> DV {
    0.5 * (1 + vectorErf(x * 0.70710678118654752)) + x * 0.39894228040143268 * vectorExp(-0.5 * x * x)
}

/// y = gelu(x) over `count` floats, 16 lanes at a time (libm's erff is a scalar call: 3 GB/s
/// on airbench's 1024×15×15×64 maps, against 50 for a memory-bound pass); in place allowed.
func geluForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        store(y + i, vectorGELU(load(x + i)))
        i += 16
    }
    if i < count {
        var v = DV()
        for j in 0..<(count - i) { v[j] = x[i + j] }
        let r = vectorGELU(v)
        for j in 0..<(count - i) { y[i + j] = r[j] }
    }
}

/// dx += dy·gelu'(x) over `count` floats (dx = dy·gelu'(x) + 0 when `storing`).
func geluBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int,
                  storing: Bool = false) {
    var i = 0
    while i + 16 <= count {
        store(dx + i, (storing ? DV() : load(dx + i)) + load(dy + i) * vectorGELUDerivative(load(x + i)))
        i += 16
    }
    if i < count {
        var v = DV()
        for j in 0..<(count - i) { v[j] = x[i + j] }
        let d = vectorGELUDerivative(v)
        updateGradient(dx + i, 0..<(count - i), store: storing) { j in dy[i + j] * d[j] }
    }
}

/// y = σ(x) (or x·σ(x) for silu) over `count` floats; in place allowed.
func sigmoidOrSiLU(silu: Bool, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 16 <= count {
        let v = load(x + i)
        store(y + i, silu ? v * vectorSigmoid(v) : vectorSigmoid(v))
        i += 16
    }
    if i < count {
        var v = DV()
        for j in 0..<(count - i) { v[j] = x[i + j] }
        let r = silu ? v * vectorSigmoid(v) : vectorSigmoid(v)
        for j in 0..<(count - i) { y[i + j] = r[j] }
    }
}

/// dx += dy·silu'(x) = dy·σ(x)·(1 + x·(1 − σ(x))) over `count` floats (dx = … + 0 when `storing`).
func siluBackward(_ x: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, count: Int,
                  storing: Bool = false) {
    @inline(__always) func derivative(_ v: DV) -> DV { let s = vectorSigmoid(v); return s * (1 + v * (1 - s)) }
    var i = 0
    while i + 16 <= count {
        store(dx + i, (storing ? DV() : load(dx + i)) + load(dy + i) * derivative(load(x + i)))
        i += 16
    }
    if i < count {
        var v = DV()
        for j in 0..<(count - i) { v[j] = x[i + j] }
        let d = derivative(v)
        updateGradient(dx + i, 0..<(count - i), store: storing) { j in dy[i + j] * d[j] }
    }
}

/// The forward value of `a` at x (scalar, Float; the kernel's loops call it).
@inline(__always) func activationValue(_ a: EngineActivation, _ x: Float) -> Float {
    switch a {
    case .gelu: return vectorGELU(DV(repeating: x))[0]
    case .silu: return x * vectorSigmoid(DV(repeating: x))[0]
    case .relu6: return min(max(x, 0), 6)
    case .hardswish: return x * min(max(x + 3, 0), 6) / 6
    case .hardsigmoid: return min(max(x + 3, 0), 6) / 6
    case .sigmoid: return vectorSigmoid(DV(repeating: x))[0]
    case .tanh: return tanhf(x)
    }
}

/// dy/dx of `a`, from the input x (gelu, silu, hardswish) or the output y (the others).
@inline(__always) func activationDerivative(_ a: EngineActivation, x: Float, y: Float) -> Float {
    switch a {
    case .gelu:
        return vectorGELUDerivative(DV(repeating: x))[0]
    case .silu:
        let s = vectorSigmoid(DV(repeating: x))[0]
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
    case .activation(.sigmoid): sigmoidOrSiLU(silu: false, p, p, count: count)
    case .activation(.tanh): for i in 0..<count { p[i] = activationValue(.tanh, p[i]) }
    case .activation(let other): for i in 0..<count { p[i] = activationValue(other, p[i]) }
    }
}

/// A kernel whose backward a batch norm can do (`BatchNormKernel.fusedActivationGradient`):
/// ReLUKernel and ActivationKernel.
protocol ActivationBackwardInNorm: AnyObject {
    /// Set at compile time (training) when the batch norm before does this activation's
    /// backward: backward has nothing to do.
    var backwardInNorm: Bool { get set }
}

/// Activation kernel (one of `EngineActivation`), standalone or in place after any node.
final class ActivationKernel: EngineKernel, ActivationBackwardInNorm {
    let count: Int
    let kind: EngineActivation
    let io: UnaryTensors

    init(_ kind: EngineActivation, storage s: NodeStorage) {
        count = s.outputShape.count
        self.kind = kind
        io = UnaryTensors(s)
    }

    /// Set at compile time when the batch norm before applies this activation in its store
    /// (`BatchNormKernel.fused`): forward has nothing to do.
    var fused = false
    /// Set at compile time (training) when the batch norm before does this activation's
    /// backward (`BatchNormKernel.fusedActivationGradient`): backward has nothing to do.
    var backwardInNorm = false

    var algorithm: String? { backwardInNorm ? "fused" : fused ? "fused fwd" : io.input == io.output ? "in place" : nil }

    /// Backward stores the input gradient (`storeInputGradient`).
    var storesInputGradient = false
    func storeInputGradient(_ input: Int) -> Bool { storesInputGradient = true; return true }

    func forward(batch: Int, training: Bool) {
        if fused { return }
        let total = batch * count
        let (x, y, kind) = (UnsafePointer(io.input), io.output, kind)
        let chunks = elementwiseChunks(total)
        parallelFor(chunks) { chunk in
            let range = chunkRange(chunk, of: chunks, count: total)
            // One specialised loop per kind (the switch hoisted out of the loop).
            switch kind {
            case .relu6: for i in range { y[i] = activationValue(.relu6, x[i]) }
            case .hardsigmoid: for i in range { y[i] = activationValue(.hardsigmoid, x[i]) }
            case .hardswish: for i in range { y[i] = activationValue(.hardswish, x[i]) }
            case .sigmoid: sigmoidOrSiLU(silu: false, x + range.lowerBound, y + range.lowerBound, count: range.count)
            case .silu: sigmoidOrSiLU(silu: true, x + range.lowerBound, y + range.lowerBound, count: range.count)
            case .tanh: for i in range { y[i] = activationValue(.tanh, x[i]) }
            case .gelu: geluForward(x + range.lowerBound, y + range.lowerBound, count: range.count)
            }
        }
    }

    func backward(batch: Int) {
        guard !backwardInNorm, let dIn = io.inputGrad, let dOut = io.outputGrad else { return }
        let total = batch * count
        let (x, y, dy, kind) = (UnsafePointer(io.input), UnsafePointer(io.output), UnsafePointer(dOut), kind)
        let (fromOutput, store) = (kind.backwardFromOutput, storesInputGradient)
        let chunks = elementwiseChunks(total)
        parallelFor(chunks) { chunk in
            let range = chunkRange(chunk, of: chunks, count: total)
            // In place, x and y are the same storage and only y is meaningful: read only it.
            let src = fromOutput ? y : x
            switch kind {
            case .relu6: updateGradient(dIn, range, store: store) { i in dy[i] * activationDerivative(.relu6, x: 0, y: src[i]) }
            case .hardsigmoid:
                updateGradient(dIn, range, store: store) { i in dy[i] * activationDerivative(.hardsigmoid, x: 0, y: src[i]) }
            case .sigmoid: updateGradient(dIn, range, store: store) { i in dy[i] * activationDerivative(.sigmoid, x: 0, y: src[i]) }
            case .tanh: updateGradient(dIn, range, store: store) { i in dy[i] * activationDerivative(.tanh, x: 0, y: src[i]) }
            case .hardswish:
                updateGradient(dIn, range, store: store) { i in dy[i] * activationDerivative(.hardswish, x: src[i], y: 0) }
            case .silu:
                siluBackward(src + range.lowerBound, dy + range.lowerBound, dIn + range.lowerBound, count: range.count, storing: store)
            case .gelu:
                geluBackward(src + range.lowerBound, dy + range.lowerBound, dIn + range.lowerBound, count: range.count, storing: store)
            }
        }
    }
}
