import Foundation
import XCTest

/// What `dsl train` prints (issue #15): on a terminal one line per epoch whatever the width; in
/// a log (a file, a pipe) the epoch lines and a few progress lines, never one per batch.
final class TrainOutputTests: XCTestCase {
    /// 1,000 training images in batches of 1: epochs of 1,000 steps, a fraction of a second each.
    private func longEpochs(epochs: Int) -> [String] {
        ["--data", TrainFixture.sample, "--test-limit", "50", "--batch", "1", "--epochs", String(epochs)]
    }

    /// Runs `dsl ARGS` on a pseudo-terminal of `columns` columns (util-linux `script`), returning
    /// its exit status and everything it wrote to the terminal. Skips when `script` is missing
    /// (fails under CI).
    private func runOnTerminal(_ arguments: [String], columns: Int, cwd: String? = nil) throws -> (status: Int32, output: String) {
        let scriptPath = ["/usr/bin/script", "/bin/script"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let scriptPath else {
            if ProcessInfo.processInfo.environment["CI"] != nil { XCTFail("util-linux 'script' is needed for the terminal test") }
            throw XCTSkip("util-linux 'script' is not installed")
        }
        let binary = try XCTUnwrap(DSL.binary)
        func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = "stty cols \(columns) rows 24; exec " + ([binary] + arguments).map(quoted).joined(separator: " ")
        let dir = try TrainFixture.directory(self)
        let log = dir + "/terminal.out"
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: scriptPath)
        p.arguments = ["-qfec", command, "/dev/null"]
        p.currentDirectoryURL = cwd.map { URL(fileURLWithPath: $0) } ?? DSL.packageRoot
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try handle.close()
        return (p.terminationStatus, TrainFixture.read(log))
    }

    /// At 80 columns, a 3-epoch run leaves its header, one line per epoch and the three summary
    /// lines (done, peak memory, saved in), none wrapped; at 50 columns still one line per epoch: the progress line is
    /// redrawn in place and never wraps. (Relative paths, so that no line holds a long path.)
    func testTerminalKeepsOneLinePerEpochAtAnyWidth() throws {
        let dir = try TrainFixture.directory(self)
        try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        var recipe = longEpochs(epochs: 3)
        recipe[1] = DSL.packageRoot.appendingPathComponent(TrainFixture.sample).path
        for columns in [80, 50] {
            let r = try runOnTerminal(["train", "tiny.dsl", "--out", "run\(columns)"] + recipe, columns: columns, cwd: dir)
            XCTAssertEqual(r.status, 0, r.output)
            let screen = TerminalScreen.render(r.output, columns: columns)
            let shown = "\(columns) columns:\n" + screen.joined(separator: "\n")
            // The progress line was drawn (and redrawn) in place, and left nothing behind.
            XCTAssertTrue(r.output.contains("\repoch 1/3 batch "), r.output)
            XCTAssertNil(screen.first { $0.range(of: "batch +[0-9]+/|testing on", options: .regularExpression) != nil }, shown)
            let first = try XCTUnwrap(screen.firstIndex { $0.hasPrefix("epoch ") }, shown)
            XCTAssertEqual(screen.filter { $0.hasPrefix("epoch ") }.count, 3, shown)
            for e in 1...3 { XCTAssertTrue(screen[first + e - 1].hasPrefix("epoch \(e)/3: train loss "), shown) }
            XCTAssertTrue(screen[first + 3].hasPrefix("done: 3 epochs in "), shown)
            if columns == 80 {
                XCTAssertEqual(screen.count, first + 3 + 3, shown)
                XCTAssertTrue(screen[first + 4].hasPrefix("peak memory "), shown)
                XCTAssertEqual(first, 5, shown)   // the five header lines, none wrapped
                XCTAssertTrue(screen.last!.hasPrefix("saved in run80: "), shown)
            }
        }
    }

