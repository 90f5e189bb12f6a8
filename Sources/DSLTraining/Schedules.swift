import Foundation

/// How the learning rate decays after the (optional) warm-up.
public enum LearningRateDecay: Equatable, Sendable {
    /// The base rate throughout.
    case constant
    /// Multiply by `factor` once at the start of each listed epoch (0-based epoch indices, so
    /// `epochs: [200]` means "after 200 completed epochs").
    case step(factor: Double, epochs: [Int])
    /// Half-cosine from the base rate down to `minimum` over the epochs after warm-up.
    case cosine(minimum: Double)
    /// Per step, with its own warm-up (airbench's): of T steps in all and W = ⌊warmupFraction·T⌋,
    /// step k < W has factor start + (1 − start)·k/W, step k ≥ W has 1 + (end − 1)·(k − W)/(T − W);
    /// the rate is the base rate times the factor.
    case linear(start: Double, end: Double, warmupFraction: Double)
}

/// A learning-rate schedule: base rate, optional linear warm-up, then a decay rule.
///
/// CLI syntax (`LearningRateSchedule.parse`): one or two parts joined by `+`:
/// - `constant` — the base rate throughout
/// - `step:F@E1,E2,...` — multiply by F at epochs E1, E2, ... (ascending), e.g. `step:0.1@200,250,300`
/// - `cosine` or `cosine:M` — cosine decay to M (default 0) by the last epoch
/// - `warmup:W` — linear warm-up over the first W epochs (may be fractional), combinable with any
///   of the above: `warmup:5+cosine`, `warmup:2+step:0.1@200,250,300`; alone it means `warmup:W+constant`.
/// - `linear:S,E@F` — per step, a linear rise from S × the base rate to the base rate over the
///   first ⌊F·T⌋ of the run's T steps, then a linear fall to E × the base rate at step T
///   (airbench94's: `linear:0.2,0.07@0.23`); it has its own warm-up, so no `warmup:`.
///
/// T, the run's steps, is ⌈steps per epoch × epochs⌉ (`totalSteps`): fractional epochs end
/// with a partial epoch.
public struct LearningRateSchedule: Equatable, Sendable, CustomStringConvertible {
    /// The peak learning rate.
    public var baseRate: Double
    /// Linear warm-up length in epochs (0 for none).
    public var warmupEpochs: Double
    /// The decay rule after warm-up.
    public var decay: LearningRateDecay
    /// Total training epochs, the last one possibly partial: ⌈trainingEpochs⌉.
    public var totalEpochs: Int
    /// The run's length in epochs, possibly fractional (the cosine and linear horizon).
    public var trainingEpochs: Double

    /// Creates a schedule; throws on non-positive rates, negative warm-up or unordered step epochs.
    public init(baseRate: Double, totalEpochs: Int, warmupEpochs: Double = 0, decay: LearningRateDecay = .constant) throws {
        try self.init(baseRate: baseRate, epochs: Double(totalEpochs), warmupEpochs: warmupEpochs, decay: decay)
    }

    /// Creates a schedule of `epochs` epochs, possibly fractional; throws as the other initialiser.
    public init(baseRate: Double, epochs: Double, warmupEpochs: Double = 0, decay: LearningRateDecay = .constant) throws {
        guard baseRate > 0, baseRate.isFinite else { throw TrainingError("learning rate must be a positive number, got \(baseRate)") }
        guard epochs > 0, epochs.isFinite else { throw TrainingError("schedule: total epochs must be positive, got \(formatEpochs(epochs))") }
        guard warmupEpochs >= 0, warmupEpochs.isFinite else { throw TrainingError("schedule: warm-up must be ≥ 0 epochs, got \(warmupEpochs)") }
        switch decay {
        case .constant: break
        case .step(let factor, let epochs):
            guard factor > 0, factor.isFinite else { throw TrainingError("schedule: step factor must be positive, got \(factor)") }
            guard !epochs.isEmpty else { throw TrainingError("schedule: step needs at least one epoch") }
            guard epochs.allSatisfy({ $0 > 0 }), zip(epochs, epochs.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw TrainingError("schedule: step epochs must be positive and strictly increasing, got \(epochs.map(String.init).joined(separator: ","))")
            }
        case .cosine(let minimum):
            guard minimum >= 0, minimum < baseRate else {
                throw TrainingError("schedule: cosine minimum must be in 0..<\(baseRate) (the base rate), got \(minimum)")
            }
        case let .linear(start, end, fraction):
            guard start >= 0, start.isFinite, end >= 0, end.isFinite else {
                throw TrainingError("schedule: linear start and end factors must be ≥ 0, got \(start) and \(end)")
            }
            guard fraction >= 0, fraction < 1 else { throw TrainingError("schedule: linear warm-up fraction must be in 0..<1, got \(fraction)") }
            guard warmupEpochs == 0 else { throw TrainingError("schedule: linear has its own warm-up; drop warmup:") }
        }
        self.baseRate = baseRate; self.trainingEpochs = epochs; self.totalEpochs = LearningRateSchedule.epochsRun(epochs)
        self.warmupEpochs = warmupEpochs; self.decay = decay
    }

