import Foundation
import XCTest

/// Helpers for the `dsl train` / `dsl eval` CLI tests: small specs, temporary run directories,
/// runs in the background that can be signalled, and a safetensors editor for corrupting
/// checkpoints field by field.
enum TrainFixture {
    /// A small network that trains in a fraction of a second on 64 images.
    static let tinySpec = """
    network tiny
    input 32x32x3
    conv 3 2 8 bn
    gap
    fc 10
    softmax

    """

    /// The shipped sample, relative to the package root (the working directory of `DSL.run`).
    static let sample = "data/cifar10-sample"

    /// A fresh temporary directory, removed when the test ends.
    static func directory(_ test: XCTestCase) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-train-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// Writes `text` to `dir/name` and returns the path.
    @discardableResult
    static func write(_ text: String, _ dir: String, _ name: String) throws -> String {
        let path = dir + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The recipe flags of the small runs (64 training images in batches of 16: 4 steps an epoch).
    static func recipe(epochs: Int = 1) -> [String] {
        ["--data", sample, "--train-limit", "64", "--test-limit", "16", "--batch", "16", "--epochs", String(epochs), "--quiet"]
    }

    /// Starts `dsl` in the background with stdout and stderr going to `log`.
    static func start(_ arguments: [String], log: String, cwd: URL = DSL.packageRoot) throws -> Process {
        let binary = try XCTUnwrap(DSL.binary)
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        p.currentDirectoryURL = cwd
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Waits until `log` contains `text` (or the process ends, or two minutes pass: a hang guard,
    /// not a speed assertion). Returns whether the text appeared.
    @discardableResult
    static func wait(for text: String, in log: String, while p: Process) -> Bool {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(text) { return true }
            if !p.isRunning { return ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains(text) }
            Thread.sleep(forTimeInterval: 0.01)
        }
        return false
    }

    static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
}

/// A safetensors file taken apart: header entries, metadata and each tensor's bytes, so that a
/// test can change one field and write the file back with consistent offsets.
struct RawSafetensors {
    var tensors: [String: (dtype: String, shape: [Int], bytes: [UInt8])] = [:]
    var metadata: [String: String] = [:]

    init(path: String) throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
        let data = Array(bytes[(8 + n)...])
        for (name, entry) in header {
            if name == "__metadata__" { metadata = (entry as? [String: String]) ?? [:]; continue }
            let e = try XCTUnwrap(entry as? [String: Any])
            let offsets = try XCTUnwrap(e["data_offsets"] as? [Int])
            tensors[name] = (try XCTUnwrap(e["dtype"] as? String), try XCTUnwrap(e["shape"] as? [Int]), Array(data[offsets[0]..<offsets[1]]))
        }
    }

    /// Byte ranges (in the whole file) of every tensor of the file at `path`.
    static func ranges(path: String) throws -> [String: Range<Int>] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any])
        var result: [String: Range<Int>] = [:]
        for (name, entry) in header where name != "__metadata__" {
            let offsets = try XCTUnwrap((entry as? [String: Any])?["data_offsets"] as? [Int])
            result[name] = (8 + n + offsets[0])..<(8 + n + offsets[1])
        }
        return result
    }

    func write(to path: String) throws {
        var entries: [String] = []
        if !metadata.isEmpty {
            let meta = try JSONSerialization.data(withJSONObject: metadata, options: [.sortedKeys])
            entries.append("\"__metadata__\":" + String(decoding: meta, as: UTF8.self))
        }
        var data: [UInt8] = []
        for name in tensors.keys.sorted() {
            let t = tensors[name]!
            entries.append("\"\(name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(data.count),\(data.count + t.bytes.count)]}")
            data += t.bytes
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        let length = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) }
        try Data(length + header + data).write(to: URL(fileURLWithPath: path))
    }

    static func i64(_ v: Int64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func f64(_ v: Double) -> [UInt8] { withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    static func f32(_ values: [Float]) -> [UInt8] { values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } } }
    static func floats(_ bytes: [UInt8]) -> [Float] {
        stride(from: 0, to: bytes.count, by: 4).map { i in Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24) }
    }
}

/// CIFAR-100-format files (2 label bytes, then 3,072 pixel bytes per record) for tests.
enum CIFAR100Fixture {
    /// Writes train.bin and test.bin with `train` and `test` records into `dir`; labels cycle
    /// through the 20 coarse and 100 fine classes, pixels are a deterministic pattern.
    static func write(_ dir: String, train: Int, test: Int) throws {
        for (name, count) in [("train.bin", train), ("test.bin", test)] {
            var bytes: [UInt8] = []
            for r in 0..<count {
                bytes.append(UInt8(r % 20)); bytes.append(UInt8((r * 7) % 100))
                for p in 0..<3072 { bytes.append(UInt8(truncatingIfNeeded: p &* 31 &+ r &* 17)) }
            }
            try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name))
        }
    }
}
