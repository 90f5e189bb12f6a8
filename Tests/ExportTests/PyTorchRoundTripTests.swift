import DSLExport
import DSLTraining
import Foundation
import PythonTestSupport
import XCTest

/// dsl → PyTorch → dsl with the real binary: `dsl train` (2 epochs on the shipped sample), the
/// checkpoint loaded into the exported module, evaluated there and saved back, then `dsl eval`
/// on both files; and the exported training script under torchrun, whose checkpoint `dsl eval`
/// and `dsl train --resume` take. Needs torch and safetensors in .build/venv (skipped without,
/// a failure with DSL_REQUIRE_TORCH=1); `bench/export-parity.sh` installs them.
final class PyTorchRoundTripTests: XCTestCase {
    static let sample = "data/cifar10-sample"

    /// A small network with batch norm (its running statistics must survive the trip).
    static let tinySpec = """
    network tiny
    input 32x32x3
    conv 3 2 8 bn
    gap
    fc 10
    softmax

    """

    func python() throws -> String {
        try PyTorchFixture.torchPython()
    }

    func testCheckpointThroughPyTorchAndBack() throws {
        let python = try python()
        let dir = try PyTorchFixture.directory(self, "pytorch-roundtrip")
        let spec = "specs/quickstart.dsl"
        let run = dir.appendingPathComponent("run").path
        let (trained, log) = try DSLBinary.run(["train", spec, "--data", Self.sample, "--epochs", "2", "--out", run, "--quiet"])
        XCTAssertEqual(trained, 0, log)
        let other = dir.appendingPathComponent("other").path
        let tiny = dir.appendingPathComponent("tiny.dsl").path
        try Data(Self.tinySpec.utf8).write(to: URL(fileURLWithPath: tiny))
        let (otherStatus, otherLog) = try DSLBinary.run(["train", tiny, "--data", Self.sample, "--train-limit", "64", "--test-limit", "16",
                                                          "--batch", "16", "--epochs", "1", "--out", other, "--quiet"])
        XCTAssertEqual(otherStatus, 0, otherLog)

        let text = try String(contentsOf: PyTorchFixture.root.appendingPathComponent(spec), encoding: .utf8)
        let (g, _) = try PyTorchFixture.check("quickstart.dsl", text)
        let script = dir.appendingPathComponent("train.py").path
        try Data(PyTorchExport.trainingScript(g, source: spec).utf8).write(to: URL(fileURLWithPath: script))
        let original = run + "/checkpoint.safetensors", back = dir.appendingPathComponent("back.safetensors").path
        let roundTrip = PythonEnvironment.packageRoot.appendingPathComponent("Tests/ExportTests/python/pytorch_roundtrip.py").path
        let (status, output) = PythonEnvironment.run(python, [roundTrip, script, original, Self.sample, back, other + "/checkpoint.safetensors"])
        XCTAssertEqual(status, 0, output)
        let json = try XCTUnwrap(output.split(separator: "\n").last { $0.hasPrefix("{") }, output)
        let result = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])

        // The file written back holds exactly what dsl wrote.
        XCTAssertEqual(result["identical"] as? Bool, true, "\(result["differences"] ?? "")")
        let refused = try XCTUnwrap(result["refused"] as? String, "another network's checkpoint was loaded")
        XCTAssertTrue(refused.contains("the checkpoint is of a different network (tiny"), refused)

        // dsl eval gives the same test loss for both files, and PyTorch's own evaluation agrees
        // with it to 5 significant digits.
        let lossBefore = try DSLBinary.evalLoss(spec, weights: original)
        let lossAfter = try DSLBinary.evalLoss(spec, weights: back)
        XCTAssertEqual(String(format: "%.5g", lossBefore), String(format: "%.5g", lossAfter))
        let pytorchLoss = try XCTUnwrap(result["loss"] as? Double)
        XCTAssertEqual(String(format: "%.5g", pytorchLoss), String(format: "%.5g", lossBefore), "PyTorch \(pytorchLoss), dsl eval \(lossBefore)")
        print("round trip: dsl eval loss \(lossBefore) -> \(lossAfter) after PyTorch; PyTorch's evaluation \(pytorchLoss), accuracy \(result["accuracy"] ?? "")")
    }
}
