import DSLEngine
import DSLIR
import DSLTraining
import Foundation

/// `dsl eval FILE --weights CKPT --data DIR`: test error, per-class accuracy, confusion matrix.
enum EvalCommand {
    static let command = Command(name: "eval", summary: "evaluate a checkpoint: test error, per-class accuracy, confusion", help: """
    Usage: dsl eval FILE --weights CKPT --data DIR [--dataset NAME] [--labels fine|coarse]
                         [--batch N] [--threads T] [--format table|json]

    Loads the checkpoint written by 'dsl train' (refusing one of a different spec), applies the
    preprocessing stored in it, and evaluates on the test set of DIR: loss, error, accuracy,
    per-class accuracy and the confusion matrix (rows: true class, columns: predicted).

    """, run: run)

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--weights", "--data", "--dataset", "--labels", "--batch", "--threads", "--format"], flagOptions: [])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        guard let weights = a.value("--weights") else { throw UsageError(message: "missing --weights CKPT") }
        guard let dataDir = a.value("--data") else { throw UsageError(message: "missing --data DIR") }
        let batch = try a.integer("--batch", default: 100, in: 1...4096)
        let format = a.value("--format") ?? "table"
        guard format == "table" || format == "json" else { throw UsageError(message: "--format must be table or json") }
        engineThreadCount = try a.integer("--threads", default: ProcessInfoCores.count, in: 1...256)
        guard let (_, g, _) = try loadChecked(a.positional[0]) else { return ExitCode.failure }
        let checkpoint = try TrainingCheckpoint.read(from: weights)
        try Trainer.checkSpec(checkpoint.metadata, hash: Trainer.hash(g), file: weights)
        let ds = try loadDataset(directory: dataDir, format: try a.value("--dataset").map { try DatasetFormat(parsing: $0) },
                                 labels: try a.value("--labels").map { try CIFAR100Labels(parsing: $0) } ?? .fine)
        var test = ds.test
        if let pre = checkpoint.preprocessor { try pre.apply(to: &test) }
        let lowered = try lower(g, maxBatch: batch, seed: 0)
        lowered.engine.compile(training: false)
        try Trainer.loadWeights(checkpoint.parameters, into: lowered.engine, file: weights)
        let e = Trainer.evaluate(engine: lowered.engine, data: test, batch: batch)
        if format == "json" {
            out(JSON.object([("network", .string(g.name)), ("images", .int(test.count)), ("loss", .double(e.loss)), ("accuracy", .double(e.accuracy)), ("error", .double(1 - e.accuracy)),
                             ("per_class_accuracy", .array(e.perClassAccuracy.map { $0.isFinite ? .double($0) : .null })),
                             ("classes", .array(test.classNames.map { .string($0) })),
                             ("confusion", .array(e.confusion.map { .array($0.map { .int($0) }) }))]).render() + "\n")
            return ExitCode.ok
        }
        out(String(format: "%@ on %d test images: loss %.4f, accuracy %.2f%%, error %.2f%%\n\n", g.name, test.count, e.loss, e.accuracy * 100, (1 - e.accuracy) * 100))
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
