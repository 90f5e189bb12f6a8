import Foundation
import XCTest

/// `dsl run`, `bench` and `train` on specs the checker accepts but the engine used to crash on
/// or refuse (issue #11): every valid spec runs, engine errors are located like spec errors,
/// and a batch that does not fit in memory is refused with the largest one that does.
final class EngineRobustnessTests: XCTestCase {
    /// Runs `dsl` with extra environment variables (`DSL.run` passes none).
    private func run(_ arguments: [String], environment: [String: String]) throws -> DSLRun {
        let binary = try XCTUnwrap(DSL.binary)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-env-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let outURL = tmp.appendingPathComponent("out"), errURL = tmp.appendingPathComponent("err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        p.currentDirectoryURL = DSL.packageRoot
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        p.standardOutput = try FileHandle(forWritingTo: outURL)
        p.standardError = try FileHandle(forWritingTo: errURL)
        p.standardInput = FileHandle.nullDevice
        let start = Date()
        try p.run()
        p.waitUntilExit()
        return DSLRun(status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal, timedOut: false,
                      stdout: String(decoding: try Data(contentsOf: outURL), as: UTF8.self),
                      stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self),
                      seconds: Date().timeIntervalSince(start))
    }

    private func spec(_ text: String) throws -> String { try DSL.temporaryFile("spec.dsl", Data(text.utf8)) }

    /// `input 8x8x3` / `conv 3 1 50` segfaulted in the direct kernel's streaming stores (few
    /// input channels, ≥ 48 filters not a multiple of 16); so did its neighbours.
    func testFewInputChannelsAndOddFilterCountsRun() throws {
        for (channels, filters) in [(3, 50), (3, 49), (1, 63), (5, 97), (2, 100)] {
            let path = try spec("input 8x8x\(channels)\nconv 3 1 \(filters)\n")
            let r = try DSL.run(["run", path, "--batch", "3"])
            XCTAssertFalse(r.signaled, "\(channels) -> \(filters) crashed: \(r.summary)")
            XCTAssertEqual(r.status, 0, r.summary)
            XCTAssertTrue(r.stdout.contains("output 3x8x8x\(filters)"), r.stdout)
            let withLoss = try spec("input 8x8x\(channels)\nconv 3 1 \(filters)\ngap\nsoftmax\n")
            let b = try DSL.run(["run", withLoss, "--batch", "3", "--backward"])
            XCTAssertEqual(b.status, 0, b.summary)
            XCTAssertTrue(b.stdout.contains("loss "), b.stdout)
        }
    }

    /// The same first layer trains (it crashed `dsl train` too).
    func testTrainingAFirstLayerOfFiftyFilters() throws {
        let path = try spec("network first50\ninput 32x32x3\nconv 3 1 50\nconv 1 1 10\ngap\nsoftmax\n")
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-first50-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try DSL.run(["train", path, "--data", "data/cifar10-sample", "--epochs", "1", "--batch", "16",
                             "--train-limit", "64", "--test-limit", "32", "--out", out, "--quiet"], timeout: 300)
        XCTAssertFalse(r.signaled, r.summary)
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertTrue(r.stdout.contains("epoch 1/1"), r.stdout)
    }

    /// What `dsl check` accepts, `dsl run --backward` runs: ceil-mode pooling windows that
    /// overhang a 1×1 input, pyramid shortcuts on 1×1 maps, a softmax before the last layer, and
    /// a final softmax over a map (probabilities sum to 1 at every pixel).
    func testEverythingTheCheckerAcceptsRuns() throws {
        let cases: [(text: String, output: String, sum: String)] = [
            ("input 1x1x4\npool max 2 2 ceil\npool avg 2 2 ceil\nsoftmax\n", "output 2x1x1x4", "sum 2.000000"),
            ("input 2x2x16\npyramid 1.5 1\ngap\nfc 10\nsoftmax\n", "output 2x1x1x10", "sum 2.000000"),
            ("input 4x4x3\nconv 1 1 5\nsoftmax\nconv 1 1 4\ngap\nsoftmax\n", "output 2x1x1x4", "sum 2.000000"),
            ("input 4x3x3\nconv 3 1 5\nsoftmax\n", "output 2x4x3x5", "sum 24.000000"),
        ]
        for c in cases {
            let path = try spec(c.text)
            let check = try DSL.run(["check", path])
            XCTAssertEqual(check.status, 0, "\(c.text): \(check.summary)")
            let r = try DSL.run(["run", path, "--backward"])
            XCTAssertFalse(r.signaled, r.summary)
            XCTAssertEqual(r.status, 0, "\(c.text): \(r.summary)")
            XCTAssertTrue(r.stdout.contains(c.output), "\(c.text): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains("output checksum: \(c.sum)"), "\(c.text): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains("loss "), "\(c.text): \(r.stdout)")
        }
    }

