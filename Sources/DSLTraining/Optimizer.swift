import DSLEngine

/// A range of the contiguous parameter block with its own update settings (PyTorch's
/// parameter groups): a learning-rate multiplier, an L2 weight-decay coefficient, and when it
/// is trained at all.
public struct ParameterGroup: Equatable, Sendable {
    /// The parameters (offsets into the contiguous block).
    public var range: Range<Int>
    /// The group's learning rate is the step's rate times this.
    public var learningRateMultiplier: Float
    /// The group's L2 coefficient wd (d = g + wd·w); 0 for no decay.
    public var weightDecay: Float
    /// When the group is updated: in an epoch where `training.isTrained(inEpoch:)` is false its
    /// parameters get no update and no decay, and their velocity is kept as it is (PyTorch's
    /// `requires_grad = False`: the parameter has no gradient, so SGD skips it).
    public var training: ParameterTraining

    /// Creates a group.
    public init(range: Range<Int>, learningRateMultiplier: Float = 1, weightDecay: Float = 0, training: ParameterTraining = .always) {
        self.range = range; self.learningRateMultiplier = learningRateMultiplier
        self.weightDecay = weightDecay; self.training = training
    }
}

/// Stochastic gradient descent with momentum and weight decay, PyTorch semantics, one fused loop.
///
/// Per parameter group (learning rate lr·m, L2 coefficient wd), with d = g + wd·w:
/// - plain momentum: v ← μ·v + d;  w ← w − (lr·m)·v
/// - Nesterov:       v ← μ·v + d;  w ← w − (lr·m)·(d + μ·v)
/// A group not trained in the step's epoch is skipped (w and v unchanged). This is
/// torch.optim.SGD with one param_group per group (lr = lr·m, weight_decay = wd, dampening 0).
/// Parameters and gradients are one contiguous buffer each; the velocity buffer is owned here.
public final class SGDOptimizer: CustomStringConvertible {
    /// Number of parameters (length of the parameter, gradient and velocity buffers).
    public let parameterCount: Int
    /// Momentum μ (0 disables momentum: plain SGD).
    public let momentum: Float
    /// The L2 weight-decay coefficient of the decayed parameters when built with
    /// `init(parameterCount:momentum:weightDecay:nesterov:noDecay:)`; the largest group
    /// coefficient when built from groups.
    public let weightDecay: Float
    /// Use Nesterov momentum.
    public let nesterov: Bool
    /// Parameter ranges exempt from weight decay (as given to the `noDecay` initialiser; empty
    /// for an optimiser built from groups).
    public let noDecay: [Range<Int>]
    /// Contiguous segments covering 0..<parameterCount, in order, each with its settings.
    public private(set) var groups: [ParameterGroup]
    private let velocity: UnsafeMutablePointer<Float>
    /// The groups trained in `activeEpoch` (recomputed when the epoch changes, not every step).
    private var active: (epoch: Int, groups: [ParameterGroup])?

    /// Creates an optimiser with zero velocity whose every parameter has weight decay
    /// `weightDecay` except those in `noDecay`; throws when a range is outside 0..<parameterCount.
    public convenience init(parameterCount: Int, momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false,
                            noDecay: [Range<Int>] = []) throws {
        guard parameterCount >= 0 else { throw TrainingError("SGD: parameter count \(parameterCount) is negative") }
        for range in noDecay where range.lowerBound < 0 || range.upperBound > parameterCount {
            throw TrainingError("SGD: no-decay range \(range) outside the \(parameterCount) parameters")
        }
        var exempt = [Bool](repeating: false, count: parameterCount)
        for range in noDecay { for i in range { exempt[i] = true } }
        var groups: [ParameterGroup] = []
        var start = 0
        while start < parameterCount {
            var end = start + 1
            while end < parameterCount && exempt[end] == exempt[start] { end += 1 }
            groups.append(ParameterGroup(range: start..<end, weightDecay: exempt[start] ? 0 : weightDecay))
            start = end
        }
        try self.init(parameterCount: parameterCount, momentum: momentum, nesterov: nesterov, groups: groups,
                      weightDecay: weightDecay, noDecay: noDecay)
    }

    /// Creates an optimiser with zero velocity from parameter groups: disjoint ranges within
    /// 0..<parameterCount, multipliers > 0 and coefficients ≥ 0, all finite. Parameters in no
    /// group are trained with multiplier 1 and no weight decay.
    public convenience init(parameterCount: Int, momentum: Float = 0.9, nesterov: Bool = false, groups: [ParameterGroup]) throws {
        try self.init(parameterCount: parameterCount, momentum: momentum, nesterov: nesterov, groups: groups,
                      weightDecay: groups.map(\.weightDecay).max() ?? 0, noDecay: [])
    }

