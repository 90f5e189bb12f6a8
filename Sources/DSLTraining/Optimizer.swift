import DSLEngine

/// Stochastic gradient descent with momentum and weight decay, PyTorch semantics, one fused loop.
///
/// With d = g + wd·w (wd = 0 inside `noDecay` ranges):
/// - plain momentum: v ← μ·v + d;  w ← w − lr·v
/// - Nesterov:       v ← μ·v + d;  w ← w − lr·(d + μ·v)
/// Parameters and gradients are one contiguous buffer each; the velocity buffer is owned here.
public final class SGDOptimizer: CustomStringConvertible {
    /// Number of parameters (length of the parameter, gradient and velocity buffers).
    public let parameterCount: Int
    /// Momentum μ (0 disables momentum: plain SGD).
    public var momentum: Float
    /// L2 weight decay coefficient.
    public var weightDecay: Float
    /// Use Nesterov momentum.
    public var nesterov: Bool
    /// Parameter ranges exempt from weight decay (biases, batch-norm scales and shifts).
    public let noDecay: [Range<Int>]
    /// Contiguous segments covering 0..<parameterCount, each with decay on or off.
    private let segments: [(range: Range<Int>, decay: Bool)]
    private let velocity: UnsafeMutablePointer<Float>

    /// Creates an optimiser with zero velocity; throws when a `noDecay` range is outside 0..<parameterCount.
    public init(parameterCount: Int, momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false,
                noDecay: [Range<Int>] = []) throws {
        guard parameterCount >= 0 else { throw TrainingError("SGD: parameter count \(parameterCount) is negative") }
        guard momentum >= 0, weightDecay >= 0 else { throw TrainingError("SGD: momentum and weight decay must be ≥ 0") }
        guard !nesterov || momentum > 0 else { throw TrainingError("SGD: Nesterov momentum needs momentum > 0") }
        for range in noDecay where range.lowerBound < 0 || range.upperBound > parameterCount {
            throw TrainingError("SGD: no-decay range \(range) outside the \(parameterCount) parameters")
        }
        self.parameterCount = parameterCount; self.momentum = momentum; self.weightDecay = weightDecay
        self.nesterov = nesterov; self.noDecay = noDecay
        // Merge the ranges into alternating decay/no-decay segments.
        var exempt = [Bool](repeating: false, count: parameterCount)
        for range in noDecay { for i in range { exempt[i] = true } }
        var segments: [(range: Range<Int>, decay: Bool)] = []
        var start = 0
        while start < parameterCount {
            var end = start + 1
            while end < parameterCount && exempt[end] == exempt[start] { end += 1 }
            segments.append((start..<end, !exempt[start]))
            start = end
        }
        self.segments = segments
        velocity = .allocate(capacity: max(1, parameterCount))
        velocity.initialize(repeating: 0, count: max(1, parameterCount))
    }

    deinit { velocity.deallocate() }

    /// One update of `parameters` from `gradients` (both `parameterCount` floats) at learning rate `learningRate`.
    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate: Float) {
        let mu = momentum, lr = learningRate, v = velocity, nesterov = nesterov, weightDecay = weightDecay
        // Elementwise, so chunks on different threads give the same result as one loop.
        let segments = self.segments
        let total = parameterCount
        let chunks = max(1, min(64, total / 16_384))
        parallelFor(chunks) { chunk in
          let mine = chunkRange(chunk, of: chunks, count: total)
          for segment in segments where segment.range.overlaps(mine) {
            let wd = segment.decay ? weightDecay : 0
            let lo = max(segment.range.lowerBound, mine.lowerBound), hi = min(segment.range.upperBound, mine.upperBound)
            if mu == 0 {
                for i in lo..<hi { parameters[i] -= lr * (gradients[i] + wd * parameters[i]) }
            } else if nesterov {
                for i in lo..<hi {
                    let d = gradients[i] + wd * parameters[i]
                    let velocity = mu * v[i] + d
                    v[i] = velocity
                    parameters[i] -= lr * (d + mu * velocity)
                }
            } else {
                for i in lo..<hi {
                    let velocity = mu * v[i] + gradients[i] + wd * parameters[i]
                    v[i] = velocity
                    parameters[i] -= lr * velocity
                }
            }
          }
        }
    }

    /// Array convenience for `step(parameters:gradients:learningRate:)`; throws when a buffer has the wrong length.
    public func step(_ parameters: inout [Float], gradients: [Float], learningRate: Float) throws {
        guard parameters.count == parameterCount, gradients.count == parameterCount else {
            throw TrainingError("SGD: \(parameters.count) parameters and \(gradients.count) gradients, expected \(parameterCount) each")
        }
        parameters.withUnsafeMutableBufferPointer { p in
            gradients.withUnsafeBufferPointer { g in
                if parameterCount > 0 { step(parameters: p.baseAddress!, gradients: g.baseAddress!, learningRate: learningRate) }
            }
        }
    }

    /// A copy of the velocity buffer (for checkpoints).
    public var velocityValues: [Float] { Array(UnsafeBufferPointer(start: velocity, count: parameterCount)) }

    /// Restores the velocity buffer from a checkpoint; throws when the length differs.
    public func setVelocity(_ values: [Float]) throws {
        guard values.count == parameterCount else {
            throw TrainingError("SGD: checkpoint velocity has \(values.count) values, the model has \(parameterCount) parameters")
        }
        values.withUnsafeBufferPointer { if parameterCount > 0 { velocity.update(from: $0.baseAddress!, count: parameterCount) } }
    }

    /// Sets the velocity to zero.
    public func resetVelocity() { velocity.update(repeating: 0, count: parameterCount) }

    /// The velocity as checkpoint tensor "optimizer.velocity" (shape [parameterCount]).
    public func tensors() -> [String: StoredTensor] {
        ["optimizer.velocity": try! StoredTensor(shape: [parameterCount], floats: velocityValues)]
    }

    /// Restores the velocity from checkpoint contents written with `tensors()`.
    public func restore(from contents: SafetensorsContents, file: String = "checkpoint") throws {
        try setVelocity(contents.floats("optimizer.velocity", shape: [parameterCount], file: file))
    }

    /// A one-line description for logs, e.g. "SGD momentum 0.9 (Nesterov), weight decay 0.001 (off for 12 ranges)".
    public var description: String {
        var text = momentum > 0 ? "SGD momentum \(momentum)\(nesterov ? " (Nesterov)" : "")" : "SGD"
        text += ", weight decay \(weightDecay)"
        if !noDecay.isEmpty && weightDecay > 0 {
            let exempt = segments.filter { !$0.decay }.reduce(0) { $0 + $1.range.count }
            text += " (off for \(exempt) parameters in \(noDecay.count) ranges)"
        }
        return text
    }
}
