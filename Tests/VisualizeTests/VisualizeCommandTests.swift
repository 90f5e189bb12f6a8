import DSLIR
import DSLTraining
import Foundation
import PythonTestSupport
import XCTest
@testable import DSLVisualize

/// `dsl visualize` end to end on networks trained in the test, and its errors.
final class VisualizeCommandTests: XCTestCase {
    func testGridMatchesTheLibraryAndDecodes() throws {
        let ckpt = try VisualizeFixture.checkpoint("allcnn-small")
        let dir = VisualizeFixture.temporaryDirectory("grid")
        let png = dir.appendingPathComponent("grid.png").path, raw = dir.appendingPathComponent("raw.npy").path
        let (status, output) = try VisualizeFixture.dsl(["visualize", VisualizeFixture.spec("allcnn-small"), "--weights", ckpt,
                                                         "--data", VisualizeFixture.sample, "--layer", "conv4", "--units", "0,2-3",
                                                         "--top", "4", "--method", "all", "-o", png, "--raw", raw])
        XCTAssertEqual(status, 0, output)
        let rows = VisualizeFixture.rows(output)
        XCTAssertEqual(rows.map(\.unit), [0, 2, 3], output)
        XCTAssertEqual(rows.map(\.images.count), [4, 4, 4], output)

        // The same run through the library: the PNG holds exactly its grid.
        let source = try String(contentsOfFile: VisualizeFixture.spec("allcnn-small"), encoding: .utf8)
        let checked = Frontend.check(text: source, path: VisualizeFixture.spec("allcnn-small"))
        let graph = try XCTUnwrap(checked.graph)
        let test = try loadCIFAR10(directory: VisualizeFixture.sample).test
        let visualizer = try Visualizer(graph: graph, checkpoint: try TrainingCheckpoint.read(from: ckpt), checkpointPath: ckpt, test: test)
        var request = VisualizeRequest()
        request.layer = "conv4"; request.units = [0, 2, 3]; request.top = 4; request.method = .all
        let result = try visualizer.run(request)
        XCTAssertEqual(result.rows.map { $0.entries.map(\.image) }, rows.map(\.images))
        // conv4: receptive field 13, stride 4: 13x13 crops, 3 maps each, rows of 4.
        XCTAssertTrue(result.rows.allSatisfy { $0.entries.allSatisfy { $0.crop.height == 13 && $0.crop.width == 13 && $0.maps.count == 3 } })
        let grid = result.grid()
        let python = try PythonEnvironment.require(modules: ["PIL", "numpy"], packages: ["pillow", "numpy"])
        let (pyStatus, pyOutput) = PythonEnvironment.run(python, ["-c", """
            import sys, hashlib
            import numpy as np
            from PIL import Image
            im = Image.open(sys.argv[1]); im.load()
            print(im.mode, im.size[0], im.size[1], hashlib.sha256(im.tobytes()).hexdigest())
            a = np.load(sys.argv[2])
            print(a.dtype, list(a.shape), float(np.abs(a).max()))
            """, png, raw])
        XCTAssertEqual(pyStatus, 0, pyOutput)
        let lines = pyOutput.split(separator: "\n").map(String.init)
        let digest = sha256Hex(grid.pixels)
        XCTAssertEqual(lines.first, "RGB \(grid.width) \(grid.height) \(digest)")
        XCTAssertEqual(lines.dropFirst().first?.components(separatedBy: " ").prefix(1).first, "float32")
        XCTAssertTrue(lines.count > 1 && lines[1].contains("[3, 4, 3, 32, 32, 3]"), pyOutput)
        XCTAssertEqual(result.rawShape, [3, 4, 3, 32, 32, 3])
        // The three rules give different maps (a swapped rule would show).
        let first = result.rows[0].entries[0].maps
        XCTAssertNotEqual(first[0], first[1]); XCTAssertNotEqual(first[1], first[2]); XCTAssertNotEqual(first[0], first[2])
    }

