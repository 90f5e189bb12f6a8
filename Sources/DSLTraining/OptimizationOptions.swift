import DSLEngine
import Foundation

// The optimiser, loss and averaging options of `dsl train` (issue 18: airbench94's recipe) and
// the exact update they make. With lr_t = the schedule's rate at step t (base `stepLearningRate`),
// μ the momentum, ε the label smoothing, per parameter of a group with multiplier m and L2
// coefficient c (`ParameterGroup.groups(for:)`):
//   loss  = mean over the batch of the cross-entropy against (1−ε)·onehot + ε/classes
//   d     = ∂loss/∂w + c·w;   v ← μ·v + d;   w ← w − lr_t·m·(d + μ·v)   (Nesterov; classical: w ← w − lr_t·m·v)
// m = `batchNormBiasLearningRate` for batch-norm shifts, 1 otherwise; c = `l2Coefficient` (÷ m
// for batch-norm shifts) for the parameters `weightDecayScope` names, 0 for the others; a
// parameter not trained in the epoch is skipped. Then, with `lookahead`, every K steps the
// lookahead average (`LookaheadAverage`) pulls all weights and batch-norm statistics back.

/// Which parameters `--weight-decay` applies to.
public enum WeightDecayScope: String, Sendable, CaseIterable {
    /// Conv and linear weights only (not biases, not batch norm): dsl's default.
    case weights
    /// Every trained parameter (airbench: weights, biases, batch-norm shifts).
    case all
}

extension TrainingOptions {
    /// The rate the schedule starts from, per step on the batch-mean loss: `learningRate`, or
    /// with `decoupled` (airbench's hyperparameters: a rate per 1024 examples with Nesterov's
    /// gain divided out) learningRate · batch / (1024 · (1 + 1/(1 − μ))). airbench94's 11.5 at
    /// batch 1024 and momentum 0.85 is 11.5 / (1 + 1/0.15) = 1.5.
    public var stepLearningRate: Float {
        guard decoupled else { return learningRate }
        let (lr, mu) = (decimal(learningRate), decimal(momentum))
        return Float(lr * Double(batch) / (1024 * (1 + 1 / (1 - mu))))
    }

    /// The L2 coefficient c of the decayed parameters on the batch-mean loss: `weightDecay`, or
    /// with `decoupled` weightDecay / learningRate, so that the decay per step, lr_t·c·w, is
    /// weightDecay · batch / (1024 · (1 + 1/(1 − μ))) · (lr_t / base rate) · w, whatever the
    /// rate (airbench94: 0.0153 / 11.5 = 0.00133043).
    public var l2Coefficient: Float {
        guard decoupled else { return weightDecay }
        return Float(decimal(weightDecay) / decimal(learningRate))
    }
}

/// A Float option as the decimal the user wrote (0.85, not 0.85000002), for the derived values.
private func decimal(_ value: Float) -> Double { Double("\(value)") ?? Double(value) }

extension Trainer {
    /// The run's optimisation beyond lr, momentum and weight decay, one line (nil when all default).
    var optimizationSummary: String? {
        var parts: [String] = []
        if options.decoupled || options.weightDecayScope == .all { parts.append("L2 \(options.l2Coefficient) on \(options.weightDecayScope == .all ? "every trained parameter" : "weights")") }
        if options.batchNormBiasLearningRate != 1 { parts.append("batch-norm shifts lr ×\(options.batchNormBiasLearningRate)") }
        if options.labelSmoothing > 0 { parts.append("label smoothing \(options.labelSmoothing) (the training loss shown is the smoothed one)") }
        if let l = options.lookahead { parts.append("lookahead every \(l.every) steps (α = \(l.base)^\(l.every)·(t/T)^\(l.power))") }
        if options.trainingEpochs != Double(options.epochs) { parts.append("\(totalSteps) steps, the last epoch \(steps(inEpoch: options.epochs - 1)) of \(stepsPerEpoch)") }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// Restores the lookahead average of a checkpoint: required with `--lookahead` once the run
    /// has taken a step, refused without.
    func restoreLookahead(_ checkpoint: TrainingCheckpoint, file: String) throws {
        guard let lookahead else {
            if checkpoint.lookahead != nil { throw TrainingError("\(file): tensor 'optimizer.lookahead' but the run has no --lookahead") }
            return
        }
        guard let values = checkpoint.lookahead else {
            if checkpoint.epoch == 0 && checkpoint.step == 0 { return }
            throw TrainingError("\(file): the run has --lookahead but the checkpoint has no 'optimizer.lookahead' tensor")
        }
        guard values.count == lookahead.count else {
            throw TrainingError("\(file): tensor 'optimizer.lookahead' has \(values.count) values, the network has \(lookahead.count) parameter and buffer values")
        }
        try lookahead.setValues(values)
    }
}
