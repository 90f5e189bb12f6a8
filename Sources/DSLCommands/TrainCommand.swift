import DSLEngine
import DSLIR
import DSLTraining
import Foundation

/// `dsl train FILE --data DIR`: trains the network with the All-CNN paper's recipe.
enum TrainCommand {
    static let command = Command(name: "train", summary: "train a network on CIFAR-10/100 or MNIST, with checkpoints", help: """
    Usage: dsl train FILE --data DIR [options]

    Trains the network on a dataset in its standard on-disk format: CIFAR-10 binary
    (data_batch_*.bin, any subset, + test_batch.bin), CIFAR-100 binary (train.bin, test.bin)
    or MNIST IDX (train-images-idx3-ubyte, ...). The format is detected from the files.
    Evaluates on the test set after every epoch, appends metrics to OUT/metrics.jsonl,
    draws OUT/curves.svg, and writes OUT/checkpoint.safetensors atomically every epoch.
    Ctrl-C finishes the current step, writes the checkpoint and exits (resume with --resume).

    Data:
      --data DIR            dataset directory (required)
      --dataset NAME        cifar10, cifar100 or mnist (default: detected)
      --labels fine|coarse  CIFAR-100 labels (default fine)
      --train-limit N       use only the first N training images
      --test-limit N        use only the first N test images
    Recipe:
      --epochs N            passes over the training set (default 10)
      --batch N             images per step (default 64)
      --lr X                base learning rate (default 0.05)
      --momentum X          SGD momentum (default 0.9)
      --nesterov            Nesterov momentum
      --weight-decay X      L2 weight decay on weights, not biases or BN (default 0.001)
      --schedule S          cosine (default), constant, or step:F@E1,E2,... (the paper's:
                            step:0.1@200,250,300); append +warmup:N for N warm-up epochs
      --no-flip             no random horizontal flips
      --translate P         random translations up to P pixels (default 2; 0 turns off)
      --whiten M            standardize (default), zca (the paper's global contrast
                            normalisation + ZCA whitening), or none
    Run:
      --out DIR             where checkpoint, metrics and plot go (default runs/NETWORK)
      --resume CKPT         continue from a checkpoint of the same spec
      --seed S              seed for weights, order, augmentation, dropout (default 1)
      --threads T           worker threads (default: all cores)
      --quiet               plain log lines only, no progress bar

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--data", "--dataset", "--labels", "--train-limit", "--test-limit", "--epochs", "--batch", "--lr", "--momentum",
                                                   "--weight-decay", "--schedule", "--translate", "--whiten", "--out", "--resume", "--seed", "--threads"],
                              flagOptions: ["--nesterov", "--no-flip", "--quiet"])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        guard let dataDir = a.value("--data") else { throw UsageError(message: "missing --data DIR (a CIFAR-10, CIFAR-100 or MNIST directory)") }
        var o = TrainingOptions()
        o.epochs = try a.integer("--epochs", default: 10, in: 1...100_000)
        o.batch = try a.integer("--batch", default: 64, in: 1...4096)
        o.learningRate = Float(try a.number("--lr", default: 0.05, in: 0...10))
        o.momentum = Float(try a.number("--momentum", default: 0.9, in: 0...0.999))
        o.nesterov = a.has("--nesterov")
        o.weightDecay = Float(try a.number("--weight-decay", default: 1e-3, in: 0...1))
        o.schedule = a.value("--schedule") ?? "cosine"
        o.flip = !a.has("--no-flip")
        o.translate = try a.integer("--translate", default: 2, in: 0...16)
        o.seed = UInt64(try a.integer("--seed", default: 1, in: 0...Int.max))
        if a.value("--train-limit") != nil { o.trainLimit = try a.integer("--train-limit", default: 0, in: 1...Int.max) }
        if a.value("--test-limit") != nil { o.testLimit = try a.integer("--test-limit", default: 0, in: 1...Int.max) }
        switch a.value("--whiten") ?? "standardize" {
        case "standardize": o.whiten = .standardize
        case "zca": o.whiten = .gcnZCA
        case "none": o.whiten = .none
        case let w: throw UsageError(message: "--whiten must be standardize, zca or none, got '\(w)'")
        }
        do { _ = try LearningRateSchedule(parsing: o.schedule, epochs: o.epochs) } catch { throw UsageError(message: "\(error)") }
        engineThreadCount = try a.integer("--threads", default: ProcessInfoCores.count, in: 1...256)
        let quiet = a.has("--quiet") || isatty(1) == 0
        let format = try a.value("--dataset").map { try DatasetFormat(parsing: $0) }
        let labels = try (a.value("--labels")).map { try CIFAR100Labels(parsing: $0) } ?? .fine

        guard let (_, g, _) = try loadChecked(a.positional[0], printWarnings: true) else { return ExitCode.failure }
        let outDir = a.value("--out") ?? "runs/\(g.name)"
        let data = try loadDataset(directory: dataDir, format: format, labels: labels)
        let trainer = try Trainer(graph: g, train: data.train, test: data.test, options: o)
        let checkpointPath = outDir + "/checkpoint.safetensors"
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        if let resume = a.value("--resume") {
            try trainer.restore(from: try readSafetensors(path: resume), file: resume)
            out("resuming from \(resume) at epoch \(trainer.position.epoch + 1), step \(trainer.position.step)\n")
        }
        let metricsPath = outDir + "/metrics.jsonl"
        let plotPath = outDir + "/curves.svg"
        var history: [(epoch: Int, trainLoss: Double, trainAcc: Double, testLoss: Double, testAcc: Double)] = loadHistory(metricsPath, upTo: trainer.position.epoch)
        if trainer.position.epoch == 0 && trainer.position.step == 0 { try? FileManager.default.removeItem(atPath: metricsPath); history = [] }

        signal(SIGINT) { _ in Trainer.stopRequested = true }
        var lastDraw = Date.distantPast
        let outcome = try trainer.run(report: { event in
            switch event {
            case .started(let text):
                out(text + "\n")
            case let .step(epoch, step, steps, loss, acc, ips, _):
                if quiet {
                    if step == steps || step % max(1, steps / 4) == 0 {
                        out(String(format: "epoch %d/%d step %d/%d loss %.4f acc %.2f%% %.1f img/s\n", epoch, o.epochs, step, steps, loss, acc * 100, ips))
                    }
                } else if Date().timeIntervalSince(lastDraw) > 0.1 || step == steps {
                    lastDraw = Date()
                    let remaining = Double(steps - step) * Double(o.batch) / max(ips, 1e-9) + Double(o.epochs - epoch) * Double(steps * o.batch) / max(ips, 1e-9)
                    out("\r" + progressLine(epoch: epoch, epochs: o.epochs, step: step, steps: steps, loss: loss, accuracy: acc, imagesPerSecond: ips, eta: remaining))
                }
            case let .epochEnded(epoch, trainLoss, trainAcc, test, lr, ips, elapsed):
                if !quiet { out("\r\u{1B}[K") }
                out(String(format: "epoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | lr %.5f | %.1f img/s | %.0f s\n",
                           epoch, o.epochs, trainLoss, trainAcc * 100, test.loss, test.accuracy * 100, lr, ips, elapsed))
                history.append((epoch, trainLoss, trainAcc, test.loss, test.accuracy))
                let line = JSON.object([("epoch", .int(epoch)), ("lr", .double(Double(lr))), ("train_loss", .double(trainLoss)), ("train_accuracy", .double(trainAcc)),
                                        ("test_loss", .double(test.loss)), ("test_accuracy", .double(test.accuracy)), ("images_per_second", .double(ips)), ("elapsed_seconds", .double(elapsed))]).render(pretty: false)
                appendLine(line, to: metricsPath)
                try? writeAtomically(Data(curvesSVG(title: g.name, history: history.map { ($0.epoch, $0.trainLoss, $0.testLoss, $0.trainAcc, $0.testAcc) }).utf8), to: plotPath)
            case .checkpoint:
                break
            }
        }, checkpoint: { t in
            let (tensors, meta) = try t.checkpointContents()
            try writeSafetensors(tensors, metadata: meta, to: checkpointPath)
        })
        switch outcome {
        case .finished:
            out("done: checkpoint \(checkpointPath), metrics \(metricsPath), plot \(plotPath)\n")
        case let .interrupted(epoch, step):
            if !quiet { out("\r\u{1B}[K") }
            out("interrupted: checkpoint written to \(checkpointPath) at epoch \(epoch + 1), step \(step); continue with --resume \(checkpointPath)\n")
        }
        return ExitCode.ok
    }

    /// `epoch 3/10 [=======>     ] 120/156 loss 1.234 acc 55.1% 812 img/s ETA 2m05s`
    static func progressLine(epoch: Int, epochs: Int, step: Int, steps: Int, loss: Double, accuracy: Double, imagesPerSecond: Double, eta: Double) -> String {
        let width = 24
        let filled = steps > 0 ? min(width, width * step / steps) : 0
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        return String(format: "epoch %d/%d [%@] %d/%d loss %.4f acc %.1f%% %.0f img/s ETA %@", epoch, epochs, bar, step, steps, loss, accuracy * 100, imagesPerSecond, formatDuration(eta))
    }

    /// `1h02m`, `2m05s`, `7s`.
    static func formatDuration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "?" }
        let t = Int(s.rounded())
        if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
        if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
        return "\(t)s"
    }

    static func appendLine(_ line: String, to path: String) {
        if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
        if let h = FileHandle(forWritingAtPath: path) { h.seekToEndOfFile(); h.write((line + "\n").data(using: .utf8)!); h.closeFile() }
    }

    static func loadHistory(_ path: String, upTo epochs: Int) -> [(epoch: Int, trainLoss: Double, trainAcc: Double, testLoss: Double, testAcc: Double)] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        var rows: [(Int, Double, Double, Double, Double)] = []
        for line in text.split(separator: "\n") {
            guard let d = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let e = d["epoch"] as? Int, e <= epochs else { continue }
            rows.append((e, d["train_loss"] as? Double ?? .nan, d["train_accuracy"] as? Double ?? .nan, d["test_loss"] as? Double ?? .nan, d["test_accuracy"] as? Double ?? .nan))
        }
        return rows
    }
}

/// Draws loss (left panel) and accuracy (right panel) per epoch as a standalone SVG.
func curvesSVG(title: String, history: [(epoch: Int, trainLoss: Double, testLoss: Double, trainAcc: Double, testAcc: Double)]) -> String {
    let w = 420.0, h = 260.0, m = 44.0
    func panel(_ x0: Double, _ name: String, _ series: [(String, String, [Double])], yMax: Double) -> String {
        let n = max(history.count, 2)
        var s = "<g transform=\"translate(\(x0),30)\">\n"
        s += "<rect x=\"\(m)\" y=\"0\" width=\"\(w - m - 10)\" height=\"\(h - m)\" fill=\"none\" stroke=\"#888\"/>\n"
        s += "<text x=\"\((w + m) / 2)\" y=\"-8\" text-anchor=\"middle\" font-size=\"13\">\(name)</text>\n"
        for i in 0...4 {
            let v = yMax * Double(i) / 4, y = (h - m) * (1 - Double(i) / 4)
            s += "<line x1=\"\(m - 4)\" y1=\"\(y)\" x2=\"\(m)\" y2=\"\(y)\" stroke=\"#888\"/><text x=\"\(m - 6)\" y=\"\(y + 4)\" text-anchor=\"end\" font-size=\"10\">\(String(format: "%.2f", v))</text>\n"
        }
        let xs = history.map(\.epoch)
        for (i, e) in xs.enumerated() where xs.count <= 12 || i % (xs.count / 10 + 1) == 0 {
            let x = m + (w - m - 10) * Double(i) / Double(n - 1)
            s += "<text x=\"\(x)\" y=\"\(h - m + 14)\" text-anchor=\"middle\" font-size=\"10\">\(e)</text>\n"
        }
        s += "<text x=\"\((w + m) / 2)\" y=\"\(h - m + 30)\" text-anchor=\"middle\" font-size=\"11\">epoch</text>\n"
        for (k, (label, color, values)) in series.enumerated() {
            let pts = values.enumerated().map { i, v in
                String(format: "%.1f,%.1f", m + (w - m - 10) * Double(i) / Double(n - 1), (h - m) * (1 - min(max(v.isFinite ? v : 0, 0), yMax) / yMax))
            }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts)\"/>\n"
            s += "<text x=\"\(m + 8)\" y=\"\(14 + 14 * Double(k))\" font-size=\"11\" fill=\"\(color)\">\(label)</text>\n"
        }
        return s + "</g>\n"
    }
    let maxLoss = max(0.5, (history.flatMap { [$0.trainLoss, $0.testLoss] }.filter(\.isFinite).max() ?? 1) * 1.1)
    var svg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(2 * w + 20))\" height=\"\(Int(h + 30))\" font-family=\"sans-serif\">\n"
    svg += "<title>\(title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;"))</title>\n"
    svg += panel(0, "loss", [("train", "#1f77b4", history.map(\.trainLoss)), ("test", "#d62728", history.map(\.testLoss))], yMax: maxLoss)
    svg += panel(w + 10, "accuracy", [("train", "#1f77b4", history.map(\.trainAcc)), ("test", "#d62728", history.map(\.testAcc))], yMax: 1)
    return svg + "</svg>\n"
}
