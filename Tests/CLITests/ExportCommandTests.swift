import Foundation
import XCTest

/// `dsl export` with the real binary: output to standard output or a file (atomically), help,
/// and bad input: a spec with errors, an unknown or missing --to, an unwritable -o, a
/// checkpoint of another network, a training script for a network without a loss; the same
/// for `--to onnx` (whose output ExportTests' ONNXCommandTests check with onnx's full checker).
final class ExportCommandTests: XCTestCase {
    func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-export-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testHelpListsTheTargets() throws {
        let r = try DSL.run(["export", "--help"])
        XCTAssertEqual(r.status, 0, r.summary)
        for text in ["Usage: dsl export FILE --to TARGET", "pytorch ", "pytorch-train", "torchrun --nproc_per_node=2", "--weights CKPT",
                     "  onnx  ", "opset 17", "--seed S", "--batch is the global batch"] {
            XCTAssertTrue(r.stdout.contains(text), text)
        }
        let top = try DSL.run(["--help"])
        XCTAssertTrue(top.stdout.contains("  export    "), top.stdout)
    }

    func testModuleToStandardOutputAndFile() throws {
        let dir = try temporaryDirectory()
        let stdout = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorch"])
        XCTAssertEqual(stdout.status, 0, stdout.summary)
        XCTAssertTrue(stdout.stdout.contains("class CifarFast(nn.Module):"))
        XCTAssertTrue(stdout.stdout.contains("    (\"conv1.bn.running_var\", \"conv1.bn.running_var\", \"vector\", \"buffer\", (32,)),"))
        XCTAssertTrue(stdout.stdout.contains("PARAMETERS = 288746"))
        XCTAssertTrue(stdout.stdout.contains("WEIGHTS = None"))
        let dash = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorch", "-o", "-"])
        XCTAssertEqual(dash.stdout, stdout.stdout)

        // -o replaces an existing file atomically: no temporary file is left, the mode is kept.
        let path = dir + "/model.py"
        try Data("old".utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o640)
        let file = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorch", "-o", path])
        XCTAssertEqual(file.status, 0, file.summary)
        XCTAssertEqual(file.stdout, "")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), stdout.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["model.py"])
        XCTAssertEqual((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int), 0o640)

        let train = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorch-train", "-o", dir + "/train.py"])
        XCTAssertEqual(train.status, 0, train.summary)
        let script = try String(contentsOfFile: dir + "/train.py", encoding: .utf8)
        XCTAssertTrue(script.hasPrefix("# cifar-fast: PyTorch training script exported by dsl from specs/cifar-fast.dsl."))
        XCTAssertTrue(script.contains(stdout.stdout.components(separatedBy: "\n").dropFirst(2).prefix(400).joined(separator: "\n")),
                      "the training script embeds the module")
        XCTAssertTrue(script.contains("class DSLOrderSampler(torch.utils.data.distributed.DistributedSampler):"))
    }

    func testSpecWithErrors() throws {
        let dir = try temporaryDirectory()
        let spec = dir + "/broken.dsl"
        try Data("input 32x32x3\nconv 3 1 96 pad=valud\ngap\n".utf8).write(to: URL(fileURLWithPath: spec))
        let r = try DSL.run(["export", spec, "--to", "pytorch", "-o", dir + "/model.py"])
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("\(spec):2:17: error: unknown padding 'valud'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("1 error in \(spec)"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/model.py"))
        let missing = try DSL.run(["export", dir + "/nothing.dsl", "--to", "pytorch"])
        XCTAssertEqual(missing.status, 1, missing.summary)
        XCTAssertTrue(missing.stderr.contains("nothing.dsl"), missing.stderr)
    }

    func testUsageErrors() throws {
        let unknown = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorh"])
        XCTAssertEqual(unknown.status, 2, unknown.summary)
        XCTAssertTrue(unknown.stderr.contains("unknown --to 'pytorh'; did you mean 'pytorch'? (known: pytorch, pytorch-train, onnx)"), unknown.stderr)
        XCTAssertEqual(unknown.stdout, "")
        let none = try DSL.run(["export", "specs/cifar-fast.dsl"])
        XCTAssertEqual(none.status, 2, none.summary)
        XCTAssertTrue(none.stderr.contains("missing --to TARGET"), none.stderr)
        let noFile = try DSL.run(["export", "--to", "pytorch"])
        XCTAssertEqual(noFile.status, 2, noFile.summary)
        let option = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorch", "--wieghts", "x"])
        XCTAssertEqual(option.status, 2, option.summary)
        XCTAssertTrue(option.stderr.contains("did you mean --weights?"), option.stderr)
    }

    func testUnwritableOutput() throws {
        let dir = try temporaryDirectory()
        for target in [dir + "/no/such/dir/model.py", dir] {
            let r = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorch", "-o", target])
            XCTAssertEqual(r.status, 1, r.summary)
            XCTAssertTrue(r.stderr.hasPrefix("dsl export: \(target): "), r.stderr)
            XCTAssertFalse(r.signaled)
        }
        let readOnly = dir + "/locked"
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        chmod(readOnly, 0o500)
        defer { chmod(readOnly, 0o700) }
        if access(readOnly, W_OK) != 0 {  // (root may write anyway)
            let r = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorch", "-o", readOnly + "/model.py"])
            XCTAssertEqual(r.status, 1, r.summary)
            XCTAssertTrue(r.stderr.contains("cannot write file"), r.stderr)
        }
    }

    func testWeightsOfAnotherNetworkAreRefused() throws {
        let dir = try temporaryDirectory()
        let train = try DSL.run(["train", "specs/cifar-fast.dsl", "--data", "data/cifar10-sample", "--train-limit", "16", "--test-limit", "16",
                                 "--batch", "16", "--epochs", "1", "--out", dir + "/run", "--quiet"])
        XCTAssertEqual(train.status, 0, train.summary)
        let checkpoint = dir + "/run/checkpoint.safetensors"
        let other = try DSL.run(["export", "specs/quickstart.dsl", "--to", "pytorch", "--weights", checkpoint, "-o", dir + "/model.py"])
        XCTAssertEqual(other.status, 1, other.summary)
        XCTAssertTrue(other.stderr.contains("\(checkpoint): the checkpoint is of a different network (cifar-fast"), other.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/model.py"))
        let damaged = dir + "/damaged.safetensors"
        try Data("not a checkpoint".utf8).write(to: URL(fileURLWithPath: damaged))
        let bad = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorch", "--weights", damaged])
        XCTAssertEqual(bad.status, 1, bad.summary)
        XCTAssertTrue(bad.stderr.contains(damaged), bad.stderr)
        // Its own checkpoint is recorded as the default weights, as an absolute path.
        let own = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "pytorch-train", "--weights", checkpoint])
        XCTAssertEqual(own.status, 0, own.summary)
        XCTAssertTrue(own.stdout.contains("WEIGHTS = \"\(URL(fileURLWithPath: checkpoint).standardizedFileURL.path)\""), own.stdout.prefix(3000).description)
    }

    func testTrainingScriptNeedsALoss() throws {
        let r = try DSL.run(["export", "specs/inception-3a.dsl", "--to", "pytorch-train"])
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("specs/inception-3a.dsl:"), r.stderr)
        XCTAssertTrue(r.stderr.contains("error: training needs a network that ends in 'softmax'"), r.stderr)
        XCTAssertEqual(r.stdout, "")
        let module = try DSL.run(["export", "specs/inception-3a.dsl", "--to", "pytorch"])
        XCTAssertEqual(module.status, 0, module.summary)
        XCTAssertTrue(module.stdout.contains("ENDS_IN_SOFTMAX = False"))
    }

    // MARK: --to onnx

    /// A checkpoint of specs/cifar-fast.dsl (one short epoch on 16 sample images).
    func cifarFastCheckpoint(_ dir: String) throws -> String {
        let train = try DSL.run(["train", "specs/cifar-fast.dsl", "--data", "data/cifar10-sample", "--train-limit", "16", "--test-limit", "16",
                                 "--batch", "16", "--epochs", "1", "--out", dir + "/run", "--quiet"])
        XCTAssertEqual(train.status, 0, train.summary)
        return dir + "/run/checkpoint.safetensors"
    }

    func testONNXWithAndWithoutWeights() throws {
        let dir = try temporaryDirectory()
        let checkpoint = try cifarFastCheckpoint(dir)
        let trained = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "onnx", "--weights", checkpoint, "-o", dir + "/trained.onnx"])
        XCTAssertEqual(trained.status, 0, trained.summary)
        XCTAssertEqual(trained.stdout, "")
        XCTAssertEqual(trained.stderr, "", "no warning with --weights")
        let initial = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "onnx", "-o", dir + "/initial.onnx"])
        XCTAssertEqual(initial.status, 0, initial.summary)
        XCTAssertEqual(initial.stderr, "warning: no --weights: the ONNX model holds the initial weights of 'dsl train --seed 1' (untrained)\n")
        let seeded = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "onnx", "--seed", "2", "-o", dir + "/seed2.onnx"])
        XCTAssertEqual(seeded.status, 0, seeded.summary)
        XCTAssertTrue(seeded.stderr.contains("'dsl train --seed 2'"), seeded.stderr)
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/trained.onnx"))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/initial.onnx"))
        let c = try Data(contentsOf: URL(fileURLWithPath: dir + "/seed2.onnx"))
        // The same network and layout, different weights: same size, different bytes.
        XCTAssertEqual(a.count, b.count)
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(b, c)
        XCTAssertGreaterThan(a.count, 4 * 288_746, "holds every parameter as float32")
        // The producer is dsl with its version (ModelProto fields 2 and 3, near the start).
        let version = try DSL.run(["--version"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "dsl ", with: "")
        let head = String(decoding: a.prefix(64), as: UTF8.self)
        XCTAssertTrue(head.contains("dsl") && head.contains(version), head)
        // '-o -' writes the same bytes to standard output.
        let dash = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "onnx", "--weights", checkpoint, "-o", "-"])
        XCTAssertEqual(dash.status, 0, dash.summary)
        XCTAssertEqual(dash.stdout.utf8.count, String(decoding: a, as: UTF8.self).utf8.count)
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: dir)), ["run", "trained.onnx", "initial.onnx", "seed2.onnx"])
    }

    func testONNXSpecWithErrors() throws {
        let dir = try temporaryDirectory()
        let spec = dir + "/broken.dsl"
        try Data("network broken\ninput 32x32x3\nconv 3 1 16\npool max 2 2\nfc 10 act=softplus\nsoftmax\n".utf8).write(to: URL(fileURLWithPath: spec))
        let r = try DSL.run(["export", spec, "--to", "onnx", "-o", dir + "/model.onnx"])
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("\(spec):5:"), r.stderr)
        XCTAssertTrue(r.stderr.contains("error: "), r.stderr)
        XCTAssertTrue(r.stderr.hasSuffix("1 error in \(spec)\n"), r.stderr)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["broken.dsl"])
    }

    func testONNXCheckpointOfAnotherNetwork() throws {
        let dir = try temporaryDirectory()
        let checkpoint = try cifarFastCheckpoint(dir)
        let r = try DSL.run(["export", "specs/quickstart.dsl", "--to", "onnx", "--weights", checkpoint, "-o", dir + "/model.onnx"])
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.hasPrefix("dsl export: \(checkpoint): the checkpoint is of a different network (cifar-fast"), r.stderr)
        XCTAssertFalse(r.stderr.contains("warning"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/model.onnx"))
        let missing = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "onnx", "--weights", dir + "/none.safetensors", "-o", dir + "/model.onnx"])
        XCTAssertEqual(missing.status, 1, missing.summary)
        XCTAssertTrue(missing.stderr.contains(dir + "/none.safetensors"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/model.onnx"))
    }

    func testONNXUnwritableOutput() throws {
        let dir = try temporaryDirectory()
        for target in [dir + "/no/such/dir/model.onnx", dir] {
            let r = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "onnx", "-o", target])
            XCTAssertEqual(r.status, 1, r.summary)
            XCTAssertTrue(r.stderr.contains("dsl export: \(target): "), r.stderr)
            XCTAssertFalse(r.signaled)
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "nothing partial is left")
        // An existing file that cannot be replaced stays as it was.
        let readOnly = dir + "/locked"
        try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: URL(fileURLWithPath: readOnly + "/model.onnx"))
        chmod(readOnly, 0o500)
        defer { chmod(readOnly, 0o700) }
        if access(readOnly, W_OK) != 0 {  // (root may write anyway)
            let r = try DSL.run(["export", "specs/cifar-fast.dsl", "--to", "onnx", "-o", readOnly + "/model.onnx"])
            XCTAssertEqual(r.status, 1, r.summary)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: readOnly), ["model.onnx"])
            XCTAssertEqual(try String(contentsOfFile: readOnly + "/model.onnx", encoding: .utf8), "old")
        }
    }

    func testONNXUsageErrors() throws {
        let cases: [([String], String)] = [
            (["--to", "onnxx", "-o", "m.onnx"], "dsl export: unknown --to 'onnxx'; did you mean 'onnx'? (known: pytorch, pytorch-train, onnx)\n"),
            (["--to", "onnx"], "dsl export: --to onnx writes a binary file: give -o FILE (or '-o -' for standard output)\n"),
            (["--to", "pytorch", "--seed", "3"], "dsl export: --seed applies only to --to onnx without --weights (the initial weights the model holds)\n"),
            (["--to", "onnx", "-o", "m.onnx", "--seed", "x"], "dsl export: --seed"),
        ]
        for (flags, message) in cases {
            let r = try DSL.run(["export", "specs/cifar-fast.dsl"] + flags)
            XCTAssertEqual(r.status, 2, "\(flags): \(r.summary)")
            XCTAssertTrue(r.stderr.hasPrefix(message), "\(flags): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasSuffix("Run 'dsl export --help' for usage.\n"), "\(flags): \(r.stderr)")
            XCTAssertEqual(r.stdout, "")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: DSL.packageRoot.appendingPathComponent("m.onnx").path))
    }
}
