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
}

/// A learning-rate schedule: base rate, optional linear warm-up, then a decay rule.
///
/// CLI syntax (`LearningRateSchedule.parse`): one or two parts joined by `+`:
/// - `constant` — the base rate throughout
/// - `step:F@E1,E2,...` — multiply by F at epochs E1, E2, ... (ascending), e.g. `step:0.1@200,250,300`
/// - `cosine` or `cosine:M` — cosine decay to M (default 0) by the last epoch
/// - `warmup:W` — linear warm-up over the first W epochs (may be fractional), combinable with any
///   of the above: `warmup:5+cosine`, `warmup:2+step:0.1@200,250,300`; alone it means `warmup:W+constant`.
public struct LearningRateSchedule: Equatable, Sendable, CustomStringConvertible {
    /// The peak learning rate.
    public var baseRate: Double
    /// Linear warm-up length in epochs (0 for none).
    public var warmupEpochs: Double
    /// The decay rule after warm-up.
    public var decay: LearningRateDecay
    /// Total training epochs (the cosine horizon).
    public var totalEpochs: Int

    /// Creates a schedule; throws on non-positive rates, negative warm-up or unordered step epochs.
    public init(baseRate: Double, totalEpochs: Int, warmupEpochs: Double = 0, decay: LearningRateDecay = .constant) throws {
        guard baseRate > 0, baseRate.isFinite else { throw TrainingError("learning rate must be a positive number, got \(baseRate)") }
        guard totalEpochs > 0 else { throw TrainingError("schedule: total epochs must be positive, got \(totalEpochs)") }
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
        }
        self.baseRate = baseRate; self.totalEpochs = totalEpochs; self.warmupEpochs = warmupEpochs; self.decay = decay
    }

    /// The learning rate for global step `step` (0-based) with `stepsPerEpoch` steps in an epoch.
    public func lr(atStep step: Int, stepsPerEpoch: Int) -> Float {
        let perEpoch = Double(max(1, stepsPerEpoch))
        let position = Double(max(0, step)) / perEpoch           // fractional epochs completed
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
            let span = max(1e-9, Double(totalEpochs) - warmupEpochs)
            let progress = min(1, max(0, (position - warmupEpochs) / span))
            return Float(minimum + (baseRate - minimum) * 0.5 * (1 + cos(Double.pi * progress)))
        }
    }

    /// A readable listing of the schedule, printed when training starts.
    public var description: String {
        var parts: [String] = ["base lr \(formatRate(baseRate)) for \(totalEpochs) epochs"]
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
            parts.append("cosine decay to \(formatRate(minimum)) by epoch \(totalEpochs)")
        }
        return parts.joined(separator: "; ")
    }

    /// Parses the CLI syntax documented on the type; `baseRate` and `totalEpochs` come from other flags.
    public static func parse(_ text: String, baseRate: Double, totalEpochs: Int) throws -> LearningRateSchedule {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        func fail(_ why: String) -> TrainingError {
            TrainingError("invalid learning-rate schedule '\(text)': \(why). Expected e.g. 'constant', 'cosine', 'cosine:0.0001', 'step:0.1@200,250,300', 'warmup:5+cosine'")
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
            return try LearningRateSchedule(baseRate: baseRate, totalEpochs: totalEpochs, warmupEpochs: warmup, decay: decay ?? .constant)
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
