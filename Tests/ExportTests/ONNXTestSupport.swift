import DSLEngine
import DSLExport
import DSLIR
import DSLSyntax
import Foundation
import PythonTestSupport
import XCTest

/// Writes NumPy .npy files (format version 1.0, https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
/// the magic bytes `\x93NUMPY`, the version (1, 0), a little-endian UInt16 header length, and
/// a header that is a Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`
/// padded with spaces and ended by a newline so that the data starts at a multiple of 64
/// bytes; then the float32 elements, little-endian, in C (row-major) order. The checks read
/// them back with `numpy.load`, the format's reference reader.
enum NumPyFile {
    /// The bytes of a float32 array of the given shape.
    static func encode(_ values: [Float], shape: [Int]) -> [UInt8] {
        precondition(shape.reduce(1, *) == values.count)
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let length = UInt16(header.utf8.count)
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)]
        bytes += Array(header.utf8)
        bytes.reserveCapacity(bytes.count + 4 * values.count)
        for v in values {
            let bits = v.bitPattern.littleEndian
            withUnsafeBytes(of: bits) { bytes.append(contentsOf: $0) }
        }
        return bytes
    }

    /// Writes a float32 array.
    static func write(_ values: [Float], shape: [Int], to url: URL) throws {
        try Data(encode(values, shape: shape)).write(to: url)
    }
}

/// A small deterministic generator for test inputs and weight perturbations (SplitMix64).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    /// Standard normal (Box-Muller).
    mutating func normal() -> Float {
        let u = max(uniform(), 1e-12), v = uniform()
        return Float((-2 * log(u)).squareRoot() * cos(2 * Double.pi * v))
    }
}

/// Builds the checks' inputs: a network checked from spec text, an engine with trained-looking
/// weights, its inference outputs on random inputs, and the files the Python check reads.
enum ONNXCheck {
    /// The graph of a spec (the test fails with the diagnostics if it has errors).
    static func graph(_ text: String, path: String = "spec.dsl") throws -> Graph {
        let checked = Frontend.check(text: text, path: path)
        guard let g = checked.graph, !checked.diagnostics.hasErrors else {
            throw ExportError("\(path) does not check: \(checked.diagnostics.items.map { "\($0.message)" }.joined(separator: "; "))")
        }
        return g
    }

    /// The graph without its final softmax (its output is the logits), or nil when it does not end in softmax.
    static func logitsGraph(_ g: Graph) -> Graph? {
        guard g.nodes.count > 2, g.nodes[g.output].op == .softmax else { return nil }
        return Graph(name: g.name + "-logits", nodes: Array(g.nodes.dropLast()), modules: g.modules)
    }

    /// An engine of `g` compiled with a seed, whose weights look trained: biases and batch-norm
    /// scales and shifts moved away from their initial 0 and 1, and batch-norm running
    /// statistics moved away from 0 and 1 by three training forward passes on random inputs.
    static func trainedEngine(_ g: Graph, maxBatch: Int, seed: UInt64) throws -> EngineGraph {
        let engine = try lower(g, maxBatch: maxBatch, seed: seed).engine
        try engine.compile(training: true)
        var random = TestRandom(seed: seed ^ 0xB1A5)
        let bnPrefixes = Set(engine.buffers.map { $0.name.replacingOccurrences(of: ".running_mean", with: "").replacingOccurrences(of: ".running_var", with: "") })
        for p in engine.parameters {
            let prefix = String(p.name[..<p.name.lastIndex(of: ".")!])
            let isBN = bnPrefixes.contains(prefix)
            for i in 0..<p.count {
                if p.name.hasSuffix(".bias") {
                    p.value[i] = 0.1 * random.normal()
                } else if isBN {
                    p.value[i] = 1 + Float(0.6 * random.uniform() - 0.3)
                }
            }
        }
        let input = randomInput(engine.inputShape, batch: maxBatch, random: &random)
        for _ in 0..<3 { _ = engine.forward(input, batch: maxBatch, training: true) }
        return engine
    }

    /// Standard normal values for `batch` images of shape `s` (any layout: they are i.i.d.).
    static func randomInput(_ s: EngineShape, batch: Int, random: inout TestRandom) -> [Float] {
        (0..<(batch * s.count)).map { _ in random.normal() }
    }

    /// (B, H, W, C) to (B, C, H, W).
    static func nchw(_ x: [Float], batch: Int, _ s: EngineShape) -> [Float] {
        var y = [Float](repeating: 0, count: x.count)
        for n in 0..<batch {
            for h in 0..<s.height {
                for w in 0..<s.width {
                    for c in 0..<s.channels {
                        y[((n * s.channels + c) * s.height + h) * s.width + w] = x[((n * s.height + h) * s.width + w) * s.channels + c]
                    }
                }
            }
        }
        return y
    }