    /// The epochs a run of `epochs` (possibly fractional) epochs runs: ⌈epochs⌉, a value within
    /// 1e-9 of a whole number counting as that number (as in `totalSteps`).
    public static func epochsRun(_ epochs: Double) -> Int {
        let whole = epochs.rounded()
        return max(1, abs(epochs - whole) <= 1e-9 * max(1, whole) ? Int(whole) : Int(epochs.rounded(.up)))
    }

    /// The steps of a run of `epochs` epochs (possibly fractional) of `stepsPerEpoch` steps:
    /// ⌈stepsPerEpoch × epochs⌉, a product within 1e-9 of a whole number counting as that number
    /// (so that 0.2 × 50 is 10 steps, not 11); at least 1.
    public static func totalSteps(stepsPerEpoch: Int, epochs: Double) -> Int {
        let product = Double(max(1, stepsPerEpoch)) * epochs
        let whole = product.rounded()
        return max(1, abs(product - whole) <= 1e-9 * max(1, whole) ? Int(whole) : Int(product.rounded(.up)))
    }

    /// The learning rate for global step `step` (0-based) with `stepsPerEpoch` steps in an epoch.
    public func lr(atStep step: Int, stepsPerEpoch: Int) -> Float {
        let perEpoch = Double(max(1, stepsPerEpoch))
        let position = Double(max(0, step)) / perEpoch           // fractional epochs completed
        if case let .linear(start, end, fraction) = decay {
            // Python's int(T·F) and the fractions airbench's get_lr computes, in Double.
            let total = LearningRateSchedule.totalSteps(stepsPerEpoch: stepsPerEpoch, epochs: trainingEpochs)
            let warmup = Int(Double(total) * fraction)
            let k = Double(max(0, step))
            if step < warmup {
                let f = k / Double(warmup)
                return Float(baseRate * (start * (1 - f) + 1.0 * f))
            }
            let f = (k - Double(warmup)) / Double(max(1, total - warmup))
            return Float(baseRate * (1.0 * (1 - f) + end * f))
        }
        let warmupSteps = warmupEpochs * perEpoch
        if warmupSteps > 0 && Double(step) < warmupSteps {
            return Float(baseRate * Double(max(0, step) + 1) / warmupSteps.rounded(.up))
        }
        switch decay {
        case .constant:
            return Float(baseRate)
        case .step(let factor, let epochs):
            let epoch = Int(position)
            let passed = epochs.filter { $0 <= epoch }.count
            return Float(baseRate * pow(factor, Double(passed)))
        case .cosine(let minimum):
            let span = max(1e-9, trainingEpochs - warmupEpochs)
            let progress = min(1, max(0, (position - warmupEpochs) / span))
            return Float(minimum + (baseRate - minimum) * 0.5 * (1 + cos(Double.pi * progress)))
        case .linear:
            return Float(baseRate)   // handled above
        }
    }

    /// A readable listing of the schedule, printed when training starts.
    public var description: String {
        var parts: [String] = ["base lr \(formatRate(baseRate)) for \(formatEpochs(trainingEpochs)) epochs"]
        if warmupEpochs > 0 { parts.append("linear warm-up over \(formatEpochs(warmupEpochs)) epochs") }
        switch decay {
        case .constant:
            parts.append("constant")
        case .step(let factor, let epochs):
            var rate = baseRate
            let steps = epochs.map { epoch -> String in
                rate *= factor
                return "×\(formatRate(factor)) at epoch \(epoch) → \(formatRate(rate))"
            }
            parts.append(steps.joined(separator: ", "))
        case .cosine(let minimum):
            parts.append("cosine decay to \(formatRate(minimum)) by epoch \(formatEpochs(trainingEpochs))")
        case let .linear(start, end, fraction):
            parts.append("per step: linear from \(formatRate(start * baseRate)) up to \(formatRate(baseRate)) over the first \(formatRate(fraction * 100)) % of the steps, "
                + "then linear down to \(formatRate(end * baseRate)) at the last")
        }
        return parts.joined(separator: "; ")
    }

