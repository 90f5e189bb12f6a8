import Foundation
import XCTest

/// `dsl run`, `dsl bench`, `dsl train` and `dsl eval` through the real binary.
final class EngineCommandTests: XCTestCase {
    var specs: [String] {
        let dir = DSL.packageRoot.appendingPathComponent("specs").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".dsl") }.sorted().map { "specs/" + $0 }
    }

    /// Every spec runs forward and backward on the engine, GoogLeNet at 224x224 and
    /// PyramidNet-164 included; the softmax outputs of a batch sum to the batch size.
    func testRunWorksForwardAndBackwardOnEverySpec() throws {
        XCTAssertGreaterThanOrEqual(specs.count, 17)
        for spec in specs {
            let hasSoftmax = (try String(contentsOfFile: DSL.packageRoot.appendingPathComponent(spec).path, encoding: .utf8)).contains("softmax")
            let r = try DSL.run(["run", spec, "--batch", "2"] + (hasSoftmax ? ["--backward"] : []), timeout: 600)
            XCTAssertEqual(r.status, 0, "\(spec): \(r.summary)")
            XCTAssertFalse(r.signaled, spec)
            XCTAssertTrue(r.stdout.contains("output 2x"), "\(spec): \(r.stdout)")
            if hasSoftmax {
                // Float sums of 2,000 probabilities may round the last printed digit (2.000001).
                let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("output checksum: sum ") }
                let sum = line.flatMap { Double($0.dropFirst("output checksum: sum ".count).prefix { $0 != "," }) }
                XCTAssertEqual(sum ?? .nan, 2, accuracy: 1e-5, "\(spec): probabilities should sum to 1 per image\n\(r.stdout)")
                let loss = r.stdout.split(separator: "\n").first { $0.hasPrefix("loss ") }
                XCTAssertNotNil(loss, "\(spec): \(r.stdout)")
            }
        }
    }

    func testRunGivesIdenticalResultsWithOneAndTwoThreads() throws {
        func checksums(_ threads: String) throws -> [Substring] {
            let r = try DSL.run(["run", "specs/all-cnn-c.dsl", "--batch", "3", "--backward", "--threads", threads])
            XCTAssertEqual(r.status, 0, r.summary)
            return r.stdout.split(separator: "\n").filter { $0.contains("checksum") }
        }
        let one = try checksums("1"), two = try checksums("2")
        XCTAssertEqual(one.count, 3)   // output, logits, gradients
        XCTAssertEqual(one, two)
    }

    /// Issue #15: the logits checksum is the output checksum of the same network without its
    /// softmax (the same seed gives the same weights and input).
    func testRunPrintsTheChecksumOfTheLogitsBeforeSoftmax() throws {
        let text = try String(contentsOfFile: DSL.packageRoot.appendingPathComponent("specs/quickstart.dsl").path, encoding: .utf8)
        XCTAssertTrue(text.contains("\nsoftmax\n"))
        let bare = try DSL.temporaryFile("quickstart.dsl", Data(text.replacingOccurrences(of: "\nsoftmax\n", with: "\n").utf8))
        let with = try DSL.run(["run", "specs/quickstart.dsl", "--batch", "3", "--seed", "5"])
        let without = try DSL.run(["run", bare, "--batch", "3", "--seed", "5"])
        XCTAssertEqual(with.status, 0, with.summary)
        XCTAssertEqual(without.status, 0, without.summary)
        func value(_ r: DSLRun, _ prefix: String) -> String? {
            r.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
        let logits = try XCTUnwrap(value(with, "logits checksum (before softmax): "), with.stdout)
        XCTAssertEqual(logits, value(without, "output checksum: "))
        XCTAssertNotEqual(logits, value(with, "output checksum: "))
        XCTAssertNil(value(without, "logits checksum"), "no softmax, no logits line")
    }

    func testBenchReportsThroughputAndLayersAsJSON() throws {
        let r = try DSL.run(["bench", "specs/quickstart.dsl", "--batch", "4", "--steps", "1", "--format", "json"])
        XCTAssertEqual(r.status, 0, r.summary)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        for key in ["train_images_per_second", "inference_images_per_second", "gflops_per_second", "peak_gflops", "layers"] {
            XCTAssertNotNil(json[key], key)
        }
        let layers = try XCTUnwrap(json["layers"] as? [[String: Any]])
        XCTAssertTrue(layers.contains { ($0["name"] as? String) == "conv1" && ($0["macs"] as? Int) == 4 * 32 * 32 * 32 * 27 }, "\(layers.prefix(3))")
        XCTAssertTrue(layers.contains { ($0["name"] as? String) == "conv1.bn" })
        // The kernel each convolution runs, and its FLOPs: forward + dW (+ dX unless it is the
        // first layer, whose input needs no gradient).
        func layer(_ name: String) throws -> [String: Any] {
            try XCTUnwrap(layers.first { ($0["name"] as? String) == name }, name)
        }
        let conv1 = try layer("conv1"), conv3 = try layer("conv3"), conv2 = try layer("conv2")
        XCTAssertEqual(conv1["kernel"] as? String, "direct (dW: gemm)")   // 3 → 32 channels
        XCTAssertEqual(conv2["kernel"] as? String, "direct (dW, dX: gemm)")  // stride 2, 32 → 64
        XCTAssertEqual(conv3["kernel"] as? String, "winograd")      // 3×3 stride 1, 64 → 64
        let macs1 = try XCTUnwrap(conv1["macs"] as? Int), macs3 = try XCTUnwrap(conv3["macs"] as? Int)
        XCTAssertEqual(conv1["flops"] as? Double, Double(2 * macs1 * 2))
        XCTAssertEqual(conv3["flops"] as? Double, Double(2 * macs3 * 3))
        XCTAssertEqual(try layer("conv1.bn")["kernel"] as? String, "")
        // Memory-bound layers in GB/s against the measured copy bandwidth: batch norm moves at
        // least its input and output forward, and dY, x̂ and dX backward (dX only written: it
        // is the first to write conv1's output gradient and stores it, not adding to zeros).
        let bandwidth = try XCTUnwrap(json["bandwidth_gbps"] as? Double)
        XCTAssertGreaterThan(bandwidth, 0)
        let bn = try layer("conv1.bn"), floats = 4 * 32 * 32 * 32
        XCTAssertEqual(bn["bytes"] as? Double, Double(4 * (2 * floats + 3 * floats)))
        XCTAssertGreaterThan(try XCTUnwrap(bn["gbps"] as? Double), 0)
        XCTAssertNotNil(bn["fraction_of_bandwidth"] as? Double)
        XCTAssertTrue(conv1["bytes"] is NSNull, "a convolution is reported in GFLOP/s only")
        XCTAssertTrue(conv1["gbps"] is NSNull)
    }

    func testTrainRefusesBadDataWithAClearError() throws {
        let r = try DSL.run(["train", "specs/quickstart.dsl", "--data", "/nonexistent-dsl-data"])
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("/nonexistent-dsl-data"), r.stderr)
        let u = try DSL.run(["train", "specs/quickstart.dsl"])
        XCTAssertEqual(u.status, 2, u.summary)
        XCTAssertTrue(u.stderr.contains("--data"), u.stderr)
        let e = try DSL.run(["train", "specs/quickstart.dsl", "--data", "data/cifar10-sample", "--zca-epsilon", "1"])
        XCTAssertEqual(e.status, 2, e.summary)
        XCTAssertTrue(e.stderr.contains("--zca-epsilon applies only with --whiten zca"), e.stderr)
        let z = try DSL.run(["train", "specs/quickstart.dsl", "--data", "data/cifar10-sample", "--whiten", "zca", "--zca-epsilon", "-1"])
        XCTAssertEqual(z.status, 2, z.summary)
        XCTAssertTrue(z.stderr.contains("--zca-epsilon must be a number"), z.stderr)
    }

    /// Ctrl-C finishes the current step, writes a checkpoint that `dsl eval` reads, and exits 130;
    /// `--resume` continues from it.
    func testSIGINTWritesACheckpointThatEvalReadsAndTrainResumes() throws {
        let binary = try XCTUnwrap(DSL.binary)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-sigint-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let log = out + ".log"
        FileManager.default.createFile(atPath: log, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: log) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = ["train", "specs/quickstart.dsl", "--data", "data/cifar10-sample", "--epochs", "50", "--batch", "16", "--out", out, "--quiet"]
        p.currentDirectoryURL = DSL.packageRoot
        p.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait until training has taken a few steps (a progress line), then interrupt.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.contains(" batch ") { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let text = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertEqual(p.terminationReason, .exit, text)
        XCTAssertEqual(p.terminationStatus, 130, text)
        XCTAssertTrue(text.contains("interrupted: checkpoint written"), text)
        let checkpoint = out + "/checkpoint.safetensors"
        XCTAssertTrue(FileManager.default.fileExists(atPath: checkpoint))

        let e = try DSL.run(["eval", "specs/quickstart.dsl", "--weights", checkpoint, "--data", "data/cifar10-sample", "--format", "json"])
        XCTAssertEqual(e.status, 0, e.summary)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(json["images"] as? Int, 500)
        XCTAssertEqual((json["confusion"] as? [[Int]])?.joined().reduce(0, +), 500)

        let r = try DSL.run(["train", "specs/quickstart.dsl", "--data", "data/cifar10-sample", "--epochs", "1", "--batch", "16", "--out", out, "--quiet", "--resume", checkpoint])
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertTrue(r.stdout.contains("resuming from"), r.stdout)
        XCTAssertTrue(r.stdout.contains("epoch 1/1:"), r.stdout)

        let wrong = try DSL.run(["eval", "specs/all-cnn-c.dsl", "--weights", checkpoint, "--data", "data/cifar10-sample"])
        XCTAssertEqual(wrong.status, 1, wrong.summary)
        XCTAssertTrue(wrong.stderr.contains("different network"), wrong.stderr)
    }
}
