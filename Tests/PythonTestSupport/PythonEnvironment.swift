import Foundation
import XCTest

/// The Python virtual environment the reference checks (export, pictures) use: `.build/venv` under the package (the
/// build folder, never committed), holding the field's reference tools from PyPI (onnx,
/// onnxruntime, numpy; torch and safetensors when `bench/export-parity.sh` installed them).
/// `dsl` itself never needs Python.
///
/// A check asks for the modules it imports: when they are missing the environment is created
/// and the packages installed (onnx and onnxruntime are small; torch is not, so tests only use
/// it when it is already there). Under CI (`CI` set, or `DSL_REQUIRE_PYTHON=1`) a check whose
/// tools cannot be had fails; elsewhere it is skipped with the reason.
public enum PythonEnvironment {
    /// The package root.
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The environment's directory.
    public static var directory: URL { packageRoot.appendingPathComponent(".build/venv") }
    /// Its interpreter.
    public static var python: String { directory.appendingPathComponent("bin/python").path }

    /// Whether a missing tool is a failure rather than a skip.
    public static var required: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["CI"] != nil || env["DSL_REQUIRE_PYTHON"] == "1"
    }

    /// What happened the last time the environment was prepared, for skip and failure messages.
    nonisolated(unsafe) private static var log: [String] = []

    /// The interpreter, with every module in `modules` importable; installs `packages` from PyPI
    /// when `install` and something is missing. Nil (see `log`) when that fails.
    public static func interpreter(modules: [String], packages: [String], install: Bool = true) -> String? {
        if imports(modules) { return python }
        guard install else { log.append("\(modules.joined(separator: ", ")) not installed in \(directory.path)"); return nil }
        if !FileManager.default.fileExists(atPath: python) {
            let (status, output) = run("/usr/bin/env", ["python3", "-m", "venv", directory.path])
            guard status == 0 else { log.append("python3 -m venv failed: \(output)"); return nil }
        }
        let (status, output) = run(python, ["-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + packages)
        guard status == 0 else { log.append("pip install \(packages.joined(separator: " ")) failed: \(output.suffix(2000))"); return nil }
        return imports(modules) ? python : nil
    }

    /// The interpreter for a test: fails (under CI) or skips when the tools cannot be had.
    public static func require(modules: [String], packages: [String], install: Bool = true,
                        file: StaticString = #filePath, line: UInt = #line) throws -> String {
        if let p = interpreter(modules: modules, packages: packages, install: install) { return p }
        let why = "needs \(modules.joined(separator: ", ")) in \(directory.path): \(log.last ?? "not available")"
        if required { XCTFail(why, file: file, line: line) }
        throw XCTSkip(why)
    }

    /// The interpreter when it imports every module in `modules` (torch among them). The suite
    /// never installs torch (5 GB; `bench/export-parity.sh` and `bench/speedrun.sh` do), so
    /// without it the check is skipped, under CI too; `DSL_REQUIRE_TORCH=1` makes the absence a
    /// failure (bench/export-parity.sh sets it).
    public static func requireTorch(_ modules: [String] = ["torch"], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        if imports(modules) { return python }
        let why = "needs \(modules.joined(separator: " and ")) in \(directory.path) (bench/export-parity.sh installs them)"
        if ProcessInfo.processInfo.environment["DSL_REQUIRE_TORCH"] == "1" { XCTFail(why, file: file, line: line) }
        throw XCTSkip(why)
    }

    /// Whether the environment's interpreter imports every module.
    public static func imports(_ modules: [String]) -> Bool {
        guard FileManager.default.fileExists(atPath: python) else { return false }
        return run(python, ["-c", modules.map { "import \($0)" }.joined(separator: "; ")]).status == 0
    }

    /// Runs a program to completion; returns its status and its standard output and error.
    @discardableResult
    public static func run(_ program: String, _ arguments: [String], cwd: URL? = nil) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
        p.currentDirectoryURL = cwd ?? packageRoot
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { return (-1, "\(program): \(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