    private init(parameterCount: Int, momentum: Float, nesterov: Bool, groups given: [ParameterGroup], weightDecay: Float, noDecay: [Range<Int>]) throws {
        guard parameterCount >= 0 else { throw TrainingError("SGD: parameter count \(parameterCount) is negative") }
        guard momentum >= 0, momentum.isFinite, weightDecay >= 0, weightDecay.isFinite else { throw TrainingError("SGD: momentum and weight decay must be ≥ 0") }
        guard !nesterov || momentum > 0 else { throw TrainingError("SGD: Nesterov momentum needs momentum > 0") }
        var covered: [ParameterGroup] = []
        var next = 0
        for group in given.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) where !group.range.isEmpty {
            guard group.range.lowerBound >= 0, group.range.upperBound <= parameterCount else {
                throw TrainingError("SGD: parameter group \(group.range) outside the \(parameterCount) parameters")
            }
            guard group.range.lowerBound >= next else { throw TrainingError("SGD: parameter group \(group.range) overlaps another") }
            guard group.learningRateMultiplier > 0, group.learningRateMultiplier.isFinite, group.weightDecay >= 0, group.weightDecay.isFinite else {
                throw TrainingError("SGD: parameter group \(group.range) has learning-rate multiplier \(group.learningRateMultiplier) and weight decay \(group.weightDecay); expected a multiplier > 0 and a decay ≥ 0")
            }
            if group.range.lowerBound > next { covered.append(ParameterGroup(range: next..<group.range.lowerBound)) }
            covered.append(group)
            next = group.range.upperBound
        }
        if next < parameterCount { covered.append(ParameterGroup(range: next..<parameterCount)) }
        self.parameterCount = parameterCount; self.momentum = momentum; self.weightDecay = weightDecay
        self.nesterov = nesterov; self.noDecay = noDecay; self.groups = covered
        velocity = .allocate(capacity: max(1, parameterCount))
        velocity.initialize(repeating: 0, count: max(1, parameterCount))
    }

    deinit { velocity.deallocate() }

    /// Sets when the parameters of `range`, which must be exactly one group's, are trained
    /// (PyTorch: toggling requires_grad of that group's parameters).
    public func setTraining(_ training: ParameterTraining, forGroup range: Range<Int>) throws {
        guard let i = groups.firstIndex(where: { $0.range == range }) else {
            throw TrainingError("SGD: \(range) is not the range of a parameter group")
        }
        groups[i].training = training
        active = nil
    }

    /// One update of `parameters` from `gradients` (both `parameterCount` floats) at learning
    /// rate `learningRate` in epoch `epoch` (0-based; it selects the groups that train).
    public func step(parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>, learningRate: Float, epoch: Int = 0) {
        let mu = momentum, v = velocity, nesterov = nesterov
        // Elementwise, so chunks on different threads give the same result as one loop.
        if active?.epoch != epoch { active = (epoch, groups.filter { $0.training.isTrained(inEpoch: epoch) }) }
        let segments = active!.groups
        let total = parameterCount
        let chunks = max(1, min(64, total / 16_384))
        parallelFor(chunks) { chunk in
          let mine = chunkRange(chunk, of: chunks, count: total)
          for segment in segments where segment.range.overlaps(mine) {
            let wd = segment.weightDecay
            let lr = segment.learningRateMultiplier == 1 ? learningRate : learningRate * segment.learningRateMultiplier
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
    public func step(_ parameters: inout [Float], gradients: [Float], learningRate: Float, epoch: Int = 0) throws {
        guard parameters.count == parameterCount, gradients.count == parameterCount else {
            throw TrainingError("SGD: \(parameters.count) parameters and \(gradients.count) gradients, expected \(parameterCount) each")
        }
        parameters.withUnsafeMutableBufferPointer { p in
            gradients.withUnsafeBufferPointer { g in
                if parameterCount > 0 { step(parameters: p.baseAddress!, gradients: g.baseAddress!, learningRate: learningRate, epoch: epoch) }
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

    /// A one-line description for logs, e.g. "SGD momentum 0.9 (Nesterov), weight decay 0.001
    /// (off for 1200 parameters in 12 ranges)"; groups with other multipliers or trained in some
    /// epochs only are counted after it.
    public var description: String {
        var text = momentum > 0 ? "SGD momentum \(momentum)\(nesterov ? " (Nesterov)" : "")" : "SGD"
        text += ", weight decay \(weightDecay)"
        if !noDecay.isEmpty && weightDecay > 0 {
            let exempt = groups.filter { $0.weightDecay == 0 }.reduce(0) { $0 + $1.range.count }
            text += " (off for \(exempt) parameters in \(noDecay.count) ranges)"
        }
        let scaled = groups.filter { $0.learningRateMultiplier != 1 }.reduce(0) { $0 + $1.range.count }
        if scaled > 0 { text += ", \(scaled) parameters with their own learning-rate multiplier" }
        let partial = groups.filter { $0.training != .always }.reduce(0) { $0 + $1.range.count }
        if partial > 0 { text += ", \(partial) parameters frozen in some or all epochs" }
        return text
    }
}

extension ParameterGroup {
    /// The groups `dsl train` gives a compiled engine's parameters, one per parameter:
    /// - learning-rate multiplier `batchNormBiasMultiplier` (M) for batch-norm shifts (the
    ///   `.bias` of a batch-norm node, fused `conv … bn` included), 1 for the rest;
    /// - weight decay on conv and linear weights only (the parameters named `.weight` of rank
    ///   > 1), or with `decayAll` on every parameter; a batch-norm shift's coefficient is
    ///   `weightDecay / M`, so that its decay per step, (lr·M)·(wd/M)·w = lr·wd·w, is that of
    ///   the others (airbench's bias_scaler);
    /// - the parameter's own `training` (always, never, first N epochs).
    public static func groups(for engine: EngineGraph, weightDecay: Float, decayAll: Bool = false,
                              batchNormBiasMultiplier: Float = 1) -> [ParameterGroup] {
        var shifts = Set<String>()
        for node in 1..<max(1, engine.nodeCount) {
            if case .batchNorm? = engine.op(of: node) { shifts.insert(engine.name(of: node) + ".bias") }
        }
        return engine.parameters.map { p in
            let multiplier: Float = shifts.contains(p.name) ? batchNormBiasMultiplier : 1
            let decays = decayAll || (p.name.hasSuffix(".weight") && p.shape.count > 1)
            return ParameterGroup(range: p.offset..<(p.offset + p.count), learningRateMultiplier: multiplier,
                                  weightDecay: decays ? (multiplier == 1 ? weightDecay : weightDecay / multiplier) : 0,
                                  training: p.training)
        }
    }
}
