import Foundation
#if os(Linux)
import Glibc
#endif

// The per-iteration training loss of a run, `OUT/steps.jsonl`: one JSON line per window of
// consecutive steps (the mean batch loss over the window and the learning rate of its last
// step). Windows never cross an epoch's end, and an epoch has at most `StepTrace.pointsPerEpoch`
// of them, a run about `StepTrace.pointsPerRun` (plus one per epoch), so the file stays small
// (about 80 bytes a line: under 2 MB for any run of up to 5,000 epochs) whatever the number of
// steps. `curves.svg` draws it as the per-iteration loss trace and the learning-rate panel.

/// One line of `steps.jsonl`: the mean training loss over `count` consecutive steps that end at
/// global step `step`.
public struct StepRecord: Equatable, Sendable {
    /// Global optimiser steps completed at the window's end (1-based).
    public var step: Int
    /// The same position in epochs (step / steps per epoch), e.g. 2.5 halfway through epoch 3.
    public var epoch: Double
    /// Steps averaged (the window).
    public var count: Int
    /// Mean batch loss over the window.
    public var loss: Double
    /// Learning rate of the window's last step.
    public var learningRate: Double

    /// Creates a record.
    public init(step: Int, epoch: Double, count: Int, loss: Double, learningRate: Double) {
        self.step = step; self.epoch = epoch; self.count = count; self.loss = loss; self.learningRate = learningRate
    }

    /// The record as one JSON object on one line: step, epoch, steps, loss, lr (non-finite: null).
    public var jsonLine: String {
        func number(_ value: Double) -> String { value.isFinite ? String(format: "%.7g", value) : "null" }
        return "{\"step\":\(step),\"epoch\":\(number(epoch)),\"steps\":\(count),\"loss\":\(number(loss)),\"lr\":\(number(learningRate))}"
    }
}

/// Groups the steps of a run into `StepRecord` windows.
public struct StepTrace: Sendable {
    /// Most windows in one epoch.
    public static let pointsPerEpoch = 50
    /// About the most windows in a run (each epoch adds at most one more by rounding).
    public static let pointsPerRun = 20_000
    /// Steps per window (the last window of an epoch may be shorter).
    public let window: Int
    /// Steps in an epoch.
    public let stepsPerEpoch: Int
    private var sum = 0.0
    private var count = 0

    /// The window of a run of `epochs` epochs of `stepsPerEpoch` steps:
    /// max(⌈steps per epoch / 50⌉, ⌈total steps / 20,000⌉).
    public static func window(stepsPerEpoch: Int, epochs: Int) -> Int {
        let steps = max(1, stepsPerEpoch)
        let total = steps * max(1, epochs)
        return max((steps + pointsPerEpoch - 1) / pointsPerEpoch, (total + pointsPerRun - 1) / pointsPerRun, 1)
    }

    /// A trace for a run of `epochs` epochs of `stepsPerEpoch` steps.
    public init(stepsPerEpoch: Int, epochs: Int) {
        self.stepsPerEpoch = max(1, stepsPerEpoch)
        window = StepTrace.window(stepsPerEpoch: stepsPerEpoch, epochs: epochs)
    }

    /// Adds step `step` (1-based, within the epoch) of epoch `epoch` (1-based) with its batch
    /// loss and learning rate; returns the window's record when this step ends a window (every
    /// `window` steps of the epoch, and at its last step).
    public mutating func add(epoch: Int, step: Int, loss: Double, learningRate: Double) -> StepRecord? {
        sum += loss; count += 1
        guard step % window == 0 || step >= stepsPerEpoch else { return nil }
        return take(epoch: epoch, step: step, learningRate: learningRate)
    }

    /// The record of the unfinished window ending at `step` of `epoch` (when a run is
    /// interrupted), or nil when no step is pending.
    public mutating func flush(epoch: Int, step: Int, learningRate: Double) -> StepRecord? {
        count > 0 ? take(epoch: epoch, step: step, learningRate: learningRate) : nil
    }

    private mutating func take(epoch: Int, step: Int, learningRate: Double) -> StepRecord {
        let global = (epoch - 1) * stepsPerEpoch + step
        let record = StepRecord(step: global, epoch: Double(global) / Double(stepsPerEpoch), count: count,
                                loss: sum / Double(count), learningRate: learningRate)
        sum = 0; count = 0
        return record
    }
}

/// Appends records to a steps file (created when absent), one JSON line each.
public func appendStepRecords(_ records: [StepRecord], to path: String) throws {
    guard !records.isEmpty else { return }
    let bytes = Array(records.map { $0.jsonLine + "\n" }.joined().utf8)
    let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    guard descriptor >= 0 else { throw TrainingError("\(path): cannot open for appending: \(String(cString: strerror(errno)))") }
    defer { close(descriptor) }
    let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw TrainingError("\(path): cannot append: \(String(cString: strerror(errno)))") }
}

/// Reads a steps file; lines that do not parse (e.g. one cut short by a killed process) are
/// skipped: the file is a trace for plotting, nothing depends on it. Throws only when the file
/// exists but cannot be read.
public func readStepLog(path: String) throws -> [StepRecord] {
    guard FileManager.default.fileExists(atPath: path) else { return [] }
    let text = String(decoding: try readFileBytes(path), as: UTF8.self)
    var records: [StepRecord] = []
    for line in text.split(separator: "\n") {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else { continue }
        func value(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
        guard let step = value("step"), step.isFinite, step >= 1, step <= 1e15, step.rounded() == step,
              let count = value("steps"), count.isFinite, count >= 1, count <= 1e9, count.rounded() == count else { continue }
        records.append(StepRecord(step: Int(step), epoch: value("epoch") ?? .nan, count: Int(count),
                                  loss: value("loss") ?? .nan, learningRate: value("lr") ?? .nan))
    }
    return records
}

/// The steps file of a resumed run: the records up to global step `step` (the checkpoint's
/// position), read from `path` (or `fallback`, the checkpoint directory's, when `path` has none);
/// when anything is dropped (steps trained after the checkpoint, lines that do not parse) the
/// file is rewritten atomically with the kept records, so that the resumed run appends to a
/// trace that matches its checkpoint.
@discardableResult
public func resumeStepLog(path: String, fallback: String?, upTo step: Int) throws -> [StepRecord] {
    let fm = FileManager.default
    guard let source = fm.fileExists(atPath: path) ? path : fallback.flatMap({ fm.fileExists(atPath: $0) ? $0 : nil }) else { return [] }
    let all = try readStepLog(path: source)
    let kept = all.filter { $0.step <= step }
    let lines = String(decoding: try readFileBytes(source), as: UTF8.self).split(separator: "\n").count
    if source != path || kept.count != lines {
        try writeTextAtomically(kept.map { $0.jsonLine + "\n" }.joined(), to: path)
    }
    return kept
}
