import Foundation
#if os(Linux)
import Glibc
#endif

/// One line of the training log: the state at the end of an epoch (test values optional).
public struct EpochMetrics: Equatable, Sendable {
    /// Epochs completed (1-based).
    public var epoch: Int
    /// Global optimiser steps completed.
    public var step: Int
    /// Learning rate used in the epoch's last step.
    public var learningRate: Double
    /// Mean training loss over the epoch.
    public var trainLoss: Double
    /// Training accuracy over the epoch, 0...1.
    public var trainAccuracy: Double
    /// Test loss, when evaluated.
    public var testLoss: Double?
    /// Test accuracy 0...1, when evaluated.
    public var testAccuracy: Double?
    /// Training throughput in images per second.
    public var imagesPerSecond: Double
    /// Wall-clock seconds since training started.
    public var elapsedSeconds: Double
    /// Test loss and accuracy with test-time augmentation (`--tta`), when evaluated so.
    public var ttaLoss: Double? = nil
    /// See `ttaLoss`.
    public var ttaAccuracy: Double? = nil

    /// Creates a record.
    public init(epoch: Int, step: Int, learningRate: Double, trainLoss: Double, trainAccuracy: Double,
                testLoss: Double? = nil, testAccuracy: Double? = nil, imagesPerSecond: Double, elapsedSeconds: Double) {
        self.epoch = epoch; self.step = step; self.learningRate = learningRate
        self.trainLoss = trainLoss; self.trainAccuracy = trainAccuracy
        self.testLoss = testLoss; self.testAccuracy = testAccuracy
        self.imagesPerSecond = imagesPerSecond; self.elapsedSeconds = elapsedSeconds
    }

    /// The record as one JSON object on one line; keys: epoch, step, lr, train_loss, train_acc,
    /// test_loss, test_acc, images_per_s, elapsed_s (missing or non-finite values are null),
    /// then tta_loss and tta_acc when the epoch was evaluated with test-time augmentation.
    public var jsonLine: String {
        func number(_ value: Double?) -> String {
            guard let value, value.isFinite else { return "null" }
            return String(format: "%.9g", value)
        }
        return "{\"epoch\":\(epoch),\"step\":\(step),\"lr\":\(number(learningRate)),\"train_loss\":\(number(trainLoss)),\"train_acc\":\(number(trainAccuracy)),\"test_loss\":\(number(testLoss)),\"test_acc\":\(number(testAccuracy)),\"images_per_s\":\(number(imagesPerSecond)),\"elapsed_s\":\(number(elapsedSeconds))"
            + (ttaLoss == nil && ttaAccuracy == nil ? "" : ",\"tta_loss\":\(number(ttaLoss)),\"tta_acc\":\(number(ttaAccuracy))") + "}"
    }
}

/// Appends one JSON line to a metrics file (created when absent).
public func appendMetrics(_ record: EpochMetrics, to path: String) throws {
    let line = Array((record.jsonLine + "\n").utf8)
    let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    guard descriptor >= 0 else {
        throw TrainingError("\(path): cannot open metrics file for appending: \(String(cString: strerror(errno)))")
    }
    defer { close(descriptor) }
    let written = line.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    guard written == line.count else {
        throw TrainingError("\(path): cannot append metrics: \(String(cString: strerror(errno)))")
    }
}

/// A metrics file read line by line: the records of the good lines, and the bad lines.
public struct MetricsLog: Sendable {
    /// Records of the lines that parsed, in file order, with their 1-based line numbers.
    public var records: [(line: Int, record: EpochMetrics)]
    /// Lines that did not parse: 1-based line number and why.
    public var problems: [(line: Int, reason: String)]
}

