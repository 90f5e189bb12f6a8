import DSLEngine
import DSLExport
import DSLIR
import DSLTraining
import Foundation
import PythonTestSupport
import XCTest

/// The ONNX export against dsl's engine: for every spec in specs/ and for small specs that
/// cover every construct of the language, the exported model passes onnx's full checker and
/// strict shape inference, and onnxruntime's outputs on random inputs (two batch sizes: the
/// batch dimension is dynamic) equal the engine's inference outputs within 1e-4 of the largest
/// output magnitude, for the probabilities and, before a final softmax, for the logits.
final class ONNXExportTests: XCTestCase {
    /// The tolerance of the acceptance criterion: max |onnxruntime − engine| ≤ 1e-4 · max |engine|.
    static let tolerance = 1e-4

    /// Small specs covering every construct: odd and non-square sizes, every convolution
    /// option, ceil pooling whose last window overhangs, average pooling with padding,
    /// softmax in the middle and over a map, add of unequal widths, leaky ReLU, fc on a map
    /// larger than 1×1 and before a convolution, 1×1 inputs, inception, pyramid, an identity network.
    static let constructSpecs: [(name: String, text: String)] = [
        ("convs", """
        input 23x19x3
        conv 3 1 8                                  # 23x19, bias, relu
        conv 3 2 9 pad=valid bn bias=on act=none    # 11x9
        conv 3 3 6 pad=1                            # 4x3, stride 3
        conv 4 1 6                                  # even kernel, pad 1: 3x2
        conv 5 2 7 pad=2 bn act=leaky slope=0.2     # 2x1
        conv 1 1 5 linear nobias
        conv 2 1 4 pad=1                            # 3x2
        conv 3 1 6 pad=2 bn                         # 5x4
        gap
        fc 5
        softmax
        """),
        ("pools-ceil", """
        input 9x8x4
        conv 3 1 6
        pool max 3 2 ceil             # 4x4; the last column window overhangs
        pool avg 3 2 pad=1 ceil       # 3x3; overhangs the padded input
        conv 1 1 5
        gap
        softmax
        """),
        ("pools-avg", """
        input 8x7x3
        pool avg 3 2 pad=1 ceil       # 5x4: rows overhang, columns do not
        pool avg 2 2 ceil             # 3x2: overhang without padding
        pool avg 3 1 pad=1            # zeros counted at the border
        conv 1 1 4
        pool max 2 3 ceil             # 1x1: stride larger than the window
        softmax
        """),
        ("pools-padded", """
        input 10x10x2
        pool max 3 2 pad=1 ceil       # 6x6, overhang past the padding
        pool avg 3 3 ceil             # 2x2
        pool avg 5 2 pad=2 ceil       # 2x2, padding 2 and an overhang
        pool 2 1                      # floor, stride 1
        conv 1 1 3
        softmax
        """),
        ("pools-default", """
        input 7x7x3
        pool                          # max 3x3/2 pad 1: 4x4
        pool 2                        # 2x2
        pool avg                      # avg 3x3/2 pad 1: 1x1
        softmax
        """),
        ("one-by-one", """
        input 1x1x7
        conv 1 1 5
        conv 3 1 4 bn                 # padding around a single pixel
        pool 2 2 ceil                 # 1x1 -> 1x1 (the window overhangs)
        pool avg 2 2 ceil
        bn
        fc 3
        softmax
        """),
        ("softmax-map", """
        input 6x5x3
        conv 3 1 8 linear
        softmax                       # in the middle, over every pixel
        conv 3 1 4
        softmax                       # over a 6x5 map: output (N, 4, 6, 5)
        """),
        ("softmax-flat", """
        input 4x4x2
        fc 6
        softmax
        fc 3 act=relu
        bn                            # batch norm of an (N, C) tensor
        leaky 0.3
        softmax
        """),
        ("merges", """
        input 8x8x4
        add zeropad { conv 3 1 6 } { } { conv 1 1 9 linear }     # widths 6, 4, 9: Sum of padded inputs
        relu
        r: add zeropad { conv 3 1 3 bn } { conv 3 1 5 act=leaky }
        concat { conv 1 1 3 } { pool avg 3 1 pad=1 } { }
        leaky 0.3
        bn
        dropout 0.3
        concat { conv 1 1 2 }
        fc 7 act=leaky slope=0.05     # fc on an 8x8 map
        dropout 0.5
        fc 5 nobias
        softmax
        """),
        ("flat-and-maps", """
        input 5x3x4
        conv 3 1 6
        fc 12 act=relu                # (N, 12)
        add zeropad { conv 1 1 12 } { } { fc 8 }
        add zeropad { fc 6 } { fc 4 }
        concat { fc 4 } { gap } { conv 1 1 2 }
        conv 3 1 5
        pool avg 2 2 ceil
        softmax
        """),
        ("issue18", PyTorchFixture.issue18Constructs),
        ("inception", """
        input 9x9x6
        inception<4, 3, 5, 2, 3, 2> bn
        inception<4, 0, 5, 0, 3, 0> act=leaky slope=0.1
        pool max 3 2 ceil
        gap
        fc 4
        softmax
        """),
        ("pyramid", """
        input 9x9x4
        conv 3 1 8 bn act=linear
        pyramid 3 1 bottleneck widen=mul
        p2: pyramid 2 1
        bn
        relu
        gap
        fc 3
        softmax
        """),
        ("identity", """
        input 3x5x2
        dropout 0.2
        """),
        ("activations", """
        input 2x3x3
        relu
        leaky 0
        conv 1 1 3 act=none
        leaky
        """),
        // Issue #13: rectangular, dilated, grouped, depthwise and asymmetrically padded
        // convolutions, every new activation after a conv, alone and after fc, and mul.
        ("convs-13", """
        input 11x13x4
        conv 1x3 1 6 bn act=gelu                    # 11x13
        conv 3x1 2x1 6 pad=1x0 act=silu             # 6x13
        conv 3 1 8 dilation=2 groups=2 act=relu6    # pads 2: 6x13
        dwconv 3 2 bn act=hardswish                 # 3x7
        dwconv 5 1 2 pad=2x1x2x3 nobias hardsigmoid # 3x7x16 (rows 3+4-5+1, columns 7+4-5+1)
        conv 2x3 1 8 pad=0x0x1x1 act=sigmoid        # 3x6
        conv 3 1 8 dilation=1x2 act=tanh
        gelu
        swish
        relu6
        hardswish
        hardsigmoid
        sigmoid
        tanh
        se: mul {} { gap ; conv 1 1 4 act=relu ; conv 1 1 8 act=hardsigmoid }
        mul { conv 1 1 8 } { relu } { }
        fc 6 act=gelu
        fc 5 act=silu
        mul { fc 5 act=sigmoid } { }                 # flat (N, C) inputs
        add { fc 5 } { }
        softmax
        """),
        // Adaptive pooling: uniform bins (AveragePool), overlapping bins (MatMul), 1x1
        // (GlobalAveragePool), and a flat excitation broadcast over a map.
        ("adaptive-13", """
        input 12x10x3
        conv 3 1 4
        pool avg to 12x10                           # bins of one cell
        pool avg to 4x5                             # 3x2 bins
        a: pool avg to 3x2                          # 4 -> 3 rows and 5 -> 2 columns overlap
        mul {} { gap ; fc 4 act=sigmoid }           # (N, 4) broadcast over 3x2
        conv 1 1 6
        pool avg to 2x1
        pool avg to 1
        softmax
        """),
    ]

