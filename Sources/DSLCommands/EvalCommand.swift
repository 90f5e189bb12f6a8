import DSLEngine
import DSLIR
import DSLTraining
import Foundation

/// `dsl eval FILE --weights CKPT --data DIR`: test error, per-class accuracy, confusion matrix.
enum EvalCommand {
    static let command = Command(name: "eval", summary: "evaluate a checkpoint: test error, per-class accuracy, confusion", help: """
    Usage: dsl eval FILE --weights CKPT [--data DIR] [--dataset NAME] [--labels fine|coarse]
                         [--batch N] [--tta 0|1|2] [--threads T] [--format table|json]

    Loads the checkpoint written by 'dsl train' (refusing one with a damaged field, or one of
    a different network, naming the layers and tensors that differ; a spec that differs only
    in dropout is accepted with a note, since dropout does nothing at evaluation), applies the
    preprocessing stored in it, and evaluates on the test set of DIR: loss, error, accuracy,
    per-class accuracy and the confusion matrix (rows: true class, columns: predicted). The
    loss is the mean softmax cross-entropy computed from the logits (log-softmax), as in
    training.

    Options:
      --weights CKPT        checkpoint to evaluate (required)
      --data DIR            dataset directory (default: the one the checkpoint was trained on)
      --dataset NAME        cifar10, cifar100 or mnist (default: detected from the files)
      --labels fine|coarse  CIFAR-100 labels (default: the checkpoint's, else fine)
      --batch N             images per forward pass (default 100)
      --tta L               test-time augmentation: 0 none (default), 1 mirror (the mean
                            of the logits of the image and its mirror), 2 airbench's (half
                            level 1, half the mean of level 1 on the image shifted by
                            -1,-1 and +1,+1 px out of a reflect-padded copy). The logits
                            averaged are the inputs of the final softmax; loss, accuracy,
                            per-class accuracy and confusion are those of the averaged
                            logits, and a line (json: no_tta_loss, no_tta_accuracy) gives
                            the plain evaluation
      --threads T           worker threads (default: all cores)
      --format table|json   output format (default table)

    The test set must have exactly as many classes as the network has outputs, and images of
    the network's input size; anything else is refused with an error (exit 1).

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--weights", "--data", "--dataset", "--labels", "--batch", "--threads", "--format", "--tta"], flagOptions: [])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        guard let weights = a.value("--weights") else { throw UsageError(message: "missing --weights CKPT") }
        let batch = try a.integer("--batch", default: 100, in: 1...4096)
        let tta = try a.integer("--tta", default: 0, in: 0...2)
        let format = a.value("--format") ?? "table"
        guard format == "table" || format == "json" else { throw UsageError(message: "--format must be table or json") }
        let datasetFormat = try a.datasetFormat()
        let labelsFlag = try a.cifar100Labels()
        engineThreadCount = try a.integer("--threads", default: ProcessInfoCores.count, in: 1...256)
        guard let (checked, g, _) = try loadChecked(a.positional[0]) else { return ExitCode.failure }
        if !endsInSoftmax(g) {
            reportEngineError("evaluation needs a network that ends in 'softmax' (it reports class probabilities and their cross-entropy); "
                              + "this one ends in '\(g.nodes[g.output].name)'", node: g.output, checked: checked, graph: g)
            return ExitCode.failure
        }
        let checkpoint = try TrainingCheckpoint.read(from: weights)
        for note in try Trainer.checkCheckpoint(checkpoint, graph: g, file: weights, use: .evaluate) { err("note: \(note)\n") }
        let classes = try Trainer.classes(of: g)
        guard let dataDir = a.value("--data") ?? checkpoint.recipe?.dataDirectory else {
            throw UsageError(message: "missing --data DIR (the checkpoint does not name the data it was trained on)")
        }
        let labels = labelsFlag ?? checkpoint.recipe?.labels ?? .fine
        let chosenFormat = try datasetFormat ?? detectDatasetFormat(directory: dataDir)
        let ds = try loadDataset(directory: dataDir, format: chosenFormat, labels: labels)
        var test = ds.test
        guard test.classes == classes else {
            var hint = ""
            if chosenFormat == .cifar100 { hint = classes == 20 ? " (CIFAR-100's coarse labels have 20: --labels coarse)" : classes == 100 ? " (--labels fine)" : "" }
            throw CommandFailure(message: "\(dataDir): the \(chosenFormat.rawValue)\(chosenFormat == .cifar100 ? " (\(labels.rawValue) labels)" : "") test set has \(test.classes) classes but the network outputs \(classes)\(hint); evaluate on a dataset with \(classes) classes")
        }
        try Trainer.checkClassifier(g, fits: test, role: "test set of \(dataDir)")
        if let pre = checkpoint.preprocessor {
            let s = g.inputShape
            guard pre.height == s.height, pre.width == s.width, pre.channels == s.channels else {
                throw CommandFailure(message: "\(weights): metadata 'preprocess.shape' is \(pre.height),\(pre.width),\(pre.channels) but the network's input is \(s)")
            }
            try pre.apply(to: &test)
        } else {
            err("warning: \(weights): no preprocessing stored (no 'preprocess.method'); evaluating raw pixel values\n")
        }
        guard let lowered = try lowerAndCompile(checked, graph: g, batch: batch, seed: 0, training: false) else { return ExitCode.failure }
        try Trainer.loadWeights(checkpoint.parameters, into: lowered.engine, file: weights)
        let plain = try Trainer.evaluate(engine: lowered.engine, data: test, batch: batch)
        var e = plain
        if tta > 0 {
            let t = try Trainer.evaluate(engine: lowered.engine, data: test, batch: batch, tta: tta)
            e = Evaluation(loss: t.loss, accuracy: t.accuracy, confusion: t.confusion)
        }
        if format == "json" {
            let ttaFields: [(String, JSON)] = tta > 0 ? [("tta", .int(tta)), ("no_tta_loss", .double(plain.loss)), ("no_tta_accuracy", .double(plain.accuracy))] : []
            out(JSON.object([("network", .string(g.name)), ("images", .int(test.count)), ("loss", .double(e.loss)), ("accuracy", .double(e.accuracy)), ("error", .double(1 - e.accuracy))] + ttaFields + [

                             ("per_class_accuracy", .array(e.perClassAccuracy.map { $0.isFinite ? .double($0) : .null })),
                             ("classes", .array(test.classNames.map { .string($0) })),
                             ("confusion", .array(e.confusion.map { .array($0.map { .int($0) }) }))]).render() + "\n")
            return ExitCode.ok
        }
        out("\(g.name) on \(test.count) test images\(tta > 0 ? " with --tta \(tta)" : ""): loss \(ProgressFormat.loss(e.loss)), "
            + String(format: "accuracy %.2f%%, error %.2f%%\n", e.accuracy * 100, (1 - e.accuracy) * 100))
        if tta > 0 { out("without test-time augmentation: loss \(ProgressFormat.loss(plain.loss)), " + String(format: "accuracy %.2f%%\n", plain.accuracy * 100)) }
        out("\n")
        let names = test.classNames.map { String($0.prefix(10)) }
        let nameWidth = max(5, names.map(\.count).max() ?? 5)
        out("per-class accuracy:\n")
        for (i, acc) in e.perClassAccuracy.enumerated() {
            out("  " + names[i].padding(toLength: nameWidth, withPad: " ", startingAt: 0) + (acc.isFinite ? String(format: " %6.2f%%", acc * 100) : "    n/a") + "\n")
        }
        if test.classes <= 20 {
            out("\nconfusion matrix (rows: true class, columns: predicted):\n")
            let cw = max(5, String(e.confusion.flatMap { $0 }.max() ?? 0).count + 1)
            out(String(repeating: " ", count: nameWidth + 2) + (0..<test.classes).map { String($0).leftPad(cw) }.joined() + "\n")
            for (i, row) in e.confusion.enumerated() {
                out("  " + names[i].padding(toLength: nameWidth, withPad: " ", startingAt: 0) + row.map { String($0).leftPad(cw) }.joined() + "\n")
            }
        }
        return ExitCode.ok
    }
}

extension String {
    func leftPad(_ n: Int) -> String { String(repeating: " ", count: max(0, n - count)) + self }
}
