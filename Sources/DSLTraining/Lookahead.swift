import DSLEngine
import Foundation

/// When and how strongly the lookahead average pulls the weights back (`--lookahead`):
/// after every `every` steps, with t the steps done and T the run's steps,
/// α_t = base^every · (t/T)^power; then ema ← ema + (1 − α_t)·(w − ema) and w ← ema.
/// airbench94's is every 5 steps, base 0.95, power 3.
public struct LookaheadSchedule: Equatable, Sendable, CustomStringConvertible {
    /// Steps between two updates (K).
    public var every: Int
    /// The per-step decay base (0.95).
    public var base: Double
    /// The power of the run's progress t/T (3).
    public var power: Double

    /// Creates a schedule; throws unless every ≥ 1, base in 0...1 and power ≥ 0.
    public init(every: Int, base: Double = 0.95, power: Double = 3) throws {
        guard every >= 1 else { throw TrainingError("lookahead: the interval must be at least 1 step, got \(every)") }
        guard base >= 0, base <= 1 else { throw TrainingError("lookahead: the decay base must be in 0...1, got \(base)") }
        guard power >= 0, power.isFinite else { throw TrainingError("lookahead: the power must be ≥ 0, got \(power)") }
        self.every = every; self.base = base; self.power = power
    }

    /// Parses `K` or `K,BASE,POWER` (e.g. `5`, `5,0.95,3`); "none" is nil.
    public static func parse(_ text: String) throws -> LookaheadSchedule? {
        if text == "none" { return nil }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 1 || parts.count == 3, let every = Int(parts[0]) else {
            throw TrainingError("lookahead '\(text)' is not K or K,BASE,POWER (e.g. 5 or 5,0.95,3)")
        }
        if parts.count == 1 { return try LookaheadSchedule(every: every) }
        guard let base = Double(parts[1]), let power = Double(parts[2]) else {
            throw TrainingError("lookahead '\(text)' is not K or K,BASE,POWER (e.g. 5 or 5,0.95,3)")
        }
        return try LookaheadSchedule(every: every, base: base, power: power)
    }

    /// The text `parse` reads back: "5" for airbench's base and power, else "K,BASE,POWER".
    public var description: String {
        base == 0.95 && power == 3 ? String(every) : "\(every),\(base),\(power)"
    }

    /// α after `done` of `total` steps.
    public func decay(afterStep done: Int, of total: Int) -> Double {
        pow(base, Double(every)) * pow(Double(done) / Double(max(1, total)), power)
    }
}

/// The lookahead average of every float of a network's state: its parameters and its buffers
/// (batch-norm running statistics), as airbench's LookaheadState over the state_dict.
public final class LookaheadAverage {
    /// The averaged values: the parameter block, then each buffer in engine order.
    public let count: Int
    private let average: UnsafeMutablePointer<Float>
    private let targets: [(UnsafeMutablePointer<Float>, Int)]
    /// Whether the average holds values (it starts as a copy of the state at the first step).
    public private(set) var isStarted = false

    /// An average over `engine`'s parameters and buffers, not started.
    public init(engine: EngineGraph) {
        var targets: [(UnsafeMutablePointer<Float>, Int)] = []
        if engine.parameterCount > 0 { targets.append((engine.parameterValues, engine.parameterCount)) }
        for b in engine.buffers where b.count > 0 { targets.append((b.value, b.count)) }
        self.targets = targets
        count = targets.reduce(0) { $0 + $1.1 }
        average = .allocate(capacity: max(1, count))
        average.initialize(repeating: 0, count: max(1, count))
    }

    deinit { average.deallocate() }

    /// Starts the average as a copy of the current state.
    public func start() {
        var offset = 0
        for (pointer, n) in targets { (average + offset).update(from: pointer, count: n); offset += n }
        isStarted = true
    }

    /// ema ← lerp(ema, w, 1 − α) (PyTorch's lerp_: ema + t·(w − ema) for t < 0.5, else
    /// w − (w − ema)·(1 − t)), then w ← ema, elementwise over every value.
    public func update(decay alpha: Double) {
        let weight = Float(1 - alpha), small = abs(weight) < 0.5
        let complement = 1 - weight
        var offset = 0
        for (pointer, n) in targets {
            let ema = average + offset
            let chunks = max(1, min(64, n / 16_384))
            parallelFor(chunks) { chunk in
                for i in chunkRange(chunk, of: chunks, count: n) {
                    let w = pointer[i], e = ema[i], diff = w - e
                    let value = small ? e + weight * diff : w - diff * complement
                    ema[i] = value
                    pointer[i] = value
                }
            }
            offset += n
        }
    }

    /// What follows optimiser step `done` (1-based) of a run of `total` steps: every
    /// `schedule.every` steps an update with α = `schedule.decay(afterStep:of:)`, and after the
    /// last step w ← ema (airbench's final `update(model, decay=1.0)`).
    public func afterStep(_ done: Int, of total: Int, schedule: LookaheadSchedule) {
        if done % schedule.every == 0 { update(decay: schedule.decay(afterStep: done, of: total)) }
        if done == total { copyToWeights() }
    }

    /// w ← ema (the end of training).
    public func copyToWeights() {
        var offset = 0
        for (pointer, n) in targets { pointer.update(from: average + offset, count: n); offset += n }
    }

    /// A copy of the average (for checkpoints: tensor "optimizer.lookahead").
    public var values: [Float] { Array(UnsafeBufferPointer(start: average, count: count)) }

    /// Restores the average from a checkpoint; throws when the length differs.
    public func setValues(_ values: [Float]) throws {
        guard values.count == count else {
            throw TrainingError("lookahead: checkpoint average has \(values.count) values, the network has \(count) parameters and buffer values")
        }
        values.withUnsafeBufferPointer { if count > 0 { average.update(from: $0.baseAddress!, count: count) } }
        isStarted = true
    }
}
