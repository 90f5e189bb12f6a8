import DSLExport
import DSLIR
import DSLSyntax
import DSLTraining
import Foundation

/// `dsl export FILE --to TARGET`: the checked network in another framework's format.
enum ExportCommand {
    static let command = Command(name: "export", summary: "export a network to PyTorch (module, torchrun training script)", help: """
    Usage: dsl export FILE --to TARGET [-o OUT] [--weights CKPT]

    Writes the checked network in another framework's format, generated from the IR that
    'dsl check' prints, so every layer computes what dsl's engine computes. Targets:

      pytorch         readable Python: one nn.Module (input NCHW, output the logits before the
                      final softmax), dsl_loss and dsl_predict, and the functions that load a
                      dsl checkpoint into it and save it back in dsl's format (for 'dsl eval'
                      and every other dsl command); DSL_NAMES maps each state_dict key to dsl's
                      parameter name. Needs torch (and safetensors for checkpoints).
      pytorch-train   the same module followed by a training script with 'dsl train''s flags and
                      recipe, run on one or more processes with DistributedDataParallel:
                        torchrun --nproc_per_node=2 train.py --data DIR [dsl train's flags]
                      It writes dsl checkpoints and dsl's metrics.jsonl lines. The network must
                      end in softmax.

    Options:
      --to TARGET     what to write (required): pytorch or pytorch-train
      -o OUT          output file, written atomically (a temporary file next to OUT, then
                      renamed); '-' or no -o: standard output
      --weights CKPT  a checkpoint of this network (refused when it is another network's or
                      damaged), recorded in the output as its default weights: WEIGHTS, which
                      load_dsl_checkpoint(model) reads, and the training script's --init

    Exit codes: 0 written, 1 errors in the spec or the checkpoint, or OUT cannot be written,
    2 usage (an unknown --to among them).

    """, run: run)

    /// The formats `--to` accepts, in the order the help lists them.
    enum Target: String, CaseIterable {
        case pytorch
        case pytorchTrain = "pytorch-train"
    }

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--to", "-o", "--weights"], flagOptions: [])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        let known = Target.allCases.map(\.rawValue).joined(separator: ", ")
        guard let name = a.value("--to") else { throw UsageError(message: "missing --to TARGET (\(known))") }
        guard let target = Target(rawValue: name) else {
            let near = Target.allCases.map(\.rawValue).min { Arguments.distance($0, name) < Arguments.distance($1, name) }
            let hint = near.map { Arguments.distance($0, name) <= 3 ? "; did you mean '\($0)'?" : "" } ?? ""
            throw UsageError(message: "unknown --to '\(name)'\(hint) (known: \(known))")
        }
        var output = a.value("-o")
        if output == "-" { output = nil }
        let path = a.positional[0]
        guard let (checked, g, _) = try loadChecked(path) else { return ExitCode.failure }

        var weightsPath: String?
        if let weights = a.value("--weights") {
            let checkpoint = try TrainingCheckpoint.read(from: weights)
            try Trainer.checkSpec(checkpoint.metadata, hash: Trainer.hash(g), file: weights)
            weightsPath = URL(fileURLWithPath: weights).standardizedFileURL.path
        }

        let text: String
        switch target {
        case .pytorch:
            text = PyTorchExport.module(g, source: path, weights: weightsPath)
        case .pytorchTrain:
            if !endsInSoftmax(g) {
                reportEngineError("training needs a network that ends in 'softmax' (the loss is softmax cross-entropy); "
                                  + "this one ends in '\(g.nodes[g.output].name)'", node: g.output, checked: checked, graph: g)
                return ExitCode.failure
            }
            text = try PyTorchExport.trainingScript(g, source: path, weights: weightsPath)
        }
        if let output {
            try SourceFile.writeAtomically(Array(text.utf8), to: output)
        } else {
            out(text)
        }
        return ExitCode.ok
    }
}
