import Foundation
import PythonTestSupport
import XCTest

/// The acceptance check of issue #14: `dsl visualize --raw` against an independent PyTorch
/// implementation of the three rules (Tests/VisualizeTests/python/guided_reference.py: the
/// networks written by hand in PyTorch, the rules as backward hooks on their nn.ReLU modules),
/// on the same checkpoint (trained in the test) and images: every map equal within 1e-4 of
/// its largest value, for an All-CNN-style network and one with batch norm, max pooling, an
/// add and a concat.
///
/// torch is never installed by the tests (5 GB): the check runs with the interpreter named by
/// `DSL_TORCH_PYTHON`, else `.build/venv`'s when it imports torch; otherwise it is skipped
/// (a failure when `DSL_REQUIRE_TORCH=1`).
final class TorchComparisonTests: XCTestCase {
    private func torchPython() throws -> String {
        let env = ProcessInfo.processInfo.environment
        var tried: [String] = []
        for candidate in [env["DSL_TORCH_PYTHON"], PythonEnvironment.python].compactMap({ $0 }) {
            guard FileManager.default.isExecutableFile(atPath: candidate) else { tried.append("\(candidate): not found"); continue }
            let (status, output) = PythonEnvironment.run(candidate, ["-c", "import torch, numpy; print(torch.__version__)"])
            if status == 0 { return candidate }
            tried.append("\(candidate): \(output.split(separator: "\n").last ?? "")")
        }
        let why = "needs a Python with torch and numpy (set DSL_TORCH_PYTHON): " + tried.joined(separator: "; ")
        if env["DSL_REQUIRE_TORCH"] == "1" { XCTFail(why) }
        throw XCTSkip(why)
    }

    /// Runs `dsl visualize` with `arguments`, then the reference on its rows; returns the reference's report line.
    private func compare(_ network: String, _ arguments: [String], python: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let ckpt = try VisualizeFixture.checkpoint(network)
        let dir = VisualizeFixture.temporaryDirectory("torch-\(network)")
        let raw = dir.appendingPathComponent("raw.npy").path
        let (status, output) = try VisualizeFixture.dsl(["visualize", VisualizeFixture.spec(network), "--weights", ckpt,
                                                         "--data", VisualizeFixture.sample, "--method", "all",
                                                         "-o", dir.appendingPathComponent("grid.png").path, "--raw", raw] + arguments)
        XCTAssertEqual(status, 0, output, file: file, line: line)
        var reference = ["--network", network, "--weights", ckpt, "--data", VisualizeFixture.sample, "--raw", raw, "--method", "all"]
        if let c = arguments.firstIndex(of: "--class"), let i = arguments.firstIndex(of: "--image") {
            reference += ["--class", arguments[c + 1], "--image", arguments[i + 1]]
        } else {
            let layer = arguments[arguments.firstIndex(of: "--layer")! + 1]
            let rows = VisualizeFixture.rows(output).map { "\($0.unit):" + $0.images.map(String.init).joined(separator: ",") }
            XCTAssertFalse(rows.isEmpty, output, file: file, line: line)
            reference += ["--layer", layer, "--rows", rows.joined(separator: ";")]
        }
        let script = VisualizeFixture.specs.deletingLastPathComponent().appendingPathComponent("python/guided_reference.py").path
        let (refStatus, refOutput) = PythonEnvironment.run(python, [script] + reference)
        XCTAssertEqual(refStatus, 0, refOutput, file: file, line: line)
        XCTAssertTrue(refOutput.contains(" 0 mismatches"), refOutput, file: file, line: line)
        print(refOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        return refOutput
    }

    func testAllCNNStyleNetworkMatchesPyTorch() throws {
        let python = try torchPython()
        _ = try compare("allcnn-small", ["--layer", "conv4", "--units", "0-3", "--top", "3"], python: python)
        _ = try compare("allcnn-small", ["--layer", "conv6", "--units", "0,5,9", "--top", "2"], python: python)
        _ = try compare("allcnn-small", ["--image", "7", "--class", "3"], python: python)
    }

    func testBatchNormAndMergesMatchPyTorch() throws {
        let python = try torchPython()
        _ = try compare("bn-merge", ["--layer", "conv6", "--units", "0,3,5", "--top", "3"], python: python)
        _ = try compare("bn-merge", ["--layer", "mix", "--units", "0,9,20", "--top", "3"], python: python)
        _ = try compare("bn-merge", ["--layer", "res", "--units", "1,2", "--top", "2"], python: python)
        _ = try compare("bn-merge", ["--layer", "maxpool1", "--units", "4", "--top", "2"], python: python)
        _ = try compare("bn-merge", ["--image", "12", "--class", "8"], python: python)
    }
}