    /// Every spec in specs/.
    static var specFiles: [URL] {
        let dir = PythonEnvironment.packageRoot.appendingPathComponent("specs")
        let files = (try? FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)) ?? []
        return files.filter { $0.pathExtension == "dsl" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    private func python() throws -> String {
        try PythonEnvironment.require(modules: ["onnx", "onnxruntime", "numpy"], packages: ["onnx", "onnxruntime", "numpy"])
    }

    /// Checks every case's result: the checker, strict shape inference and the model's form
    /// passed, and the outputs agree within the tolerance. Returns the largest relative difference.
    @discardableResult
    private func assertAgree(_ results: [String: [String: Any]], file: StaticString = #filePath, line: UInt = #line) -> Double {
        var largest = 0.0
        for (name, r) in results.sorted(by: { $0.key < $1.key }) {
            let relative = r["relative"] as? Double ?? .infinity
            largest = max(largest, relative)
            XCTAssertEqual(r["ok"] as? Bool, true, "\(name): \(r["errors"] ?? "no result")", file: file, line: line)
            XCTAssertLessThanOrEqual(relative, Self.tolerance, "\(name): max |onnxruntime − engine| = \(r["max_abs_diff"] ?? "?") of max |engine| \(r["max_abs_expected"] ?? "?")", file: file, line: line)
            print(String(format: "onnx %@: relative difference %.3g (max abs %.3g of %.3g), output %@", name, relative,
                         r["max_abs_diff"] as? Double ?? .nan, r["max_abs_expected"] as? Double ?? .nan, "\(r["output_shapes"] ?? "")"))
        }
        return largest
    }

    func testEverySpecMatchesTheEngine() throws {
        let python = try python()
        let directory = try ONNXCheck.temporaryDirectory()
        defer { ONNXCheck.remove(directory) }
        let files = Self.specFiles
        XCTAssertGreaterThanOrEqual(files.count, 20, "specs/ holds the 20 reference networks")
        var cases: [[String: Any]] = []
        for (i, url) in files.enumerated() {
            let g = try ONNXCheck.graph(try String(contentsOf: url, encoding: .utf8), path: url.path)
            // The large networks (GoogLeNet at 224x224) with batches 2 and 1, the others 2 and 3.
            let batches = g.inputShape.elements > 100_000 ? [2, 1] : [2, 3]
            cases += try ONNXCheck.cases(name: url.lastPathComponent, graph: g, batches: batches, seed: UInt64(100 + i), directory: directory)
        }
        let largest = assertAgree(try ONNXCheck.run(cases, python: python, directory: directory))
        print(String(format: "onnx: largest relative difference over specs/: %.3g", largest))
    }

    func testEveryConstructMatchesTheEngine() throws {
        let python = try python()
        let directory = try ONNXCheck.temporaryDirectory()
        defer { ONNXCheck.remove(directory) }
        var cases: [[String: Any]] = []
        for (i, spec) in Self.constructSpecs.enumerated() {
            let g = try ONNXCheck.graph(spec.text, path: spec.name + ".dsl")
            cases += try ONNXCheck.cases(name: spec.name, graph: g, batches: [2, 3], seed: UInt64(500 + i), directory: directory)
        }
        let results = try ONNXCheck.run(cases, python: python, directory: directory)
        let largest = assertAgree(results)
        print(String(format: "onnx: largest relative difference over the construct specs: %.3g", largest))
        // The output layouts: (N, C) for a 1x1 output, NCHW for a map.
        XCTAssertEqual(results["softmax-map"]?["output_shapes"] as? [[Int]], [[2, 4, 6, 5], [3, 4, 6, 5]])
        XCTAssertEqual(results["convs"]?["output_shapes"] as? [[Int]], [[2, 5], [3, 5]])
        XCTAssertEqual(results["identity"]?["output_shapes"] as? [[Int]], [[2, 2, 3, 5], [3, 2, 3, 5]])
    }

    /// The comparison detects a wrong weight: a changed batch-norm statistic, a convolution
    /// weight, or two fc rows exchanged (a flattening order error) each exceed the tolerance,
    /// while the unchanged export passes.
    func testAPerturbedWeightIsDetected() throws {
        let python = try python()
        let directory = try ONNXCheck.temporaryDirectory()
        defer { ONNXCheck.remove(directory) }
        let g = try ONNXCheck.graph("""
        input 6x6x3
        conv 3 1 8 bn
        conv 3 2 8
        fc 5
        softmax
        """)
        let logits = ONNXCheck.logitsGraph(g)!
        let engine = try ONNXCheck.trainedEngine(g, maxBatch: 2, seed: 9)
        let logitsEngine = try lower(logits, maxBatch: 2, seed: 9).engine
        try logitsEngine.compile(training: false)
        ONNXCheck.copyWeights(from: engine, to: logitsEngine)
        let w = ONNXExport.weights(of: engine)
        XCTAssertNotEqual(w.buffers["conv1.bn.running_mean"]!, [Float](repeating: 0, count: 8), "the statistics were trained")
        var variance = w.buffers, conv = w.parameters, fc = w.parameters
        variance["conv1.bn.running_var"]![3] *= 1.5
        conv["conv2.weight"]![17] += 0.05
        let rowLength = 5, a = 1 * 8 + 2, b = 2 * 8 + 1     // features (h, w, c) = (0, 1, 2) and (0, 2, 1)
        for o in 0..<rowLength { fc["fc1.weight"]!.swapAt(a * rowLength + o, b * rowLength + o) }
        var cases: [[String: Any]] = []
        for (name, parameters, buffers) in [("unchanged", w.parameters, w.buffers), ("bn statistic", w.parameters, variance),
                                            ("conv weight", conv, w.buffers), ("fc rows", fc, w.buffers)] {
            cases.append(try ONNXCheck.writeCase(name: name, graph: logits, engine: logitsEngine, parameters: parameters, buffers: buffers,
                                                 batches: [2], seed: 1, directory: directory))
        }
        let results = try ONNXCheck.run(cases, python: python, directory: directory)
        for (name, r) in results {
            XCTAssertEqual(r["ok"] as? Bool, true, "\(name): \(r["errors"] ?? "")")
            let relative = r["relative"] as? Double ?? 0
            if name == "unchanged" {
                XCTAssertLessThanOrEqual(relative, Self.tolerance, name)
            } else {
                XCTAssertGreaterThan(relative, Self.tolerance, "\(name): a perturbed weight must be detected")
            }
        }
    }

    /// The checks fail on an invalid model: the checker's verdict is read, not assumed.
    func testTheCheckerRejectsAnInvalidModel() throws {
        let python = try python()
        let directory = try ONNXCheck.temporaryDirectory()
        defer { ONNXCheck.remove(directory) }
        var graph = ONNXGraph(name: "broken")
        graph.inputs = [ONNXValueInfo(name: "input", shape: [.parameter("N"), .value(1), .value(4), .value(4)])]
        graph.outputs = [ONNXValueInfo(name: "output", shape: [.parameter("N"), .value(1), .value(2), .value(2)])]
        graph.nodes = [ONNXNode("MaxPool", name: "pool", inputs: ["input"], outputs: ["output"])]   // no kernel_shape
        let model = directory.appendingPathComponent("broken.onnx")
        try Data(ONNXModel(irVersion: ONNXExport.irVersion, opsetVersion: ONNXExport.opsetVersion, producerName: "dsl", graph: graph).encoded()).write(to: model)
        let results = try ONNXCheck.run([["name": "broken", "model": model.path, "initializers": [String](), "runs": [[String: String]]()]],
                                        python: python, directory: directory)
        XCTAssertEqual(results["broken"]?["ok"] as? Bool, false)
        let errors = (results["broken"]?["errors"] as? [String] ?? []).joined(separator: "\n")
        XCTAssertTrue(errors.contains("check_model"), errors)
        XCTAssertTrue(errors.contains("kernel_shape"), errors)
    }

    // MARK: Weights (no Python)

    private func quickstart() throws -> Graph {
        try ONNXCheck.graph(String(contentsOf: PythonEnvironment.packageRoot.appendingPathComponent("specs/quickstart.dsl"), encoding: .utf8),
                            path: "quickstart.dsl")
    }

    /// The tensors the exporter expects are exactly the engine's, in its order and shapes.
    func testTensorListMatchesTheEngine() throws {
        for (name, text) in Self.constructSpecs + Self.specFiles.map({ ($0.lastPathComponent, try! String(contentsOf: $0, encoding: .utf8)) }) {
            let g = try ONNXCheck.graph(text, path: name)
            let engine = try lower(g, maxBatch: 1, seed: 1).engine
            try engine.compile(training: false)
            let expected = engine.parameters.map { ONNXExport.TensorSpec(name: $0.name, shape: $0.shape, isBuffer: false) }
                + engine.buffers.map { ONNXExport.TensorSpec(name: $0.name, shape: $0.shape, isBuffer: true) }
            XCTAssertEqual(ONNXExport.tensors(of: g), expected, name)
        }
    }

    func testBadWeightsAreRefusedByName() throws {
        let g = try quickstart()
        let engine = try lower(g, maxBatch: 1, seed: 3).engine
        try engine.compile(training: false)
        let w = ONNXExport.weights(of: engine)
        func message(_ parameters: [String: [Float]], _ buffers: [String: [Float]]) -> String {
            do {
                _ = try ONNXExport.model(g, parameters: parameters, buffers: buffers)
                return "no error"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(message(w.parameters, w.buffers), "no error")
        var p = w.parameters
        p["conv2.weight"] = nil
        XCTAssertTrue(message(p, w.buffers).contains("no parameter 'conv2.weight'"), message(p, w.buffers))
        p = w.parameters
        p["conv2.weight"]!.removeLast()
        XCTAssertTrue(message(p, w.buffers).contains("'conv2.weight' has 18431 values"), message(p, w.buffers))
        p = w.parameters
        p["fc1.bias"]![0] = .nan
        XCTAssertTrue(message(p, w.buffers).contains("'fc1.bias' holds nan"), message(p, w.buffers))
        p = w.parameters
        p["fc2.weight"] = [1]
        XCTAssertTrue(message(p, w.buffers).contains("'fc2.weight' is not a parameter or buffer"), message(p, w.buffers))
        var b = w.buffers
        b["conv1.bn.running_var"] = nil
        XCTAssertTrue(message(w.parameters, b).contains("no buffer 'conv1.bn.running_var'"), message(w.parameters, b))
    }

    /// Initialised weights are the engine's for the seed, whatever its batch and mode (those
    /// `dsl train --seed S` starts from); another seed gives other weights.
    func testInitialWeights() throws {
        let g = try quickstart()
        let engine = try lower(g, maxBatch: 4, seed: 5).engine
        try engine.compile(training: true)
        let initial = try ONNXExport.initialWeights(of: g, seed: 5)
        XCTAssertEqual(initial.parameters, ONNXExport.weights(of: engine).parameters)
        XCTAssertEqual(initial.buffers, ONNXExport.weights(of: engine).buffers)
        XCTAssertEqual(Set(initial.parameters.keys).count + Set(initial.buffers.keys).count, ONNXExport.tensors(of: g).count)
        XCTAssertNotEqual(try ONNXExport.initialWeights(of: g, seed: 6).parameters["conv1.weight"], initial.parameters["conv1.weight"])
    }

    /// A checkpoint's weights give the same model as the engine they were saved from; a
    /// checkpoint of another network is refused, naming the file.
    func testCheckpointWeights() throws {
        let g = try quickstart()
        let engine = try ONNXCheck.trainedEngine(g, maxBatch: 2, seed: 4)
        let w = ONNXExport.weights(of: engine)
        var tensors: [String: StoredTensor] = [:]
        for p in engine.parameters { tensors[p.name] = try StoredTensor(shape: p.shape, floats: w.parameters[p.name]!) }
        for b in engine.buffers { tensors[b.name] = try StoredTensor(shape: b.shape, floats: w.buffers[b.name]!) }
        let directory = try ONNXCheck.temporaryDirectory()
        defer { ONNXCheck.remove(directory) }
        let path = directory.appendingPathComponent("quickstart.safetensors").path
        try TrainingCheckpoint(parameters: tensors, epoch: 0, step: 0, metadata: ["network": g.name, "spec_hash": Trainer.hash(g)]).write(to: path)
        let checkpoint = try TrainingCheckpoint.read(from: path)
        let fromCheckpoint = try ONNXExport.weights(of: checkpoint, for: g, file: path)
        XCTAssertEqual(fromCheckpoint.parameters, w.parameters)
        XCTAssertEqual(fromCheckpoint.buffers, w.buffers)
        XCTAssertEqual(try ONNXExport.model(g, parameters: fromCheckpoint.parameters, buffers: fromCheckpoint.buffers),
                       try ONNXExport.model(g, engine: engine))

        let other = try ONNXCheck.graph("input 32x32x3\nconv 3 1 8\ngap\nfc 10\nsoftmax\n")
        XCTAssertThrowsError(try ONNXExport.weights(of: checkpoint, for: other, file: path)) { error in
            XCTAssertTrue("\(error)".contains("\(path): the checkpoint is of a different network"), "\(error)")
        }
        var misshapen = checkpoint
        misshapen.parameters["fc1.weight"] = try StoredTensor(shape: [10, 128], floats: w.parameters["fc1.weight"]!)
        XCTAssertThrowsError(try ONNXExport.weights(of: misshapen, for: g, file: path)) { error in
            XCTAssertEqual("\(error)", "\(path): tensor 'fc1.weight' has shape [10, 128], the network's is [128, 10]")
        }
        var extra = checkpoint
        extra.parameters["conv9.weight"] = try StoredTensor(shape: [1], floats: [0])
        XCTAssertThrowsError(try ONNXExport.weights(of: extra, for: g, file: path)) { error in
            XCTAssertEqual("\(error)", "\(path): tensor 'conv9.weight' is not a parameter or buffer of this network")
        }
    }
}
