import Dispatch
import Foundation
#if os(Linux)
import Glibc
#endif

/// Pure formatting helpers for progress output (no clocks, no I/O).
public enum ProgressFormat {
    /// A duration as "45s", "3m07s" or "2h05m", or "--" when unknown (negative, infinite, NaN).
    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--" }
        let total = Int(seconds.rounded())
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(String(format: "%02d", total % 60))s" }
        return "\(total / 3600)h\(String(format: "%02d", (total % 3600) / 60))m"
    }

    /// A text bar such as "[#######.............]" for `fraction` (clamped to 0...1).
    public static func bar(fraction: Double, width: Int = 20) -> String {
        let clamped = fraction.isFinite ? min(1, max(0, fraction)) : 0
        let filled = Int((clamped * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: max(0, width - filled)) + "]"
    }

    /// Seconds remaining when `fraction` of the work took `elapsed` seconds (nil when unknown).
    public static func eta(elapsed: Double, fraction: Double) -> Double? {
        guard fraction > 0, fraction.isFinite, elapsed.isFinite, elapsed >= 0 else { return nil }
        return elapsed * (1 - min(1, fraction)) / fraction
    }

    /// One progress line: "epoch 3/200 batch 17/391 [##....] loss 1.2345 acc 56.2% 1234 img/s ETA 2h05m".
    public static func line(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double, accuracy: Double,
                            imagesPerSecond: Double, etaSeconds: Double?, barWidth: Int = 20) -> String {
        let epochWidth = String(epochs).count, batchWidth = String(batches).count
        let e = String(repeating: " ", count: max(0, epochWidth - String(epoch).count)) + String(epoch)
        let b = String(repeating: " ", count: max(0, batchWidth - String(batch).count)) + String(batch)
        let fraction = batches > 0 ? Double(batch) / Double(batches) : 0
        let lossText = loss.isFinite ? String(format: "%.4f", loss) : "nan"
        let accuracyText = accuracy.isFinite ? String(format: "%5.1f%%", accuracy * 100) : "  --%"
        let speed = imagesPerSecond.isFinite ? String(format: "%.0f", imagesPerSecond) : "--"
        return "epoch \(e)/\(epochs) batch \(b)/\(batches) \(bar(fraction: fraction, width: barWidth)) loss \(lossText) acc \(accuracyText) \(speed) img/s ETA \(duration(etaSeconds ?? .nan))"
    }
}

/// Reports training progress: one updating line on a terminal, plain log lines otherwise.
///
/// On a terminal (stdout is a tty, not quiet) each `batch` call redraws a single line with `\r`
/// (at most ten times a second). Otherwise it prints a plain line every `logEvery` batches,
/// and in quiet mode only the epoch summaries passed to `endEpoch`.
public final class ProgressReporter {
    /// Total epochs of the run.
    public let epochs: Int
    /// Batches per epoch.
    public let batchesPerEpoch: Int
    /// Whether the single updating line is used.
    public let interactive: Bool
    /// Only epoch summaries are printed.
    public let quiet: Bool
    /// Non-interactive mode prints a batch line every this many batches.
    public let logEvery: Int
    private let output: (String) -> Void
    private let start = DispatchTime.now().uptimeNanoseconds
    private var lastDraw: UInt64 = 0
    private var lastLength = 0
    private var lineOpen = false

    /// Creates a reporter; by default interactive when stdout is a terminal, writing to stdout.
    public init(epochs: Int, batchesPerEpoch: Int, quiet: Bool = false, interactive: Bool? = nil,
                logEvery: Int? = nil, output: ((String) -> Void)? = nil) {
        self.epochs = max(1, epochs); self.batchesPerEpoch = max(1, batchesPerEpoch); self.quiet = quiet
        self.interactive = !quiet && (interactive ?? (isatty(1) != 0))
        self.logEvery = max(1, logEvery ?? max(1, batchesPerEpoch / 10))
        self.output = output ?? { text in fputs(text, stdout); fflush(stdout) }
    }

    /// Seconds since the reporter was created.
    public var elapsedSeconds: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }

    /// Reports that `batch` (1-based) of `epoch` (1-based) finished with running loss/accuracy.
    public func batch(epoch: Int, batch: Int, loss: Double, accuracy: Double, imagesPerSecond: Double) {
        if quiet { return }
        let done = Double((epoch - 1) * batchesPerEpoch + batch) / Double(epochs * batchesPerEpoch)
        let text = ProgressFormat.line(epoch: epoch, epochs: epochs, batch: batch, batches: batchesPerEpoch, loss: loss,
                                       accuracy: accuracy, imagesPerSecond: imagesPerSecond,
                                       etaSeconds: ProgressFormat.eta(elapsed: elapsedSeconds, fraction: done))
        if interactive {
            let now = DispatchTime.now().uptimeNanoseconds
            if batch != batchesPerEpoch && now - lastDraw < 100_000_000 && lineOpen { return }
            lastDraw = now
            let padding = String(repeating: " ", count: max(0, lastLength - text.count))
            output("\r" + text + padding)
            lastLength = text.count
            lineOpen = true
        } else if batch % logEvery == 0 || batch == batchesPerEpoch {
            output(text + "\n")
        }
    }

    /// Ends the epoch with a summary line (always printed, also in quiet mode).
    public func endEpoch(_ summary: String) {
        closeLine()
        output(summary + "\n")
    }

    /// Prints a message on its own line (closing the updating line first).
    public func log(_ message: String) {
        closeLine()
        output(message + "\n")
    }

    private func closeLine() {
        if lineOpen {
            output("\n")
            lineOpen = false
            lastLength = 0
        }
    }
}
