import DSLEngine
import DSLExport
import DSLIR
import Foundation
import PythonTestSupport
import XCTest

/// The PyTorch exporter without PyTorch: the name table against the engine, identifiers, the
/// generated Python's syntax (with any python3), the variables of `forward`.
final class PyTorchExportTests: XCTestCase {
    /// Every spec's table maps the engine's parameters and buffers, in the engine's order and
    /// shapes, one-to-one to state_dict keys made of Python identifiers.
    func testNameTableIsTheEnginesParametersOneToOne() throws {
        for (name, text) in try PyTorchFixture.shippedSpecs() + PyTorchFixture.constructSpecs {
            let (g, cost) = try PyTorchFixture.check(name, text)
            let entries = PyTorchExport.stateEntries(g)
            let lowered = try lower(g, maxBatch: 1, seed: 1)
            try lowered.engine.compile(training: false)
            XCTAssertEqual(entries.filter { !$0.isBuffer }.map(\.dslName), lowered.engine.parameters.map(\.name), name)
            XCTAssertEqual(entries.filter(\.isBuffer).map(\.dslName), lowered.engine.buffers.map(\.name), name)
            XCTAssertEqual(entries.filter { !$0.isBuffer }.map(\.dslShape), lowered.engine.parameters.map(\.shape), name)
            XCTAssertEqual(entries.filter(\.isBuffer).map(\.dslShape), lowered.engine.buffers.map(\.shape), name)
            XCTAssertEqual(entries.filter { !$0.isBuffer }.reduce(0) { $0 + $1.dslShape.reduce(1, *) }, cost.params, name)
            XCTAssertEqual(Set(entries.map(\.stateKey)).count, entries.count, "\(name): two tensors share a state_dict key")
            for e in entries {
                for part in e.stateKey.split(separator: ".", omittingEmptySubsequences: false) {
                    XCTAssertTrue(isIdentifier(String(part)), "\(name): '\(part)' of \(e.stateKey) is not a Python identifier")
                    XCTAssertFalse(["train", "training", "forward", "eval", "None", "lambda"].contains(String(part)), "\(name): \(e.stateKey)")
                }
                switch e.layout {
                case .conv: XCTAssertEqual(e.dslShape.count, 4)
                case .linear: XCTAssertEqual(e.dslShape.count, 2)
                case .vector: XCTAssertEqual(e.dslShape.count, 1)
                }
            }
        }
    }

    func testNamesThatAreNotIdentifiers() throws {
        let (g, _) = try PyTorchFixture.check("constructs.dsl", PyTorchFixture.constructSpecs[0].text)
        let keys = Dictionary(uniqueKeysWithValues: PyTorchExport.stateEntries(g).map { ($0.dslName, $0.stateKey) })
        XCTAssertEqual(keys["3a.weight"], "_3a.weight")                       // a leading digit
        XCTAssertEqual(keys["training.weight"], "training_.weight")           // nn.Module's attribute
        XCTAssertEqual(keys["forward.running_mean"], "forward_.running_mean")  // nn.Module's method
        XCTAssertEqual(keys["x.2.weight"], "x_2.weight")                      // a repeat's suffix
        XCTAssertEqual(keys["unit1.conv2.bn.weight"], "unit1.conv2.bn.weight")  // a block call is a submodule
        XCTAssertEqual(keys["inception1.b2.reduce.bn.running_var"], "inception1.b2_reduce.bn.running_var")
        XCTAssertEqual(keys["conv3.bias"], "conv3.bias")                      // bias and batch norm
        let (p, _) = try PyTorchFixture.check("pyramids.dsl", PyTorchFixture.constructSpecs[1].text)
        let pyramid = Set(PyTorchExport.stateEntries(p).map(\.stateKey))
        XCTAssertTrue(pyramid.contains("q.s2.u1.conv3.bn.weight"))
        XCTAssertTrue(pyramid.contains("pyramid1.s3.u1.bn.running_var"))
        let (n, _) = try PyTorchFixture.check("names.dsl", PyTorchFixture.constructSpecs[2].text)
        XCTAssertEqual(PyTorchExport.stateEntries(n).map(\.stateKey).filter { $0.hasSuffix(".weight") },
                       ["conv1_2.weight", "conv2.weight", "b1.conv1.weight", "b2.conv1.weight", "s.conv1.weight"])
    }