    func testDisplayNormalisation() {
        // Mean 1, largest deviation 3: −2 → 128 − 127, 4 → 255, 1 → 128.
        XCTAssertEqual(VisualizeResult.displayPixels([-2, 1, 4], channels: 1), [1, 1, 1, 128, 128, 128, 255, 255, 255])
        XCTAssertEqual(VisualizeResult.displayPixels([0, 0, 0], channels: 3), [128, 128, 128])
    }

    func testReceptiveRegionsFollowPadding() throws {
        let checked = Frontend.check(text: "network r\ninput 32x32x3\nconv 3 1 8\nconv 3 2 8\nconv 3 1 8 pad=valid\nconv 1 1 10\ngap\nsoftmax\n", path: "r.dsl")
        let g = try XCTUnwrap(checked.graph)
        let regions = receptiveRegions(of: g)
        XCTAssertEqual(regions[1], ReceptiveRegion(start: -1, size: 3, stride: 1))
        XCTAssertEqual(regions[2], ReceptiveRegion(start: -2, size: 5, stride: 2))
        XCTAssertEqual(regions[3], ReceptiveRegion(start: -2, size: 9, stride: 2))
    }

    func testErrors() throws {
        let ckpt = try VisualizeFixture.checkpoint("allcnn-small")
        let other = try VisualizeFixture.checkpoint("bn-merge")
        let png = VisualizeFixture.temporaryDirectory("errors").appendingPathComponent("x.png").path
        let base = ["visualize", VisualizeFixture.spec("allcnn-small"), "--data", VisualizeFixture.sample, "-o", png]
        let cases: [([String], Int32, String)] = [
            (["--weights", ckpt, "--layer", "conv44"], 1, "unknown layer 'conv44' in network 'allcnn-small'; did you mean 'conv4'?"),
            (["--weights", ckpt, "--layer", "conv4", "--units", "3,40"], 1, "unit 40 does not exist: layer 'conv4' has 32 units (0-31)"),
            (["--weights", ckpt, "--image", "500", "--class", "1"], 1, "image 500 is out of range: the test set has 500 images (0-499)"),
            (["--weights", ckpt, "--image", "0", "--class", "10"], 1, "class 10 does not exist"),
            (["--weights", ckpt, "--layer", "softmax1"], 1, "use --class C"),
            (["--weights", other, "--layer", "conv4"], 1, "the checkpoint is of a different network"),
            (["--weights", ckpt, "--layer", "conv4", "--method", "guide"], 2, "--method must be guided, deconvnet, backprop or all"),
            (["--weights", ckpt], 2, "missing --layer NAME (or --class C)"),
            (["--weights", ckpt, "--layer", "conv4", "--units", "a-"], 2, "--units must be a list"),
        ]
        for (extra, status, message) in cases {
            let (s, output) = try VisualizeFixture.dsl(base + extra)
            XCTAssertEqual(s, status, "\(extra): \(output)")
            XCTAssertTrue(output.contains(message), "\(extra): expected '\(message)' in:\n\(output)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: png), "\(extra): wrote the picture despite the error")
        }
        let (s, output) = try VisualizeFixture.dsl(["visualize", VisualizeFixture.spec("allcnn-small"), "--weights", ckpt, "--layer", "conv4"])
        XCTAssertEqual(s, 2, output)
        XCTAssertTrue(output.contains("missing -o GRID.png"), output)
    }

    func testHelpDocumentsEveryOption() throws {
        let (status, help) = try VisualizeFixture.dsl(["visualize", "--help"])
        XCTAssertEqual(status, 0)
        for option in ["--weights", "--layer", "--units", "--top", "--method", "-o GRID.png", "--image", "--class", "--raw",
                       "--data", "--dataset", "--labels", "--batch", "--threads", "guided", "deconvnet", "backprop", "all"] {
            XCTAssertTrue(help.contains(option), "--help does not mention \(option)")
        }
    }

    /// SHA-256 via the system's sha256sum (the toolchain has no hash API on Linux).
    private func sha256Hex(_ bytes: [UInt8]) -> String {
        let path = VisualizeFixture.temporaryDirectory("sha").appendingPathComponent("bytes").path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        let (_, output) = PythonEnvironment.run("/usr/bin/env", ["sha256sum", path])
        return String(output.prefix(64))
    }
}