    /// `--backward` on a network without a final softmax is an error at the last layer, printed
    /// like a spec error (inside a block: with a note at the call).
    func testBackwardWithoutSoftmaxIsALocatedError() throws {
        let text = "network plain\ninput 8x8x3\nblock b(c) {\n  conv 3 1 c\n}\nb(4)\n"
        let path = try spec(text)
        let r = try DSL.run(["run", path, "--backward"])
        XCTAssertEqual(r.status, 1, r.summary)
        let printed = printedDiagnostics(r.stderr, path: path)
        let error = try XCTUnwrap(printed.first { $0.severity == "error" }, r.stderr)
        XCTAssertEqual(error.line, 4)
        XCTAssertEqual(error.column, 3)
        XCTAssertTrue(error.message.contains("ends in 'softmax'"), error.message)
        assertSnippet(error, sourceLines: text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init))
        XCTAssertTrue(printed.contains { $0.severity == "note" && $0.line == 6 }, r.stderr)
        XCTAssertTrue(r.stderr.contains("1 error in \(path)"), r.stderr)
    }

    /// A batch whose plan exceeds the memory the machine can give is refused before anything is
    /// allocated, with both figures and the largest batch that fits, which then runs. The
    /// available memory is faked (DSL_AVAILABLE_MEMORY), so the test does not depend on the machine.
    func testBatchTooLargeForMemoryIsRefusedWithOneThatFits() throws {
        let limit = ["DSL_AVAILABLE_MEMORY": "192M"]
        let r = try run(["run", "specs/all-cnn-c.dsl", "--batch", "4096", "--backward"], environment: limit)
        XCTAssertFalse(r.signaled, r.summary)
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("specs/all-cnn-c.dsl: the network needs"), r.stderr)
        XCTAssertTrue(r.stderr.contains("for training at batch 4096, but this machine can give 192.0 MiB"), r.stderr)
        let suggestion = try XCTUnwrap(r.stderr.range(of: #"--batch (\d+)\)"#, options: .regularExpression), r.stderr)
        let batch = String(r.stderr[suggestion].dropFirst(8).dropLast())
        XCTAssertNotNil(Int(batch), r.stderr)
        let ok = try run(["run", "specs/all-cnn-c.dsl", "--batch", batch, "--backward"], environment: limit)
        XCTAssertEqual(ok.status, 0, ok.summary)
        // GoogLeNet at batch 4096 (130 GiB): refused at once.
        let g = try run(["bench", "specs/googlenet.dsl", "--batch", "4096"], environment: ["DSL_AVAILABLE_MEMORY": "4G"])
        XCTAssertEqual(g.status, 1, g.summary)
        XCTAssertTrue(g.stderr.contains("GiB for training at batch 4096, but this machine can give 4.00 GiB"), g.stderr)
        XCTAssertTrue(g.stderr.contains("the largest batch that fits is"), g.stderr)
    }

    /// `dsl train` plans the engine's memory too: a batch that does not fit is refused with the
    /// figures and a batch that fits, before any step runs (it aborted with exit 134).
    func testTrainRefusesABatchThatDoesNotFit() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-train-mem-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try run(["train", "specs/all-cnn-c.dsl", "--data", "data/cifar10-sample", "--batch", "1000", "--epochs", "1", "--out", out],
                        environment: ["DSL_AVAILABLE_MEMORY": "192M"])
        XCTAssertFalse(r.signaled, r.summary)
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("specs/all-cnn-c.dsl: the network needs"), r.stderr)
        XCTAssertTrue(r.stderr.contains("for training at batch 1000, but this machine can give 192.0 MiB"), r.stderr)
        XCTAssertNotNil(r.stderr.range(of: #"\(--batch \d+\)"#, options: .regularExpression), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/checkpoint.safetensors"))
    }

    /// Training and evaluation need a final softmax (the loss): without one the error points at
    /// the last layer, like a spec error.
    func testTrainAndEvalWithoutSoftmaxAreLocated() throws {
        let path = try spec("input 32x32x3\nconv 3 2 8\ngap\nfc 10\n")
        let t = try run(["train", path, "--data", "data/cifar10-sample", "--epochs", "1", "--out", path + ".run"], environment: [:])
        XCTAssertEqual(t.status, 1, t.summary)
        XCTAssertTrue(t.stderr.contains("\(path):4:1: error: training needs a network that ends in 'softmax'"), t.stderr)
        XCTAssertTrue(t.stderr.contains("4 | fc 10"), t.stderr)
        let e = try run(["eval", path, "--weights", path, "--data", "data/cifar10-sample"], environment: [:])
        XCTAssertEqual(e.status, 1, e.summary)
        XCTAssertTrue(e.stderr.contains("\(path):4:1: error: evaluation needs a network that ends in 'softmax'"), e.stderr)
    }

    /// A softmax over a map larger than 1x1 scores every pixel; it trains like any classifier.
    func testTrainingASoftmaxOverAMapRuns() throws {
        let path = try spec("input 32x32x3\nconv 3 2 8\nconv 1 1 10\nsoftmax\n")
        let out = path + ".run"
        let t = try run(["train", path, "--data", "data/cifar10-sample", "--epochs", "1", "--train-limit", "64", "--test-limit", "32",
                         "--batch", "32", "--out", out, "--quiet"], environment: [:])
        XCTAssertEqual(t.status, 0, t.summary)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/checkpoint.safetensors"))
        let e = try run(["eval", path, "--weights", out + "/checkpoint.safetensors"], environment: [:])
        XCTAssertEqual(e.status, 0, e.summary)
        XCTAssertTrue(e.stdout.contains("on 500 test images"), e.stdout)
    }
}