    /// --quiet on a terminal: the epoch lines only, no progress display at all.
    func testQuietPrintsEpochLinesOnly() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let r = try runOnTerminal(["train", spec, "--out", dir + "/run", "--quiet"] + longEpochs(epochs: 2), columns: 80)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertNil(r.output.range(of: "batch +[0-9]+/", options: .regularExpression), r.output)
        XCTAssertNil(r.output.range(of: "\r[^\n]", options: .regularExpression), "something was redrawn:\n" + r.output)
        XCTAssertEqual(TerminalScreen.render(r.output, columns: 80).filter { $0.hasPrefix("epoch ") }.count, 2)
    }

    /// Piped to a file: an epoch of 1,000 steps writes its epoch line and at most 9 progress
    /// lines (one every 100 steps), no carriage returns.
    func testLogHasAFewLinesPerEpoch() throws {
        let dir = try TrainFixture.directory(self)
        let spec = try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        let r = try DSL.run(["train", spec, "--out", dir + "/run"] + longEpochs(epochs: 2))
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertFalse(r.stdout.contains("\r"))
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for epoch in 1...2 {
            let count = lines.filter { $0.hasPrefix("epoch \(epoch)/2") }.count
            XCTAssertGreaterThan(count, 1, r.stdout)   // the progress lines are there...
            XCTAssertLessThanOrEqual(count, 10, r.stdout)   // ...but only a few
        }
        XCTAssertTrue(lines.contains { $0.hasPrefix("epoch 1/2 batch 100/1000 (10%) loss ") }, r.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix("epoch 2/2: train loss ") }, r.stdout)
    }

    /// Writes a synthetic MNIST directory (IDX files) of `train` training and `test` test images.
    private func syntheticMNIST(_ dir: String, train: Int, test: Int) throws {
        func header(_ magic: UInt32, _ dims: [Int]) -> [UInt8] {
            ([magic] + dims.map(UInt32.init)).flatMap { v in (0..<4).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
        }
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func byte() -> UInt8 { state = state &* 6364136223846793005 &+ 1442695040888963407; return UInt8(truncatingIfNeeded: state >> 56) }
        for (prefix, count) in [("train", train), ("t10k", test)] {
            var images = header(0x0803, [count, 28, 28]); images.reserveCapacity(images.count + count * 784)
            for _ in 0..<(count * 784) { images.append(byte()) }
            let labels = header(0x0801, [count]) + (0..<count).map { UInt8($0 % 10) }
            try Data(images).write(to: URL(fileURLWithPath: dir + "/\(prefix)-images-idx3-ubyte"))
            try Data(labels).write(to: URL(fileURLWithPath: dir + "/\(prefix)-labels-idx1-ubyte"))
        }
    }

    /// The issue's figure: piped to a file, a 50,000-image epoch (782 steps of 64) writes at
    /// most 12 lines (here: 9 progress lines and the epoch line).
    func testFiftyThousandImageEpochLogsAtMostTwelveLines() throws {
        let dir = try TrainFixture.directory(self)
        try FileManager.default.createDirectory(atPath: dir + "/mnist", withIntermediateDirectories: true)
        try syntheticMNIST(dir + "/mnist", train: 50_000, test: 64)
        let spec = try TrainFixture.write("network small\ninput 28x28x1\nconv 3 2 4\ngap\nfc 10\nsoftmax\n", dir, "small.dsl")
        let r = try DSL.run(["train", spec, "--data", dir + "/mnist", "--batch", "64", "--epochs", "1", "--out", dir + "/run"], timeout: 600)
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertTrue(r.stdout.contains("50000 training"), r.stdout)
        let epochLines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("epoch 1/1") }
        XCTAssertGreaterThan(epochLines.count, 1, r.stdout)
        XCTAssertLessThanOrEqual(epochLines.count, 12, r.stdout)
        XCTAssertFalse(r.stdout.contains("\r"))
    }

    /// The help documents the new options and outputs.
    func testHelpDocumentsOutputAndInit() throws {
        let train = try DSL.run(["train", "--help"])
        XCTAssertEqual(train.status, 0)
        for text in ["[--init CKPT]", "  --init CKPT  ", "  --quiet  ", "OUT/steps.jsonl", "Fine-tuning: '--init CKPT'",
                     "at most 10 lines an epoch", "even a changed dropout rate is refused"] {
            XCTAssertTrue(train.stdout.contains(text), "train --help lacks \(text)")
        }
        XCTAssertTrue(train.stdout.split(separator: "\n").allSatisfy { $0.count <= 90 }, train.stdout)
        let eval = try DSL.run(["eval", "--help"])
        XCTAssertEqual(eval.status, 0)
        XCTAssertTrue(eval.stdout.contains("a spec that differs only\nin dropout is accepted with a note"), eval.stdout)
    }

    /// The output with what varies between runs and machines masked: speeds ("N img/s"), times
    /// ("ETA T", "in T", ", T" at the end of a line), and in every decimal number the integer
    /// part ("#") and each decimal ("d"), so that the format (rounding, widths) is still compared.
    static func masked(_ text: String) -> String {
        var s = text
        for (pattern, replacement) in [("[0-9]+ img/s", "N img/s"), ("memory [0-9]+ MiB \\(", "memory N MiB ("), ("ETA [^ \n]+", "ETA T"), (" in [0-9hms]+,", " in T,"),
                                       (", [0-9hms]+$", ", T"), ("at epoch [0-9]+\\)", "at epoch E)"),
                                       ("(?<![0-9.])[0-9]+\\.", "#.")] {
            s = s.replacingOccurrences(of: pattern, with: replacement, options: .regularExpression)
                .split(separator: "\n", omittingEmptySubsequences: false).map { line in
                    String(line).replacingOccurrences(of: pattern, with: replacement, options: .regularExpression)
                }.joined(separator: "\n")
        }
        // Decimals after "#.": each digit becomes "d".
        var out = "", afterPoint = false
        for c in s {
            if afterPoint, c.isNumber { out.append("d"); continue }
            afterPoint = false
            out.append(c)
            if out.hasSuffix("#.") { afterPoint = true }
        }
        return out
    }

    /// Golden outputs of a 2-epoch run of 1,000-step epochs: piped (the log) and on a terminal
    /// of 80 columns (the screen it leaves), masked by `masked`.
    func testGoldenOutputs() throws {
        let dir = try TrainFixture.directory(self)
        try TrainFixture.write(TrainFixture.tinySpec, dir, "tiny.dsl")
        var recipe = longEpochs(epochs: 2) + ["--threads", "2"]
        recipe[1] = DSL.packageRoot.appendingPathComponent(TrainFixture.sample).path
        let piped = try DSL.run(["train", "tiny.dsl", "--out", "log"] + recipe, cwd: URL(fileURLWithPath: dir))
        XCTAssertEqual(piped.status, 0, piped.summary)
        let terminal = try runOnTerminal(["train", "tiny.dsl", "--out", "tty"] + recipe, columns: 80, cwd: dir)
        XCTAssertEqual(terminal.status, 0, terminal.output)
        let screen = TerminalScreen.render(terminal.output, columns: 80).joined(separator: "\n") + "\n"
        XCTAssertEqual(Self.masked(piped.stdout), """
        training tiny: 1000 training and 50 test images, batch 1, 2 epochs
        SGD lr #.dd, momentum #.d, weight decay #.ddd, seed 1
        schedule: base lr #.dd for 2 epochs; cosine decay to 0 by epoch 2
        augmentation: flips, translations up to 2 px; preprocessing: standardize
        engine: 2 threads, 322 parameters, planned memory #.d MiB
        epoch 1/2 batch 100/1000 (10%) loss #.dddd acc #.d% N img/s ETA T
        epoch 1/2 batch 200/1000 (20%) loss #.dddd acc #.d% N img/s ETA T
        epoch 1/2 batch 300/1000 (30%) loss #.dddd acc #.d% N img/s ETA T
        epoch 1/2 batch 400/1000 (40%) loss #.dddd acc #.d% N img/s ETA T
        epoch 1/2 batch 500/1000 (50%) loss #.dddd acc #.d% N img/s ETA T
        epoch 1/2 batch 600/1000 (60%) loss #.dddd acc #.d% N img/s ETA T
        epoch 1/2 batch 700/1000 (70%) loss #.dddd acc #.d% N img/s ETA T
        epoch 1/2 batch 800/1000 (80%) loss #.dddd acc #.d% N img/s ETA T
        epoch 1/2 batch 900/1000 (90%) loss #.dddd acc #.d% N img/s ETA T
        epoch 1/2: train loss #.dddd acc #.d%, test loss #.dddd acc #.dd%, lr #.ddddd, N img/s, T
        epoch 2/2 batch 100/1000 (10%) loss #.dddd acc #.d% N img/s ETA T
        epoch 2/2 batch 200/1000 (20%) loss #.dddd acc #.d% N img/s ETA T
        epoch 2/2 batch 300/1000 (30%) loss #.dddd acc #.d% N img/s ETA T
        epoch 2/2 batch 400/1000 (40%) loss #.dddd acc #.d% N img/s ETA T
        epoch 2/2 batch 500/1000 (50%) loss #.dddd acc #.d% N img/s ETA T
        epoch 2/2 batch 600/1000 (60%) loss #.dddd acc #.d% N img/s ETA T
        epoch 2/2 batch 700/1000 (70%) loss #.dddd acc #.d% N img/s ETA T
        epoch 2/2 batch 800/1000 (80%) loss #.dddd acc #.d% N img/s ETA T
        epoch 2/2 batch 900/1000 (90%) loss #.dddd acc #.d% N img/s ETA T
        epoch 2/2: train loss #.dddd acc #.d%, test loss #.dddd acc #.dd%, lr #.dde-08, N img/s, T
        done: 2 epochs in T, test accuracy #.dd% (best #.dd% at epoch E)
        peak memory N MiB (resident, VmHWM)
        saved in log: checkpoint.safetensors, metrics.jsonl, curves.svg

        """)
        XCTAssertEqual(Self.masked(screen), """
        training tiny: 1000 training and 50 test images, batch 1, 2 epochs
        SGD lr #.dd, momentum #.d, weight decay #.ddd, seed 1
        schedule: base lr #.dd for 2 epochs; cosine decay to 0 by epoch 2
        augmentation: flips, translations up to 2 px; preprocessing: standardize
        engine: 2 threads, 322 parameters, planned memory #.d MiB
        epoch 1/2: train loss #.dddd acc #.d%, test loss #.dddd acc #.dd%, lr #.ddddd
        epoch 2/2: train loss #.dddd acc #.d%, test loss #.dddd acc #.dd%, lr #.dde-08
        done: 2 epochs in T, test accuracy #.dd% (best #.dd% at epoch E)
        peak memory N MiB (resident, VmHWM)
        saved in tty: checkpoint.safetensors, metrics.jsonl, curves.svg

        """)
    }
}
