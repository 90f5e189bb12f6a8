import Foundation
import PythonTestSupport
import XCTest

/// The `dsl` binary `swift test` built and small networks it trained, for the visualize tests.
enum VisualizeFixture {
    static let packageRoot = PythonEnvironment.packageRoot
    static let specs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("specs")
    static let sample = packageRoot.appendingPathComponent("data/cifar10-sample").path

    /// `DSL_BINARY`, else `dsl` beside the test bundle, else `.build/debug/dsl`.
    static let binary: String? = {
        let fm = FileManager.default
        if let p = ProcessInfo.processInfo.environment["DSL_BINARY"], fm.isExecutableFile(atPath: p) { return p }
        var candidates: [URL] = []
        for b in Bundle.allBundles + [Bundle.main] where b.bundlePath.hasSuffix(".xctest") {
            candidates.append(URL(fileURLWithPath: b.bundlePath).deletingLastPathComponent().appendingPathComponent("dsl"))
        }
        if let a0 = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: a0).resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("dsl"))
        }
        candidates.append(packageRoot.appendingPathComponent(".build/debug/dsl"))
        return candidates.map(\.path).first { fm.isExecutableFile(atPath: $0) }
    }()

    /// This test process's scratch directory (`dsl-visualize-PID` in the temporary directory),
    /// removed with everything in it when the process exits.
    static let scratch: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-visualize-\(getpid())")
        try? FileManager.default.removeItem(at: dir)
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        atexit {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-visualize-\(getpid())")
            try? FileManager.default.removeItem(at: dir)
        }
        return dir
    }()

    /// A fresh temporary directory `name` under `scratch`.
    static func temporaryDirectory(_ name: String) -> URL {
        let dir = scratch.appendingPathComponent(name)
        try? FileManager.default.removeItem(at: dir)
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs `dsl` (standard output and error together).
    static func dsl(_ arguments: [String]) throws -> (status: Int32, output: String) {
        guard let binary else { throw XCTSkip("the dsl binary was not found (build it, or set DSL_BINARY)") }
        return PythonEnvironment.run(binary, arguments)
    }

    nonisolated(unsafe) private static var trained: [String: String] = [:]
    private static let lock = NSLock()

    /// The checkpoint of `specs/NAME.dsl` trained for 2 epochs on the CIFAR-10 sample (once per run).
    static func checkpoint(_ name: String) throws -> String {
        lock.lock(); defer { lock.unlock() }
        if let path = trained[name] { return path }
        let out = temporaryDirectory("train-\(name)")
        let (status, output) = try dsl(["train", spec(name), "--data", sample, "--epochs", "2", "--batch", "50",
                                        "--out", out.path, "--overwrite", "--threads", "2"])
        guard status == 0 else { throw NSError(domain: "dsl train", code: Int(status), userInfo: [NSLocalizedDescriptionKey: output]) }
        let path = out.appendingPathComponent("checkpoint.safetensors").path
        trained[name] = path
        return path
    }

    /// The path of `specs/NAME.dsl`.
    static func spec(_ name: String) -> String { specs.appendingPathComponent("\(name).dsl").path }

    /// The rows of `dsl visualize`'s standard output: unit (or class) and its test images.
    static func rows(_ output: String) -> [(unit: Int, images: [Int])] {
        output.split(separator: "\n").compactMap { line -> (Int, [Int])? in
            guard line.hasPrefix("unit ") || line.hasPrefix("class ") else { return nil }
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, let unit = Int(parts[0].split(separator: " ").last ?? "") else { return nil }
            // " 356 (truck, 0.5169 at 5,1) 25 (frog, ...)": the numbers outside parentheses.
            var images: [Int] = [], depth = 0, word = ""
            for ch in parts[1] + " " {
                if ch == "(" { depth += 1 } else if ch == ")" { depth -= 1 }
                if depth == 0 && ch.isNumber { word.append(ch) } else {
                    if let n = Int(word) { images.append(n) }
                    word = ""
                }
            }
            return (unit, images)
        }
    }
}