    /// Parses the CLI syntax documented on the type; `baseRate` and `totalEpochs` come from other flags.
    public static func parse(_ text: String, baseRate: Double, totalEpochs: Int) throws -> LearningRateSchedule {
        try parse(text, baseRate: baseRate, epochs: Double(totalEpochs))
    }

    /// Parses the CLI syntax documented on the type for a run of `epochs` epochs, possibly fractional.
    public static func parse(_ text: String, baseRate: Double, epochs totalEpochs: Double) throws -> LearningRateSchedule {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        func fail(_ why: String) -> TrainingError {
            TrainingError("invalid learning-rate schedule '\(text)': \(why). Expected e.g. 'constant', 'cosine', 'cosine:0.0001', 'step:0.1@200,250,300', 'warmup:5+cosine', 'linear:0.2,0.07@0.23'")
        }
        guard !trimmed.isEmpty else { throw fail("empty") }
        var warmup = 0.0
        var decay: LearningRateDecay?
        for part in trimmed.split(separator: "+", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let pieces = part.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let name = pieces[0].lowercased()
            let argument = pieces.count > 1 ? pieces[1] : nil
            switch name {
            case "warmup":
                guard warmup == 0 else { throw fail("warm-up given twice") }
                guard let argument, let value = Double(argument), value > 0, value.isFinite else { throw fail("warmup needs a positive number of epochs, as in warmup:5") }
                warmup = value
            case "linear":
                guard decay == nil else { throw fail("more than one decay rule") }
                let halves = (argument ?? "").split(separator: "@", omittingEmptySubsequences: false).map(String.init)
                let factors = halves[0].split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
                guard halves.count == 2, factors.count == 2, let start = factors[0], let end = factors[1], let fraction = Double(halves[1]) else {
                    throw fail("linear needs START,END@WARMUP (factors of the base rate and the warm-up fraction of all steps), as in linear:0.2,0.07@0.23")
                }
                decay = .linear(start: start, end: end, warmupFraction: fraction)
            case "constant", "cosine", "step":
                guard decay == nil else { throw fail("more than one decay rule") }
                if name == "constant" {
                    guard argument == nil else { throw fail("constant takes no argument") }
                    decay = .constant
                } else if name == "cosine" {
                    if let argument {
                        guard let minimum = Double(argument), minimum >= 0 else { throw fail("cosine:M needs a minimum rate M ≥ 0") }
                        decay = .cosine(minimum: minimum)
                    } else {
                        decay = .cosine(minimum: 0)
                    }
                } else {
                    guard let argument else { throw fail("step needs a factor and epochs, as in step:0.1@200,250,300") }
                    let halves = argument.split(separator: "@", omittingEmptySubsequences: false).map(String.init)
                    guard halves.count == 2, let factor = Double(halves[0]), factor > 0 else {
                        throw fail("step needs FACTOR@EPOCHS, as in step:0.1@200,250,300")
                    }
                    var epochs: [Int] = []
                    for item in halves[1].split(separator: ",", omittingEmptySubsequences: false) {
                        guard let epoch = Int(item.trimmingCharacters(in: .whitespaces)), epoch > 0 else {
                            throw fail("step epoch '\(item)' is not a positive integer")
                        }
                        epochs.append(epoch)
                    }
                    decay = .step(factor: factor, epochs: epochs)
                }
            default:
                throw fail("unknown part '\(part)'")
            }
        }
        do {
            return try LearningRateSchedule(baseRate: baseRate, epochs: totalEpochs, warmupEpochs: warmup, decay: decay ?? .constant)
        } catch let error as TrainingError {
            throw fail(error.message.replacingOccurrences(of: "schedule: ", with: ""))
        }
    }
}

private func formatRate(_ value: Double) -> String {
    if value == 0 { return "0" }
    return String(format: "%g", value)
}

private func formatEpochs(_ value: Double) -> String {
    value == value.rounded() ? String(Int(value)) : String(format: "%g", value)
}
