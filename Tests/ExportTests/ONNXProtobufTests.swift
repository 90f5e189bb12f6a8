import DSLExport
import Foundation
import PythonTestSupport
import XCTest

/// The protobuf encoder: byte-exact against the encoding guide's examples, and read back by
/// the onnx package (the format's reference reader) for the ONNX messages, including negative
/// and 64-bit integers and nested messages.
final class ONNXProtobufTests: XCTestCase {
    private func encoded(_ body: (inout ProtobufWriter) -> Void) -> [UInt8] {
        var w = ProtobufWriter()
        body(&w)
        return w.bytes
    }

    /// Varints: 7 bits per byte, least significant group first, continuation bit on all but
    /// the last; negative int64 values are 10 bytes of two's complement.
    func testVarints() {
        let cases: [(UInt64, [UInt8])] = [
            (0, [0x00]), (1, [0x01]), (127, [0x7F]), (128, [0x80, 0x01]), (150, [0x96, 0x01]), (300, [0xAC, 0x02]),
            (16_383, [0xFF, 0x7F]), (16_384, [0x80, 0x80, 0x01]), (UInt64(UInt32.max), [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]),
            (1 << 63, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
            (UInt64.max, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        ]
        for (value, bytes) in cases {
            XCTAssertEqual(encoded { $0.appendVarint(value) }, bytes, "\(value)")
        }
        XCTAssertEqual(encoded { $0.int64(1, -1) }, [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        XCTAssertEqual(encoded { $0.int64(1, Int64.min) }, [0x08] + [UInt8](repeating: 0x80, count: 9) + [0x01])
        XCTAssertEqual(encoded { $0.int64(1, -2) }, [0x08, 0xFE] + [UInt8](repeating: 0xFF, count: 8) + [0x01])
    }

    /// Keys and the other wire types, with the examples of the encoding guide
    /// (https://protobuf.dev/programming-guides/encoding/).
    func testFieldsAndWireTypes() {
        XCTAssertEqual(encoded { $0.int64(1, 150) }, [0x08, 0x96, 0x01])
        XCTAssertEqual(encoded { $0.string(2, "testing") }, [0x12, 0x07] + Array("testing".utf8))
        XCTAssertEqual(encoded { $0.message(3) { $0.int64(1, 150) } }, [0x1A, 0x03, 0x08, 0x96, 0x01])
        XCTAssertEqual(encoded { $0.packedInt64(4, [3, 270, 86_942]) }, [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05])
        XCTAssertEqual(encoded { $0.packedInt64(4, []) }, [])
        XCTAssertEqual(encoded { $0.float(2, 1) }, [0x15, 0x00, 0x00, 0x80, 0x3F])
        XCTAssertEqual(encoded { $0.float(2, -2.5) }, [0x15, 0x00, 0x00, 0x20, 0xC0])
        XCTAssertEqual(encoded { $0.double(1, 1) }, [0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
        XCTAssertEqual(encoded { $0.packedFloat(7, [1, -2.5]) }, [0x3A, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0])
        XCTAssertEqual(encoded { $0.int64(20, 7) }, [0xA0, 0x01, 0x07])        // field 20: a two-byte key
        XCTAssertEqual(encoded { $0.bytes(9, [UInt8](repeating: 1, count: 200)) }.prefix(3), [0x4A, 0xC8, 0x01])
        XCTAssertEqual(ProtobufWriter.littleEndianBytes([Int64(-1), 258]), [UInt8](repeating: 0xFF, count: 8) + [0x02, 0x01, 0, 0, 0, 0, 0, 0])
    }

    // MARK: Read back by onnx

    private func decode(_ kind: String, _ bytes: [UInt8], python: String, expectSuccess: Bool = true,
                        file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let directory = try ONNXCheck.temporaryDirectory()
        defer { ONNXCheck.remove(directory) }
        let url = directory.appendingPathComponent("message.pb")
        try Data(bytes).write(to: url)
        let script = PythonEnvironment.packageRoot.appendingPathComponent("Tests/ExportTests/python/check_onnx.py").path
        let (status, output) = PythonEnvironment.run(python, [script, "decode", kind, url.path])
        XCTAssertEqual(status == 0, expectSuccess, output, file: file, line: line)
        let json = output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
        return try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
    }

    private func python() throws -> String {
        try PythonEnvironment.require(modules: ["onnx", "numpy"], packages: ["onnx", "numpy"])
    }

    /// Integer attributes: negative, zero, large and the int64 extremes, packed.
    func testAttributesReadBack() throws {
        let python = try python()
        let ints: [Int64] = [-1, 0, 1, 300, -300, 1 << 40, Int64.max, Int64.min]
        let a = try decode("AttributeProto", ONNXAttribute("pads", .ints(ints)).encoded().bytes, python: python)
        XCTAssertEqual(a["name"] as? String, "pads")
        XCTAssertEqual(a["type"] as? String, "INTS")
        XCTAssertEqual(a["ints"] as? [String], ints.map { String($0) })
        let f = try decode("AttributeProto", ONNXAttribute("alpha", .float(-0.1)).encoded().bytes, python: python)
        XCTAssertEqual(f["type"] as? String, "FLOAT")
        XCTAssertEqual(Float((f["f"] as? Double) ?? 0), -0.1)
        let i = try decode("AttributeProto", ONNXAttribute("axis", .int(-3)).encoded().bytes, python: python)
        XCTAssertEqual(i["type"] as? String, "INT")
        XCTAssertEqual(i["i"] as? String, "-3")
        let fs = try decode("AttributeProto", ONNXAttribute("scales", .floats([1.5, -2, 0])).encoded().bytes, python: python)
        XCTAssertEqual(fs["type"] as? String, "FLOATS")
        XCTAssertEqual(fs["floats"] as? [Double], [1.5, -2, 0])
        let s = try decode("AttributeProto", ONNXAttribute("mode", .string("constant")).encoded().bytes, python: python)
        XCTAssertEqual(s["type"] as? String, "STRING")
        XCTAssertEqual(s["s"] as? String, Data("constant".utf8).base64EncodedString())
    }

    /// Tensors: dims (packed int64, beyond 32 bits too) and raw little-endian data, as numpy sees them.
    func testTensorsReadBack() throws {
        let python = try python()
        let values: [Float] = [0, 1, -1.5, 3.25e-7, 65_504, -Float.greatestFiniteMagnitude]
        let t = try decode("TensorProto", ONNXTensor(name: "conv1.weight", dims: [2, 1, 3], floats: values).encoded().bytes, python: python)
        XCTAssertEqual(t["name"] as? String, "conv1.weight")
        XCTAssertEqual(t["dims"] as? [String], ["2", "1", "3"])
        XCTAssertEqual(t["data_type"] as? Int, 1)
        XCTAssertEqual((t["array"] as? [Double])?.map { Float($0) }, values)
        let ints: [Int64] = [-1, Int64.max, Int64.min, 1 << 33]
        let u = try decode("TensorProto", ONNXTensor(name: "pads", dims: [4], int64s: ints).encoded().bytes, python: python)
        XCTAssertEqual(u["data_type"] as? Int, 7)
        XCTAssertEqual((u["array"] as? [NSNumber])?.map(\.int64Value), ints)
        // A dimension beyond 32 bits (the header only: no data of that size).
        var w = ProtobufWriter()
        w.packedInt64(1, [1 << 33, 1])
        w.int64(2, 1)
        w.string(8, "big")
        let big = try decode("TensorProto", w.bytes, python: python)
        XCTAssertEqual(big["dims"] as? [String], ["8589934592", "1"])
    }

    /// A whole model: nested messages four levels deep (model, graph, value info, type, shape,
    /// dimension), repeated messages, the opset import.
    func testModelReadsBack() throws {
        let python = try python()
        var graph = ONNXGraph(name: "tiny")
        graph.inputs = [ONNXValueInfo(name: "input", shape: [.parameter("N"), .value(3), .value(5), .value(7)], docString: "images")]
        graph.outputs = [ONNXValueInfo(name: "output", shape: [.parameter("N"), .value(3), .value(2), .value(3)])]
        graph.nodes = [ONNXNode("MaxPool", name: "pool", inputs: ["input"], outputs: ["output"],
                                attributes: [ONNXAttribute("kernel_shape", .ints([2, 2])), ONNXAttribute("strides", .ints([2, 2]))],
                                docString: "a pool")]
        graph.initializers = [ONNXTensor(name: "unused", dims: [1], floats: [2])]
        let bytes = ONNXModel(irVersion: 8, opsetVersion: 17, producerName: "dsl", producerVersion: "0.1", docString: "doc", graph: graph).encoded()
        let m = try decode("ModelProto", bytes, python: python)
        XCTAssertEqual(m["ir_version"] as? String, "8")
        XCTAssertEqual(m["producer_name"] as? String, "dsl")
        XCTAssertEqual(m["producer_version"] as? String, "0.1")
        XCTAssertEqual(m["doc_string"] as? String, "doc")
        XCTAssertEqual((m["opset_import"] as? [[String: Any]])?.first?["version"] as? String, "17")
        let g = m["graph"] as? [String: Any] ?? [:]
        XCTAssertEqual(g["name"] as? String, "tiny")
        let node = (g["node"] as? [[String: Any]])?.first ?? [:]
        XCTAssertEqual(node["op_type"] as? String, "MaxPool")
        XCTAssertEqual(node["input"] as? [String], ["input"])
        XCTAssertEqual(node["doc_string"] as? String, "a pool")
        XCTAssertEqual((node["attribute"] as? [[String: Any]])?.map { $0["name"] as? String }, ["kernel_shape", "strides"])
        let input = (g["input"] as? [[String: Any]])?.first ?? [:]
        let dims = ((input["type"] as? [String: Any])?["tensor_type"] as? [String: Any])?["shape"] as? [String: Any]
        let dimList = dims?["dim"] as? [[String: Any]] ?? []
        XCTAssertEqual(dimList.first?["dim_param"] as? String, "N")
        XCTAssertEqual(dimList.dropFirst().map { $0["dim_value"] as? String }, ["3", "5", "7"])
        XCTAssertEqual(input["doc_string"] as? String, "images")
        XCTAssertEqual((g["initializer"] as? [[String: Any]])?.first?["name"] as? String, "unused")
    }

    /// The reader does parse our bytes: a model cut short is refused.
    func testTruncatedModelIsRejected() throws {
        let python = try python()
        var graph = ONNXGraph(name: "tiny")
        graph.initializers = [ONNXTensor(name: "w", dims: [4], floats: [1, 2, 3, 4])]
        let bytes = ONNXModel(irVersion: 8, opsetVersion: 17, producerName: "dsl", graph: graph).encoded()
        let result = try decode("ModelProto", Array(bytes.dropLast(3)), python: python, expectSuccess: false)
        XCTAssertNotNil(result["error"], "\(result)")
    }
}
