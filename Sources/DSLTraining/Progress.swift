import Dispatch
import Foundation
#if os(Linux)
import Glibc
#endif

/// Pure formatting helpers for progress output (no clocks, no I/O).
///
/// Numbers are rounded for reading, never printed with every digit: a loss has at most 5
/// significant digits (`2.3026`, `123.45`, `1.235e+38` for a diverging run) and is `nan` or
/// `inf` plainly; a learning rate up to 4 significant digits (`0.05`, `0.00003`); accuracies a
/// fixed number of decimals.
public enum ProgressFormat {
    /// A duration as "45s", "3m07s" or "2h05m", or "--" when unknown (negative, infinite, NaN).
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        guard seconds < 1e9 else { return ">30y" }
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        return "\(total / 3600)h\(String(format: "%02d", (total % 3600) / 60))m"
    }

    /// A text bar such as "[#######.............]" for `fraction` (clamped to 0...1).
    public static func bar(fraction: Double, width: Int = 20) -> String {
        let width = max(0, width)
        let clamped = fraction.isFinite ? min(1, max(0, fraction)) : 0
        let filled = Int((clamped * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: max(0, width - filled)) + "]"
    }

    /// Seconds remaining when `fraction` of the work took `elapsed` seconds (nil when unknown).
    public static func eta(elapsed: Double, fraction: Double) -> Double? {
        guard fraction > 0, fraction.isFinite, elapsed.isFinite, elapsed >= 0 else { return nil }
        return elapsed * (1 - min(1, fraction)) / fraction
    }

    /// A loss for reading: "nan", "inf" or "-inf" when not finite; 4 decimals below 10
    /// ("2.3026"), 5 significant digits up to 99,999 ("12.345", "12345"), else scientific with 4
    /// significant digits ("1.235e+38"). At most 10 characters (11 when negative).
    public static func loss(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        let magnitude = abs(value)
        if magnitude < 10 { return String(format: "%.4f", value) }
        if magnitude < 99_999.5 {
            let digits = Int(floor(log10(magnitude))) + 1   // 2...5 digits before the point
            let text = String(format: "%.\(max(0, 5 - digits))f", value)
            return text.count <= 7 ? text : String(format: "%.0f", value)
        }
        return String(format: "%.3e", value)
    }

    /// A learning rate: "0", or up to 4 significant digits without trailing zeros as a decimal
    /// of at most 8 characters ("0.05", "0.00003", "0.001235"), else 3 in scientific notation
    /// ("5.48e-06").
    public static func rate(_ value: Double) -> String {
        if !value.isFinite { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
        if value == 0 { return "0" }
        let magnitude = abs(value)
        if magnitude >= 1e-6, magnitude < 1e4 {
            let decimals = max(0, 3 - Int(floor(log10(magnitude))))
            var text = String(format: "%.\(decimals)f", value)
            if text.contains(".") {
                while text.hasSuffix("0") { text.removeLast() }
                if text.hasSuffix(".") { text.removeLast() }
            }
            if text.count <= 8 { return text }
        }
        return String(format: "%.3g", value)
    }

    /// A fraction (0...1) as a percentage with `decimals` decimals ("56.2%"), "--%" when not finite.
    public static func percent(_ fraction: Double, decimals: Int = 1) -> String {
        fraction.isFinite ? String(format: "%.\(decimals)f%%", fraction * 100) : "--%"
    }

    /// Throughput: "1234 img/s" (whole numbers), "123k img/s" from 100,000, "-- img/s" when unknown.
    public static func speed(_ imagesPerSecond: Double) -> String {
        guard imagesPerSecond.isFinite, imagesPerSecond >= 0 else { return "-- img/s" }
        if imagesPerSecond < 99_999.5 { return String(format: "%.0f img/s", imagesPerSecond) }
        return imagesPerSecond < 1e9 ? String(format: "%.0fk img/s", imagesPerSecond / 1000) : ">1G img/s"
    }

    /// `first` followed by as many of `optional` (in order) as fit in `width` characters, each
    /// after `separator`; the first that does not fit ends the line. Nil `width`: no limit.
    /// `first` longer than `width` is cut to `width` characters.
    public static func fit(_ first: String, optional: [String], separator: String = ", ", width: Int?) -> String {
        guard let width else { return ([first] + optional).joined(separator: separator) }
        var line = first.count <= width ? first : String(first.prefix(max(0, width)))
        for field in optional {
            let candidate = line + separator + field
            if candidate.count > width { break }
            line = candidate
        }
        return line
    }

    /// The counters "epoch  3/200 batch  17/391", right-aligned to the totals' widths.
    static func position(epoch: Int, epochs: Int, batch: Int, batches: Int) -> String {
        func padded(_ value: Int, like total: Int) -> String {
            String(repeating: " ", count: max(0, String(total).count - String(value).count)) + String(value)
        }
        return "epoch \(padded(epoch, like: epochs))/\(epochs) batch \(padded(batch, like: batches))/\(batches)"
    }

    /// The terminal's updating line, fitted to `width` characters (nil: no limit):
    /// "epoch   3/200 batch  17/391 [##....] loss 1.2346 acc 56.2% 1234 img/s ETA 2h05m".
    /// The bar takes what room is left (at most `barWidth`, omitted below 5); when even the
    /// line without a bar is too long, throughput, then the ETA, then the accuracy are dropped,
    /// and what remains is cut to `width`.
    public static func line(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, accuracy: Double,
                            imagesPerSecond: Double, etaSeconds: Double?, barWidth: Int = 20, width: Int? = nil) -> String {
        let fraction = batches > 0 ? Double(batch) / Double(batches) : 0
        let head = position(epoch: epoch, epochs: epochs, batch: batch, batches: batches)
        let fields = ["loss \(self.loss(loss))", "acc \(percent(accuracy).leftPadded(6))", speed(imagesPerSecond),
                      "ETA \(duration(etaSeconds ?? .nan))"]
        let full = ([head] + fields).joined(separator: " ")
        guard let width else { return head + " " + bar(fraction: fraction, width: barWidth) + " " + fields.joined(separator: " ") }
        let room = width - full.count - 3   // the bar's brackets and its space
        if room >= 5 { return head + " " + bar(fraction: fraction, width: min(barWidth, room)) + " " + fields.joined(separator: " ") }
        for dropped in [[2], [2, 3], [1, 2, 3]] {
            let kept = fields.enumerated().filter { !dropped.contains($0.offset) }.map(\.element)
            let text = ([head] + kept).joined(separator: " ")
            if text.count <= width { return text }
        }
        return String(("\(head) \(fields[0])").prefix(max(0, width)))
    }

    /// A log line (standard output not a terminal): no bar, the epoch's percentage instead:
    /// "epoch 3/200 batch 79/781 (10%) loss 1.2346 acc 56.2% 1234 img/s ETA 2h05m".
    public static func logLine(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, accuracy: Double,
                               imagesPerSecond: Double, etaSeconds: Double?) -> String {
        let percentDone = batches > 0 ? 100 * batch / batches : 0
        return "epoch \(epoch)/\(epochs) batch \(batch)/\(batches) (\(percentDone)%) loss \(self.loss(loss)) acc \(percent(accuracy)) "
            + "\(speed(imagesPerSecond)) ETA \(duration(etaSeconds ?? .nan))"
    }

    /// The line that ends an epoch, fitted to `width` (nil: everything):
    /// "epoch 3/200: train loss 1.2346 acc 56.2%, test loss 1.3012 acc 53.12%, lr 0.05, 1234 img/s, 12m07s".
    /// Epoch, training and test values are always kept; the learning rate, throughput and
    /// elapsed time follow while they fit.
    public static func epochLine(_ record: EpochMetrics, epochs: Int, width: Int? = nil) -> String {
        var first = "epoch \(record.epoch)/\(epochs): train loss \(loss(record.trainLoss)) acc \(percent(record.trainAccuracy))"
        if record.testLoss != nil || record.testAccuracy != nil {
            first += ", test loss \(loss(record.testLoss ?? .nan)) acc \(percent(record.testAccuracy ?? .nan, decimals: 2))"
        }
        return fit(first, optional: ["lr \(rate(record.learningRate))", speed(record.imagesPerSecond), duration(record.elapsedSeconds)], width: width)
    }

    /// Progress lines a log (not a terminal) gets in an epoch of `batches` steps: one after every
    /// `logInterval(batches:)` steps, except at the epoch's last step (the epoch line follows).
    /// With an interval of max(10, ⌈batches/10⌉) that is at most 9 lines, and none for an epoch
    /// of 10 steps or fewer: a 50,000-image epoch in batches of 64 (781 steps, interval 79)
    /// logs 9 progress lines and its epoch line.
    public static func logInterval(batches: Int) -> Int { max(10, (max(1, batches) + 9) / 10) }
}

extension String {
    /// The string with spaces in front, `width` characters at least.
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}

/// The width of a terminal: `ioctl(TIOCGWINSZ)` on `descriptor`; when that says nothing (not a
/// terminal, or a size of 0), a positive `COLUMNS` from the environment; else nil.
public func terminalColumns(_ descriptor: Int32 = 1) -> Int? {
    var size = winsize()
    if ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    if let text = ProcessInfo.processInfo.environment["COLUMNS"], let columns = Int(text), columns > 0, columns < 10_000 { return columns }
    return nil
}

/// Reports training progress.
///
/// - On a terminal (standard output is a tty, not quiet): one line redrawn in place with `\r`
///   (at most ten times a second), fitted to the terminal's width (`terminalColumns`, 80 when
///   unknown; asked again at every redraw, so a resized window is followed) and one character
///   short of it, so that it never wraps; the line that ends an epoch replaces it. Each epoch
///   leaves exactly one line on the screen.
/// - In a log (standard output is a file or a pipe): the epoch lines, and in between a progress
///   line every `ProgressFormat.logInterval(batches:)` steps (at most 9 per epoch, none in an
///   epoch of 10 steps or fewer), never one per batch.
/// - Quiet: the epoch lines only (fitted to the terminal when there is one).
public final class ProgressReporter {
    /// Total epochs of the run.
    public let epochs: Int
    /// Batches per epoch.
    public let batchesPerEpoch: Int
    /// Whether standard output is a terminal.
    public let terminal: Bool
    /// Only epoch lines are printed.
    public let quiet: Bool
    /// Whether the single updating line is used (a terminal, not quiet).
    public var interactive: Bool { terminal && !quiet }
    /// Non-interactive mode prints a progress line every this many batches.
    public let logEvery: Int
    private let columns: () -> Int
    private let output: (String) -> Void
    private let start = DispatchTime.now().uptimeNanoseconds
    private var startFraction: Double?
    private var lastDraw: UInt64 = 0
    private var lastLength = 0

    /// Creates a reporter. `terminal` defaults to whether standard output is a tty, `columns` to
    /// `terminalColumns()` or 80, `output` to standard output (flushed at every write).
    public init(epochs: Int, batchesPerEpoch: Int, quiet: Bool = false, terminal: Bool? = nil,
                columns: (() -> Int)? = nil, output: ((String) -> Void)? = nil) {
        self.epochs = max(1, epochs); self.batchesPerEpoch = max(1, batchesPerEpoch); self.quiet = quiet
        self.terminal = terminal ?? (isatty(1) != 0)
        self.logEvery = ProgressFormat.logInterval(batches: batchesPerEpoch)
        self.columns = columns ?? { terminalColumns(1) ?? 80 }
        self.output = output ?? { text in fputs(text, stdout); fflush(stdout) }
    }

    /// Seconds since the reporter was created.
    public var elapsedSeconds: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// The widest line that does not wrap on the terminal (its width less one), nil in a log.
    private var lineWidth: Int? { terminal ? max(10, columns()) - 1 : nil }

    /// Reports that `batch` (1-based) of `epoch` (1-based) finished with running loss/accuracy.
    public func batch(epoch: Int, batch: Int, loss: Double, accuracy: Double, imagesPerSecond: Double) {
        if quiet { return }
        let done = Double((epoch - 1) * batchesPerEpoch + batch) / Double(epochs * batchesPerEpoch)
        // The ETA extrapolates this session's pace (a resumed run starts part-way through).
        let before = startFraction ?? (done - 1 / Double(epochs * batchesPerEpoch))
        if startFraction == nil { startFraction = before }
        let eta = done > before ? elapsedSeconds * (1 - done) / (done - before) : nil
        if interactive {
            let now = DispatchTime.now().uptimeNanoseconds
            if batch != batchesPerEpoch && lastLength > 0 && now - lastDraw < 100_000_000 { return }
            lastDraw = now
            draw(ProgressFormat.line(epoch: epoch, epochs: epochs, batch: batch, batches: batchesPerEpoch, loss: loss, accuracy: accuracy,
                                     imagesPerSecond: imagesPerSecond, etaSeconds: eta, width: lineWidth))
        } else if batch % logEvery == 0 && batch < batchesPerEpoch {
            output(ProgressFormat.logLine(epoch: epoch, epochs: epochs, batch: batch, batches: batchesPerEpoch, loss: loss, accuracy: accuracy,
                                          imagesPerSecond: imagesPerSecond, etaSeconds: eta) + "\n")
        }
    }

    /// Reports that the epoch's training steps are done and the test set is being evaluated
    /// (shown on a terminal only).
    public func evaluating(epoch: Int, images: Int) {
        guard interactive else { return }
        draw(String("epoch \(epoch)/\(epochs): testing on \(images) images".prefix(lineWidth ?? Int.max)))
    }

    /// Ends the epoch with its line (always printed, also in quiet mode), replacing the
    /// updating line on a terminal.
    public func endEpoch(_ record: EpochMetrics) {
        endEpoch(line: ProgressFormat.epochLine(record, epochs: epochs, width: lineWidth))
    }

    /// Ends the epoch with a ready-made line.
    public func endEpoch(line: String) {
        if lastLength > 0 {
            draw(line)
            output("\n")
            lastLength = 0
        } else {
            output(line + "\n")
        }
    }

    /// Prints a message on its own line (erasing the updating line first).
    public func log(_ message: String) {
        clear()
        output(message + "\n")
    }

    /// Erases the updating line (before something else is written, e.g. a warning on standard
    /// error); the next batch draws it again.
    public func clear() {
        guard lastLength > 0 else { return }
        output("\r" + String(repeating: " ", count: min(lastLength, lineWidth ?? lastLength)) + "\r")
        lastLength = 0
    }

    /// Redraws the updating line: carriage return, the text, spaces over the rest of the last one.
    private func draw(_ text: String) {
        let covered = min(lastLength, lineWidth ?? lastLength)   // a shrunk window: never pad past its edge
        output("\r" + text + String(repeating: " ", count: max(0, covered - text.count)))
        lastLength = text.count
    }
}
