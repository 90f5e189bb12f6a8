import DSLEngine
import DSLExport
import DSLIR
import DSLTraining
import Foundation
import PythonTestSupport
import XCTest

/// Specs and helpers of the PyTorch export tests.
enum PyTorchFixture {
    /// The package root.
    static var root: URL { PythonEnvironment.packageRoot }

    /// Every spec of `specs/`, by file name.
    static func shippedSpecs() throws -> [(name: String, text: String)] {
        let directory = root.appendingPathComponent("specs")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".dsl") }.sorted()
        return try files.map { ($0, try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8)) }
    }

    /// Issue #18's constructs (airbench94): batch norm without a scale and with its own momentum
    /// and ε (standalone and a convolution's), the scale layer, init=whiten|dirac|torch, freeze
    /// and train-epochs. Shared with ONNXExportTests.
    static let issue18Constructs = """
        input 9x9x3
        w: conv 2 1 24 valid init=whiten freeze=weight train-epochs=3 act=gelu
        conv 3 1 32 nobias act=none init=dirac
        pool max 2 2
        bn scale=off momentum=0.4 eps=1e-12
        gelu
        conv 3 1 16 init=torch bn bias=on bn-scale=off bn-eps=1e-3 bn-momentum=0.3 act=gelu
        conv 4 1 16 nobias init=dirac bn bn-momentum=0.2 freeze=bias
        bn eps=1e-3 freeze=weight
        fc 12 init=torch act=relu train-epochs=2
        fc 10 nobias init=torch freeze
        scale 1/9
        softmax

        """

    /// Small specs that use every construct the shipped ones do not: every conv option, an even
    /// kernel, ceil pooling whose last window overhangs, average pooling over padding, a softmax
    /// inside the network, fc on a map, add of three branches of different widths, labels that
    /// are not Python identifiers or clash with nn.Module (`3a`, `training`, `forward`), repeats,
    /// block calls, inception with zero columns, pyramids (basic, bottleneck, widen=mul, a
    /// shortcut on a 1x1 map), a per-pixel classifier.
    static let constructSpecs: [(name: String, text: String)] = [
        ("constructs.dsl", """
        network constructs
        input 15x15x3
        block unit(c) {
          conv 3 1 c bn
          conv 3 1 c bn act=linear
        }
        3a: conv 3 1 8 pad=valid
        conv 4 1 8
        conv 3 2 12 pad=2 nobias leaky
        conv 1 1 12 bn bias=on act=leaky slope=0.2
        training: conv 3 1 12 bn=off relu
        pool max 2 2 ceil
        pool avg 3 1 pad=1
        forward: bn
        leaky 0.3
        relu
        res: add {
          unit(12)
        } {
        }
        add zeropad {
          conv 1 1 16
        } {
          conv 1 1 8 bn
        } {
        }
        concat { conv 1 1 4 } { pool max 3 1 pad=1 ; dropout 0.3 } { conv 3 1 4 ; softmax }
        repeat 2 {
          x: conv 1 1 8 linear
        }
        inception<4, 3, 5, 2, 3, 2> bn
        inception<0, 0, 4, 0, 0, 0> nobias
        pool avg 3 2 ceil
        dropout 0.5
        fc 20 act=relu
        dropout 0.2
        fc 10 nobias
        softmax

        """),
        ("pyramids.dsl", """
        network pyramids
        input 16x16x4
        conv 3 1 8 bn act=linear
        p: pyramid 1.5 1
        q: pyramid 6 1 bottleneck widen=add
        pyramid 2 1 widen=mul
        bn
        relu
        gap
        fc 5
        softmax

        """),
        ("names.dsl", """
        network names
        input 8x8x3
        conv1: relu
        conv 3 1 8
        conv 3 1 8
        block b(c) {
          conv 1 1 c
          pool avg 2 1
        }
        b(4)
        b(4)
        s: b(6)
        gap
        softmax

        """),
        // Issue #13: rectangular, dilated, grouped, depthwise and asymmetrically padded
        // convolutions, the new activations, squeeze-and-excitation (mul), adaptive pooling,
        // add of equal widths.
        ("issue13.dsl", """
        network issue13
        input 13x11x4
        conv 1x3 1 6 bn act=gelu
        conv 3x1 2x1 6 pad=1x0 act=silu
        conv 3 1 8 dilation=2 groups=2 bn act=relu6
        dwconv 3 2 bn act=hardswish
        dwconv 5 1 2 pad=2x1x2x3 nobias hardsigmoid
        conv 2x3 1 8 pad=0x0x1x1 act=sigmoid
        conv 3 1 8 dilation=1x2 act=tanh
        gelu
        swish
        relu6
        hardswish
        hardsigmoid
        sigmoid
        tanh
        res: add {
          conv 1 1 8 bn
          se: mul {} { gap ; conv 1 1 4 act=relu ; conv 1 1 8 act=hardsigmoid }
        } {
        }
        pool avg to 3x2
        fc 6 act=gelu
        mul { fc 6 act=sigmoid } { }
        fc 5
        softmax

        """),
        // Issue #18 (airbench94): see issue18Constructs.
        ("issue18.dsl", "network issue18\n" + issue18Constructs),
        ("pixels.dsl", """
        network pixels
        input 9x9x2
        conv 3 1 6
        conv 1 1 3
        softmax

        """),
    ]

    /// The interpreter of .build/venv when it imports torch and safetensors (skipped without
    /// them, see `PythonEnvironment.requireTorch`).
    static func torchPython(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try PythonEnvironment.requireTorch(["torch", "safetensors"], file: file, line: line)
    }

    /// A checked spec's graph and costs; fails the test on errors.
    static func check(_ name: String, _ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> (Graph, NetworkCost) {
        let checked = Frontend.check(text: text, path: name)
        guard let g = checked.graph, let cost = checked.cost else {
            XCTFail("\(name): \(checked.diagnostics.items.map(\.message))", file: file, line: line)
            throw XCTSkip("spec does not check")
        }
        return (g, cost)
    }

    /// A fresh temporary directory, removed when the test ends.
    static func directory(_ test: XCTestCase, _ label: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    /// The graph whose output is the logits: the final softmax removed (the PyTorch module's output).
    static func logitsGraph(_ g: Graph) -> Graph {
        guard case .softmax = g.nodes[g.output].op else { return g }
        return Graph(name: g.name, nodes: Array(g.nodes.dropLast()), modules: g.modules)
    }

    /// The graph of the training-step check: dropout off, and a final softmax (the loss node)
    /// appended to a network without one (the loss is then over every pixel of its output).
    static func trainingGraph(_ g: Graph) -> (graph: Graph, appendedSoftmax: Bool) {
        var nodes = g.nodes.map { n -> Node in
            var n = n
            if case .dropout = n.op { n.op = .dropout(0) }
            return n
        }
        if case .softmax = g.nodes[g.output].op { return (Graph(name: g.name, nodes: nodes, modules: g.modules), false) }
        var loss = nodes[nodes.count - 1]
        loss.id = nodes.count
        loss.name = "export_check_softmax"
        loss.op = .softmax
        loss.inputs = [nodes.count - 1]
        loss.module = nil
        nodes.append(loss)
        return (Graph(name: g.name, nodes: nodes, modules: g.modules), true)
    }

    /// The engine's parameters and buffers by name, copied out.
    static func tensors(_ engine: EngineGraph) throws -> [String: StoredTensor] {
        var result: [String: StoredTensor] = [:]
        for p in engine.parameters {
            result[p.name] = try StoredTensor(shape: p.shape, floats: Array(UnsafeBufferPointer(start: p.value, count: p.count)))
        }
        for b in engine.buffers {
            result[b.name] = try StoredTensor(shape: b.shape, floats: Array(UnsafeBufferPointer(start: b.value, count: b.count)))
        }
        return result
    }

    /// `count` normals N(0, 1) from a seed.
    static func normals(_ count: Int, seed: UInt64) -> [Float] {
        var random = EngineRandom(seed: seed)
        return (0..<count).map { _ in Float(random.normal()) }
    }
}

/// The `dsl` binary the build made (as CLITests find it): `DSL_BINARY`, else the sibling of
/// the test bundle, else `.build/debug/dsl`.
enum DSLBinary {
    static let path: String? = {
        let fm = FileManager.default
        if let p = ProcessInfo.processInfo.environment["DSL_BINARY"], fm.isExecutableFile(atPath: p) { return p }
        var candidates: [URL] = []
        for b in Bundle.allBundles + [Bundle.main] where b.bundlePath.hasSuffix(".xctest") {
            candidates.append(URL(fileURLWithPath: b.bundlePath).deletingLastPathComponent().appendingPathComponent("dsl"))
        }
        if let a0 = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: a0).deletingLastPathComponent().appendingPathComponent("dsl"))
        }
        candidates.append(PythonEnvironment.packageRoot.appendingPathComponent(".build/debug/dsl"))
        return candidates.map(\.path).first { fm.isExecutableFile(atPath: $0) }
    }()

    /// Runs `dsl` to completion in the package root; fails the test when there is no binary.
    static func run(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> (status: Int32, output: String) {
        guard let path else {
            XCTFail("cannot find the dsl binary; run 'swift build' first or set DSL_BINARY", file: file, line: line)
            throw XCTSkip("no dsl binary")
        }
        return PythonEnvironment.run(path, arguments)
    }

    /// The `loss` of `dsl eval --format json`.
    static func evalLoss(_ spec: String, weights: String, data: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
        let (status, output) = try run(["eval", spec, "--weights", weights, "--format", "json"] + (data.map { ["--data", $0] } ?? []), file: file, line: line)
        XCTAssertEqual(status, 0, output, file: file, line: line)
        let json = String(output[(output.firstIndex(of: "{") ?? output.startIndex)...])
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return try XCTUnwrap(object?["loss"] as? Double, output, file: file, line: line)
    }
}
