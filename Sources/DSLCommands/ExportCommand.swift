import DSLExport
import DSLIR
import DSLSyntax
import DSLTraining
import Foundation

/// `dsl export FILE --to TARGET`: the checked network in another framework's format.
enum ExportCommand {
    static let command = Command(name: "export", summary: "export a network to PyTorch (module, torchrun training script) or ONNX", help: """
    Usage: dsl export FILE --to TARGET [-o OUT] [--weights CKPT] [--seed S]

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
                      --batch is the global batch over all processes (--batch 64 on 2
                      processes: 32 images each, the same steps as 'dsl train --batch 64').
                      It writes dsl checkpoints and dsl's metrics.jsonl lines. The network must
                      end in softmax.
      onnx            an ONNX model (opset 17, IR 8) holding the weights: input 'input' float32
                      (N, C, H, W) with a dynamic batch N, output 'output' (N, C) for a
                      classifier (else (N, C, H, W)), initializers named as 'dsl check' names
                      the layers. It computes the network on preprocessed inputs (the
                      checkpoint's standardisation or ZCA is not part of it). Binary: needs -o.

    Options:
      --to TARGET     what to write (required): pytorch, pytorch-train or onnx
      -o OUT          output file, written atomically (a temporary file next to OUT, then
                      renamed, so a failed export leaves nothing behind); '-' or no -o:
                      standard output (onnx: only with an explicit '-o -')
      --weights CKPT  a checkpoint of this network (refused when it is another network's or
                      damaged). pytorch, pytorch-train: recorded as the default weights
                      (WEIGHTS, which load_dsl_checkpoint(model) reads, and the training
                      script's --init). onnx: the weights the model holds
      --seed S        onnx without --weights: the model holds the initial weights of
                      'dsl train --seed S' (default 1), untrained, with a warning

    Exit codes: 0 written, 1 errors in the spec or the checkpoint, or OUT cannot be written,
    2 usage (an unknown --to among them).

    """, run: run)

    /// The formats `--to` accepts, in the order the help lists them.
    enum Target: String, CaseIterable {
        case pytorch
        case pytorchTrain = "pytorch-train"
        case onnx
    }

    static func run(_ args: [String]) throws -> Int32 {
        let a = try Arguments(args, valueOptions: ["--to", "-o", "--weights", "--seed"], flagOptions: [])
        guard a.positional.count == 1 else { throw UsageError(message: a.positional.isEmpty ? "missing spec file" : "expected one spec file") }
        let known = Target.allCases.map(\.rawValue).joined(separator: ", ")
        guard let name = a.value("--to") else { throw UsageError(message: "missing --to TARGET (\(known))") }
        guard let target = Target(rawValue: name) else {
            let near = Target.allCases.map(\.rawValue).min { Arguments.distance($0, name) < Arguments.distance($1, name) }
            let hint = near.map { Arguments.distance($0, name) <= 3 ? "; did you mean '\($0)'?" : "" } ?? ""
            throw UsageError(message: "unknown --to '\(name)'\(hint) (known: \(known))")
        }
        let output = a.value("-o")
        if target == .onnx && output == nil {
            throw UsageError(message: "--to onnx writes a binary file: give -o FILE (or '-o -' for standard output)")
        }
        if a.value("--seed") != nil && (target != .onnx || a.value("--weights") != nil) {
            throw UsageError(message: "--seed applies only to --to onnx without --weights (the initial weights the model holds)")
        }
        let seed = UInt64(try a.integer("--seed", default: 1, in: 0...Int.max))
        let path = a.positional[0]
        guard let (checked, g, _) = try loadChecked(path) else { return ExitCode.failure }

        var checkpoint: TrainingCheckpoint?
        var weightsPath: String?
        if let weights = a.value("--weights") {
            let read = try TrainingCheckpoint.read(from: weights)
            for note in try Trainer.checkCheckpoint(read, graph: g, file: weights, use: .evaluate) { err("note: \(note)\n") }
            checkpoint = read
            weightsPath = URL(fileURLWithPath: weights).standardizedFileURL.path
        }

        let bytes: [UInt8]
        switch target {
        case .pytorch:
            bytes = Array(try PyTorchExport.module(g, source: path, weights: weightsPath).utf8)
        case .pytorchTrain:
            if !endsInSoftmax(g) {
                reportEngineError("training needs a network that ends in 'softmax' (the loss is softmax cross-entropy); "
                                  + "this one ends in '\(g.nodes[g.output].name)'", node: g.output, checked: checked, graph: g)
                return ExitCode.failure
            }
            bytes = Array(try PyTorchExport.trainingScript(g, source: path, weights: weightsPath).utf8)
        case .onnx:
            let weights: (parameters: [String: [Float]], buffers: [String: [Float]])
            if let checkpoint, let file = a.value("--weights") {
                weights = try ONNXExport.weights(of: checkpoint, for: g, file: file)
            } else {
                err("warning: no --weights: the ONNX model holds the initial weights of 'dsl train --seed \(seed)' (untrained)\n")
                weights = try ONNXExport.initialWeights(of: g, seed: seed)
            }
            bytes = try ONNXExport.model(g, parameters: weights.parameters, buffers: weights.buffers, producerVersion: dslVersion)
        }
        if let output, output != "-" {
            try SourceFile.writeAtomically(bytes, to: output)
        } else {
            FileHandle.standardOutput.write(Data(bytes))
        }
        return ExitCode.ok
    }
}
