import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import DSLTraining

final class SafetensorsTests: XCTestCase {
    func testRoundTrip() throws {
        let directory = try makeTemporaryDirectory(self)
        let path = directory + "/model.safetensors"
        let tensors: [String: StoredTensor] = [
            "conv1.weight": try StoredTensor(shape: [2, 3, 1, 1], floats: [1, -2, 3.5, .pi, -0.0, 1e-30]),
            "empty": try StoredTensor(shape: [0, 4], floats: []),
            "step": .scalar(Int64(123_456_789_012)),
            "lr": .scalar(Float(0.25)),
        ]
        let metadata = ["format": "pt", "note": "quote \" backslash \\ newline \n tab \t é"]
        try writeSafetensors(tensors, metadata: metadata, to: path)
        let contents = try readSafetensors(path: path)
        XCTAssertEqual(contents.tensors, tensors)
        XCTAssertEqual(contents.metadata, metadata)
        // Layout: 8-byte little-endian length, header padded with spaces to a multiple of 8.
        let bytes = try readFileBytes(path)
        let length = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + length) % 8, 0)
        XCTAssertEqual(bytes[8], UInt8(ascii: "{"))
        XCTAssertEqual(bytes.count, 8 + length + 6 * 4 + 8 + 4)
        // No temporary file left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["model.safetensors"])
    }

    private func file(header: String, data: [UInt8] = []) -> [UInt8] {
        let h = Array(header.utf8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data
    }

    func testValidationErrors() throws {
        let cases: [([UInt8], String)] = [
            ([1, 2, 3], "too short"),
            (withUnsafeBytes(of: UInt64(1_000).littleEndian) { Array($0) } + Array("{}".utf8), "header length 1000 does not fit"),
            (file(header: "{\"a\": "), "not well-formed JSON"),
            (file(header: "[1]"), "does not start with '{'"),
            (file(header: "{\"a\": {\"dtype\": \"F16\", \"shape\": [1], \"data_offsets\": [0, 2]}}", data: [0, 0]), "unsupported dtype 'F16'"),
            (file(header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 4]}}", data: [0, 0, 0, 0]), "needs 8 bytes but data_offsets span 4"),
            (file(header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 8]}}", data: [0, 0, 0, 0]), "outside the 4-byte data section"),
            (file(header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [2, 6]}}", data: [UInt8](repeating: 0, count: 8)), "overlap"),
            (file(header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 0]}}"), "not a non-negative integer"),
            (file(header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", data: [UInt8](repeating: 0, count: 8)), "gap in the data section: bytes 0..<4"),
            (file(header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", data: [UInt8](repeating: 0, count: 6)), "6 bytes but the tensors cover only 4"),
            (file(header: "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}"), "data_offsets"),
            (file(header: "{\"__metadata__\": {\"epoch\": 3}}"), "value for 'epoch' is not a string"),
            (file(header: "{\"a\": 5}"), "entry is not an object"),
        ]
        for (bytes, fragment) in cases {
            assertThrowsMessage(try decodeSafetensors(bytes, name: "ckpt.safetensors"), contains: "ckpt.safetensors", fragment)
        }
        let directory = try makeTemporaryDirectory(self)
        assertThrowsMessage(try readSafetensors(path: directory + "/none.safetensors"), contains: "none.safetensors", "not found")
        assertThrowsMessage(try writeSafetensors([:], to: directory + "/missing/x.safetensors"), contains: "does not exist")
        assertThrowsMessage(try StoredTensor(shape: [2, 2], floats: [1]), contains: "needs 4 elements")
    }

    /// Cross-checks the byte layout with Python: the `safetensors` package when installed, else
    /// a numpy reader following the format specification. Skipped when neither is available.
    func testPythonReadsOurFile() throws {
        let directory = try makeTemporaryDirectory(self)
        let path = directory + "/x.safetensors"
        try writeSafetensors(["w": try StoredTensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6.5]),
                              "n": try StoredTensor(shape: [2], int64s: [-7, 1 << 40])], metadata: ["k": "v"], to: path)
        let script = """
        import json, struct, sys
        import numpy as np
        path = sys.argv[1]
        try:
            from safetensors.numpy import load_file
            t = load_file(path); w, n = t["w"], t["n"]
        except ImportError:
            raw = open(path, "rb").read()
            (length,) = struct.unpack("<Q", raw[:8])
            header = json.loads(raw[8:8 + length])
            assert header["__metadata__"] == {"k": "v"}
            data = raw[8 + length:]
            def load(name, dtype):
                e = header[name]; b, f = e["data_offsets"]
                return np.frombuffer(data[b:f], dtype=dtype).reshape(e["shape"])
            w, n = load("w", "<f4"), load("n", "<i8")
        print(w.shape, float(w.sum()), n.tolist())
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = Pipe()
        do { try process.run() } catch { throw XCTSkip("python3 not available") }
        process.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        if process.terminationStatus != 0 { throw XCTSkip("python3 with numpy not available") }
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "(2, 3) 21.5 [-7, 1099511627776]")
    }
}

final class MetricsAndPlotTests: XCTestCase {
    private func records() -> [EpochMetrics] {
        var result: [EpochMetrics] = []
        for e in 1...6 {
            let x = Double(e)
            let tested = e % 2 == 0
            let testLoss: Double? = tested ? 2.0 / x : nil
            let testAccuracy: Double? = tested ? 0.09 * x : nil
            result.append(EpochMetrics(epoch: e, step: e * 100, learningRate: 0.1, trainLoss: 2.3 / x, trainAccuracy: 0.1 * x,
                                       testLoss: testLoss, testAccuracy: testAccuracy, imagesPerSecond: 1234.5, elapsedSeconds: 10 * x))
        }
        return result
    }

    func testJSONLinesRoundTrip() throws {
        let directory = try makeTemporaryDirectory(self)
        let path = directory + "/metrics.jsonl"
        for record in records() { try appendMetrics(record, to: path) }
        let text = String(decoding: try readFileBytes(path), as: UTF8.self)
        XCTAssertEqual(text.split(separator: "\n").count, 6)
        XCTAssertTrue(text.hasPrefix("{\"epoch\":1,\"step\":100,\"lr\":0.1,\"train_loss\":2.3,"), text)
        XCTAssertTrue(text.contains("\"test_loss\":null"))
        let back = try readMetrics(path: path)
        XCTAssertEqual(back.count, 6)
        XCTAssertEqual(back[1].testAccuracy!, 0.18, accuracy: 1e-12)
        XCTAssertNil(back[0].testLoss)
        try writeBytes(Array("{\"epoch\":1}\nnot json\n".utf8), directory + "/bad.jsonl")
        assertThrowsMessage(try readMetrics(path: directory + "/bad.jsonl"), contains: "bad.jsonl:1", "step")
        assertThrowsMessage(try appendMetrics(records()[0], to: directory + "/no/such/dir.jsonl"), contains: "dir.jsonl", "cannot open")
    }
}

final class CheckpointTests: XCTestCase {
    func testRoundTripAndErrors() throws {
        let directory = try makeTemporaryDirectory(self)
        let path = directory + "/epoch3.safetensors"
        let data = try Dataset(images: (0..<24).map(Float.init), labels: [0, 1], count: 2, height: 2, width: 2, channels: 3, classes: 2)
        let checkpoint = TrainingCheckpoint(parameters: ["conv1.weight": try StoredTensor(shape: [2, 2], floats: [1, 2, 3, 4]),
                                                         "conv1.bias": try StoredTensor(shape: [2], floats: [0.5, -0.5])],
                                            velocity: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], preprocessor: .fitStandardization(on: data),
                                            epoch: 3, step: 300, metadata: ["model": "allcnn-c"])
        try checkpoint.write(to: path)
        let back = try TrainingCheckpoint.read(from: path)
        XCTAssertEqual(back.parameters, checkpoint.parameters)
        XCTAssertEqual(back.velocity, checkpoint.velocity)
        XCTAssertEqual(back.preprocessor, checkpoint.preprocessor)
        XCTAssertEqual([back.epoch, back.step], [3, 300])
        XCTAssertEqual(back.metadata, ["model": "allcnn-c"])

        let bare = TrainingCheckpoint(parameters: ["w": .scalar(Float(1))], epoch: 0, step: 0)
        try bare.write(to: path)
        let bareBack = try TrainingCheckpoint.read(from: path)
        XCTAssertNil(bareBack.velocity); XCTAssertNil(bareBack.preprocessor)

        let reserved = TrainingCheckpoint(parameters: ["train.w": .scalar(Float(1))], epoch: 0, step: 0)
        assertThrowsMessage(try reserved.write(to: path), contains: "reserved prefix 'train.'")
        try writeSafetensors(["w": .scalar(Float(1))], to: path)
        assertThrowsMessage(try TrainingCheckpoint.read(from: path), contains: "epoch3.safetensors", "no 'train.epoch' tensor")
    }
}
