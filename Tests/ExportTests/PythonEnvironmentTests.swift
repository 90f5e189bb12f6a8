import PythonTestSupport
import XCTest

/// The reference tools the export checks compare with are there (installed into .build/venv
/// when absent; under CI a failure to install them fails here, once, with pip's message).
final class PythonEnvironmentTests: XCTestCase {
    func testONNXToolsAreAvailable() throws {
        let python = try PythonEnvironment.require(modules: ["onnx", "onnxruntime", "numpy"], packages: ["onnx", "onnxruntime", "numpy"])
        let (status, output) = PythonEnvironment.run(python, ["-c", "import onnx, onnxruntime; print(onnx.__version__, onnxruntime.__version__)"])
        XCTAssertEqual(status, 0, output)
    }
}