    func testClassNames() {
        XCTAssertEqual(PyTorchExport.className(for: "all-cnn-c"), "AllCnnC")
        XCTAssertEqual(PyTorchExport.className(for: "pyramidnet-110-a48"), "Pyramidnet110A48")
        XCTAssertEqual(PyTorchExport.className(for: "3a"), "Net3a")
        XCTAssertEqual(PyTorchExport.className(for: "..."), "Net")
        XCTAssertEqual(PyTorchExport.className(for: "block"), "BlockNet")
        XCTAssertEqual(PyTorchExport.className(for: "my_net.v2"), "MyNetV2")
    }

    /// The module file and the training script of every spec are valid Python (checked by
    /// python3's own parser when there is one), and the module is plain ASCII.
    func testGeneratedPythonParses() throws {
        let dir = try PyTorchFixture.directory(self, "pytorch-syntax")
        var files: [String] = []
        for (name, text) in try PyTorchFixture.shippedSpecs() + PyTorchFixture.constructSpecs {
            let (g, _) = try PyTorchFixture.check(name, text)
            let module = try PyTorchExport.module(g, source: "specs/\(name)")
            XCTAssertTrue(module.unicodeScalars.allSatisfy(\.isASCII), name)
            XCTAssertTrue(module.contains("class \(PyTorchExport.className(for: g.name))(nn.Module):"), name)
            let path = dir.appendingPathComponent(String(name.dropLast(4)) + ".py").path
            try Data(module.utf8).write(to: URL(fileURLWithPath: path))
            files.append(path)
            if case .softmax = g.nodes[g.output].op {
                let script = try PyTorchExport.trainingScript(g, source: name)
                XCTAssertTrue(script.hasSuffix("if __name__ == \"__main__\":\n    sys.exit(main())\n"), name)
                let scriptPath = dir.appendingPathComponent(String(name.dropLast(4)) + "_train.py").path
                try Data(script.utf8).write(to: URL(fileURLWithPath: scriptPath))
                files.append(scriptPath)
            } else {
                XCTAssertThrowsError(try PyTorchExport.trainingScript(g, source: name), name)
            }
        }
        let check = "import ast, sys\nfor p in sys.argv[1:]:\n    ast.parse(open(p).read(), p)\nprint('parsed', len(sys.argv) - 1)\n"
        let (status, output) = PythonEnvironment.run("/usr/bin/env", ["python3", "-c", check] + files)
        if status != 0 && output.contains("No such file") { throw XCTSkip("no python3 to parse the generated files") }
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("parsed \(files.count)"), output)
    }

    /// forward keeps only the values still needed: a 54-unit PyramidNet needs two variables
    /// (the unit's input, later its shortcut, and its branch), GoogLeNet's inception modules four
    /// (three branches held for the concat while the fourth, the pooling, reuses the input's).
    func testForwardReusesVariables() throws {
        for (spec, most) in [("pyramidnet-110-a48.dsl", 2), ("googlenet.dsl", 4), ("all-cnn-c.dsl", 1)] {
            let text = try String(contentsOf: PyTorchFixture.root.appendingPathComponent("specs/" + spec), encoding: .utf8)
            let (g, _) = try PyTorchFixture.check(spec, text)
            let module = try PyTorchExport.module(g, source: spec)
            let forward = module.components(separatedBy: "    def forward(self, x):\n").last!.components(separatedBy: "\n\n")[0]
            var variables = Set<String>()
            for line in forward.split(separator: "\n") {
                let code = line.trimmingCharacters(in: .whitespaces)
                if let equals = code.range(of: " = "), !code.hasPrefix("#") { variables.insert(String(code[..<equals.lowerBound])) }
            }
            XCTAssertEqual(variables.count, most, "\(spec): \(variables.sorted())")
        }
    }

    func testPythonLiterals() throws {
        let (g, _) = try! PyTorchFixture.check("q.dsl", "network q\ninput 4x4x1\nconv 1 1 2\ngap\nsoftmax\n")
        let module = try PyTorchExport.module(g, source: "dir/it's \"odd\"\\ \u{e9}.dsl")
        XCTAssertTrue(module.contains(#"SOURCE = "dir/it's \"odd\"\\ \u00e9.dsl""#), module)
        XCTAssertTrue(module.hasPrefix("# q: PyTorch module exported by dsl from dir/it's \\\"odd\\\"\\\\ \\u00e9.dsl.\n"))
    }

    private func isIdentifier(_ s: String) -> Bool {
        guard let first = s.first, first == "_" || (first.isASCII && first.isLetter) else { return false }
        return s.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLetter || $0.isNumber)) }
    }
}