/// Reads a JSON-lines metrics file written by `appendMetrics` (blank lines ignored), keeping
/// every line that parses and listing the others; throws only when the file cannot be read.
public func readMetricsLog(path: String) throws -> MetricsLog {
    let bytes = try readFileBytes(path)
    let text = String(decoding: bytes, as: UTF8.self)
    var log = MetricsLog(records: [], problems: [])
    for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { continue }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] else {
            log.problems.append((index + 1, "not a JSON object"))
            continue
        }
        func value(_ key: String) -> Double? { (object[key] as? NSNumber)?.doubleValue }
        guard let epoch = value("epoch"), let step = value("step") else {
            log.problems.append((index + 1, "missing number '\(value("epoch") == nil ? "epoch" : "step")'"))
            continue
        }
        guard epoch.isFinite, epoch.rounded() == epoch, epoch >= 1, epoch <= 1e9, step.isFinite, step.rounded() == step, step >= 0, step <= 1e15 else {
            log.problems.append((index + 1, "'epoch' \(epoch) or 'step' \(step) is not a count"))
            continue
        }
        var record = EpochMetrics(epoch: Int(epoch), step: Int(step),
                                  learningRate: value("lr") ?? .nan, trainLoss: value("train_loss") ?? .nan,
                                  trainAccuracy: value("train_acc") ?? .nan, testLoss: value("test_loss"),
                                  testAccuracy: value("test_acc"), imagesPerSecond: value("images_per_s") ?? .nan,
                                  elapsedSeconds: value("elapsed_s") ?? .nan)
        record.ttaLoss = value("tta_loss"); record.ttaAccuracy = value("tta_acc")
        log.records.append((index + 1, record))
    }
    return log
}

/// Reads a JSON-lines metrics file written by `appendMetrics` (blank lines ignored); throws,
/// naming the file and line, at the first line that does not parse.
public func readMetrics(path: String) throws -> [EpochMetrics] {
    let log = try readMetricsLog(path: path)
    if let problem = log.problems.first { throw TrainingError("\(path):\(problem.line): \(problem.reason)") }
    return log.records.map(\.record)
}

/// The metrics of a resumed run: the lines of the epochs the checkpoint has (1...epochs), read
/// from `path` (or from `fallback`, the checkpoint directory's log, when `path` has none). Lines
/// that do not parse are skipped and lines of later epochs (written after the checkpoint) are
/// dropped, each with a warning naming the file and line; when anything is skipped or dropped,
/// the original is copied to `path.bak` (or `.bakN`) and `path` rewritten with the kept lines,
/// so that afterwards the log is only appended to. Warnings go to `warn`.
public func resumeMetricsLog(path: String, fallback: String?, epochs: Int, warn: (String) -> Void) throws -> [EpochMetrics] {
    let fm = FileManager.default
    guard let source = fm.fileExists(atPath: path) ? path : fallback.flatMap({ fm.fileExists(atPath: $0) ? $0 : nil }) else {
        if epochs > 0 { warn("\(path): not found; the metrics log starts at epoch \(epochs + 1)") }
        return []
    }
    let log = try readMetricsLog(path: source)
    for problem in log.problems { warn("\(source):\(problem.line): \(problem.reason); line skipped") }
    var byEpoch: [Int: EpochMetrics] = [:]
    var later: [Int] = [], duplicated = false
    for (line, record) in log.records {
        if record.epoch > epochs { later.append(line); continue }
        if byEpoch[record.epoch] != nil { duplicated = true }
        byEpoch[record.epoch] = record
    }
    if !later.isEmpty {
        warn("\(source): line\(later.count == 1 ? "" : "s") \(later.map(String.init).joined(separator: ", ")) after the checkpoint's epoch \(epochs) dropped")
    }
    if duplicated { warn("\(source): several lines for one epoch; the last of each kept") }
    let kept = epochs > 0 ? (1...epochs).compactMap { byEpoch[$0] } : []
    let missing = epochs > 0 ? (1...epochs).filter { byEpoch[$0] == nil } : []
    if !missing.isEmpty { warn("\(source): no line for epoch\(missing.count == 1 ? "" : "s") \(missing.map(String.init).joined(separator: ", "))") }
    let exact = log.problems.isEmpty && later.isEmpty && log.records.map(\.record.epoch) == kept.map(\.epoch)
    if source == path && exact { return kept }
    if source == path {
        var backup = path + ".bak", n = 1
        while fm.fileExists(atPath: backup) { backup = path + ".bak\(n)"; n += 1 }
        do { try fm.copyItem(atPath: path, toPath: backup) } catch {
            throw TrainingError("\(path): cannot keep a backup as \(backup) before rewriting it: \(String(describing: (error as NSError).localizedFailureReason ?? error.localizedDescription))")
        }
        warn("\(path): rewritten with the \(kept.count) good line\(kept.count == 1 ? "" : "s") of epochs 1...\(epochs); the original is kept as \(backup)")
    }
    try writeTextAtomically(kept.map { $0.jsonLine + "\n" }.joined(), to: path)
    return kept
}
