import Foundation
import XCTest

/// `dsl export` with the real binary: output to standard output or a file (atomically), help,
/// and bad input: a spec with errors, an unknown or missing --to, an unwritable -o, a
/// checkpoint of another network, a training script for a network without a loss.
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
        for text in ["Usage: dsl export FILE --to TARGET", "pytorch ", "pytorch-train", "torchrun --nproc_per_node=2", "--weights CKPT"] {
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
        XCTAssertTrue(unknown.stderr.contains("unknown --to 'pytorh'; did you mean 'pytorch'? (known: pytorch, pytorch-train)"), unknown.stderr)
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
}
