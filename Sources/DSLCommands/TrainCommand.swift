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
      --zca-epsilon X       ZCA regularisation added to every eigenvalue (default 0.1, as
                            pylearn2); ZCA wants more training images than pixel values
    Run:
      --out DIR             where checkpoint, metrics and plot go (default runs/NETWORK)
      --resume CKPT         continue from a checkpoint of the same spec
      --seed S              seed for weights, order, augmentation, dropout (default 1)
      --threads T           worker threads (default: all cores)
      --quiet               plain log lines only, no progress bar

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--data", "--dataset", "--labels", "--train-limit", "--test-limit", "--epochs", "--batch", "--lr", "--momentum",
                                                   "--weight-decay", "--schedule", "--translate", "--whiten", "--zca-epsilon", "--out", "--resume", "--seed", "--threads"],
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
        if a.value("--zca-epsilon") != nil {
            guard o.whiten == .gcnZCA else { throw UsageError(message: "--zca-epsilon applies only with --whiten zca") }
            o.zcaEpsilon = Float(try a.number("--zca-epsilon", default: Double(Preprocessor.defaultZCAEpsilon), in: 1e-6...1e6))
        }
        do { _ = try LearningRateSchedule.parse(o.schedule, baseRate: Double(o.learningRate), totalEpochs: o.epochs) } catch { throw UsageError(message: "\(error)") }
        engineThreadCount = try a.integer("--threads", default: ProcessInfoCores.count, in: 1...256)
        let format = try a.value("--dataset").map { try DatasetFormat(parsing: $0) }
        let labels = try (a.value("--labels")).map { try CIFAR100Labels(parsing: $0) } ?? .fine

        guard let (_, g, _) = try loadChecked(a.positional[0], printWarnings: true) else { return ExitCode.failure }
        let outDir = a.value("--out") ?? "runs/\(g.name)"
        let data = try loadDataset(directory: dataDir, format: format, labels: labels)
        let trainer = try Trainer(graph: g, train: data.train, test: data.test, options: o)
        let checkpointPath = outDir + "/checkpoint.safetensors"
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        if let resume = a.value("--resume") {
            try trainer.restore(from: try TrainingCheckpoint.read(from: resume), file: resume)
            out("resuming from \(resume) at epoch \(trainer.position.epoch + 1), step \(trainer.position.step)\n")
        }
        let metricsPath = outDir + "/metrics.jsonl"
        let plotPath = outDir + "/curves.svg"
        // On resume, keep the epochs the checkpoint has; a fresh run starts a new log.
        var history = ((try? readMetrics(path: metricsPath)) ?? []).filter { $0.epoch <= trainer.position.epoch }
        if trainer.position.epoch == 0 && trainer.position.step == 0 { history = [] }
        try writeTextAtomically(history.map { $0.jsonLine + "\n" }.joined(), to: metricsPath)
        var progress: ProgressReporter?

        signal(SIGINT) { _ in Trainer.stopRequested = true }
        let outcome = try trainer.run(report: { event in
            switch event {
            case .started(let text):
                out(text + "\n")
            case let .step(epoch, step, steps, loss, acc, ips, _):
                if progress == nil { progress = ProgressReporter(epochs: o.epochs, batchesPerEpoch: steps, interactive: a.has("--quiet") ? false : nil) }
                progress?.batch(epoch: epoch, batch: step, loss: loss, accuracy: acc, imagesPerSecond: ips)
            case let .epochEnded(epoch, trainLoss, trainAcc, test, lr, ips, elapsed):
                let summary = String(format: "epoch %d/%d: train loss %.4f acc %.2f%% | test loss %.4f acc %.2f%% | lr %.5f | %.1f img/s | %.0f s",
                                     epoch, o.epochs, trainLoss, trainAcc * 100, test.loss, test.accuracy * 100, lr, ips, elapsed)
                if let p = progress { p.endEpoch(summary) } else { out(summary + "\n") }
                let record = EpochMetrics(epoch: epoch, step: epoch * max(1, trainer.stepsPerEpoch), learningRate: Double(lr), trainLoss: trainLoss, trainAccuracy: trainAcc,
                                          testLoss: test.loss, testAccuracy: test.accuracy, imagesPerSecond: ips, elapsedSeconds: elapsed)
                history.append(record)
                try? appendMetrics(record, to: metricsPath)
                try? writeTrainingPlot(history, to: plotPath, title: g.name)
            case .checkpoint:
                break
            }
        }, checkpoint: { t in
            try t.checkpoint().write(to: checkpointPath)
        })
        switch outcome {
        case .finished:
            out("done: checkpoint \(checkpointPath), metrics \(metricsPath), plot \(plotPath)\n")
        case let .interrupted(epoch, step):
            progress?.log("")
            out("interrupted: checkpoint written to \(checkpointPath) at epoch \(epoch + 1), step \(step); continue with --resume \(checkpointPath)\n")
        }
        return ExitCode.ok
    }

}