    /// The engine's inference output on NHWC `input`, in the ONNX model's layout and shape:
    /// (B, C) for a 1×1 output map, else (B, C, H, W).
    static func engineOutput(_ engine: EngineGraph, _ input: [Float], batch: Int) -> (values: [Float], shape: [Int]) {
        let s = engine.outputShape
        let out = input.withUnsafeBufferPointer { engine.forward($0.baseAddress!, batch: batch, training: false) }
        let nhwc = Array(UnsafeBufferPointer(start: out, count: batch * s.count))
        if s.height == 1 && s.width == 1 { return (nhwc, [batch, s.channels]) }
        return (nchw(nhwc, batch: batch, s), [batch, s.channels, s.height, s.width])
    }

    /// Copies parameters and buffers by name from one engine into another (the same names).
    static func copyWeights(from source: EngineGraph, to target: EngineGraph) {
        let w = ONNXExport.weights(of: source)
        for p in target.parameters { p.value.update(from: w.parameters[p.name]!, count: p.count) }
        for b in target.buffers { b.value.update(from: w.buffers[b.name]!, count: b.count) }
    }

    /// A case of the Python check: the model file, the names its initializers must have, and
    /// the engine's outputs on random inputs of each batch size.
    static func writeCase(name: String, graph g: Graph, engine: EngineGraph, parameters: [String: [Float]], buffers: [String: [Float]],
                          batches: [Int], seed: UInt64, directory: URL) throws -> [String: Any] {
        let file = name.replacingOccurrences(of: "/", with: "_")
        let model = directory.appendingPathComponent(file + ".onnx")
        try Data(try ONNXExport.model(g, parameters: parameters, buffers: buffers)).write(to: model)
        var random = TestRandom(seed: seed)
        var runs: [[String: String]] = []
        for batch in batches {
            let x = randomInput(engine.inputShape, batch: batch, random: &random)
            let expected = engineOutput(engine, x, batch: batch)
            let s = engine.inputShape
            let inputURL = directory.appendingPathComponent("\(file).b\(batch).input.npy")
            let expectedURL = directory.appendingPathComponent("\(file).b\(batch).expected.npy")
            try NumPyFile.write(nchw(x, batch: batch, s), shape: [batch, s.channels, s.height, s.width], to: inputURL)
            try NumPyFile.write(expected.values, shape: expected.shape, to: expectedURL)
            runs.append(["input": inputURL.path, "expected": expectedURL.path])
        }
        return ["name": name, "model": model.path, "initializers": ONNXExport.tensors(of: g).map(\.name), "runs": runs]
    }

    /// The cases of a network: its output (probabilities after a final softmax) and, when it
    /// ends in softmax, its logits (a softmax's saturated probabilities would hide differences).
    static func cases(name: String, graph g: Graph, batches: [Int], seed: UInt64, directory: URL) throws -> [[String: Any]] {
        let engine = try trainedEngine(g, maxBatch: batches.max()!, seed: seed)
        let w = ONNXExport.weights(of: engine)
        var out = [try writeCase(name: name, graph: g, engine: engine, parameters: w.parameters, buffers: w.buffers,
                                 batches: batches, seed: seed &+ 1, directory: directory)]
        if let logits = logitsGraph(g) {
            let logitsEngine = try lower(logits, maxBatch: batches.max()!, seed: seed).engine
            try logitsEngine.compile(training: false)
            copyWeights(from: engine, to: logitsEngine)
            out.append(try writeCase(name: name + " (logits)", graph: logits, engine: logitsEngine, parameters: w.parameters,
                                     buffers: w.buffers, batches: batches, seed: seed &+ 1, directory: directory))
        }
        return out
    }

    /// Runs check_onnx.py on the cases; returns its result per case name.
    static func run(_ cases: [[String: Any]], python: String, directory: URL,
                    file: StaticString = #filePath, line: UInt = #line) throws -> [String: [String: Any]] {
        let manifest = directory.appendingPathComponent("manifest.json")
        try JSONSerialization.data(withJSONObject: ["cases": cases]).write(to: manifest)
        let script = PythonEnvironment.packageRoot.appendingPathComponent("Tests/ExportTests/python/check_onnx.py").path
        let (status, output) = PythonEnvironment.run(python, [script, "models", manifest.path])
        XCTAssertEqual(status, 0, output, file: file, line: line)
        var results: [String: [String: Any]] = [:]
        for lineText in output.split(separator: "\n") where lineText.hasPrefix("{") {
            if let object = try JSONSerialization.jsonObject(with: Data(lineText.utf8)) as? [String: Any], let name = object["name"] as? String {
                results[name] = object
            }
        }
        XCTAssertEqual(Set(results.keys), Set(cases.map { $0["name"] as! String }), "check_onnx.py output:\n\(output)", file: file, line: line)
        return results
    }

    /// Removes a temporary directory, unless DSL_KEEP_ONNX_FILES is set (then it prints its
    /// path: the models can be opened in Netron or inspected with onnx).
    static func remove(_ directory: URL) {
        if ProcessInfo.processInfo.environment["DSL_KEEP_ONNX_FILES"] != nil {
            print("onnx: files kept in \(directory.path)")
            return
        }
        try? FileManager.default.removeItem(at: directory)
    }

    /// A fresh temporary directory.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
