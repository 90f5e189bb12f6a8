// The ONNX messages `dsl` writes, encoded with `ProtobufWriter`. Field numbers are those of
// onnx.proto (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto; onnx.proto is proto2, and
// its numbers never change between versions):
//
//   ModelProto:         ir_version 1, producer_name 2, producer_version 3, domain 4,
//                       model_version 5, doc_string 6, graph 7, opset_import 8
//   OperatorSetIdProto: domain 1, version 2
//   GraphProto:         node 1, name 2, initializer 5, doc_string 10, input 11, output 12,
//                       value_info 13
//   NodeProto:          input 1, output 2, name 3, op_type 4, attribute 5, doc_string 6, domain 7
//   AttributeProto:     name 1, f 2, i 3, s 4, t 5, floats 7, ints 8, type 20
//                       (AttributeType FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7)
//   TensorProto:        dims 1, data_type 2, name 8, raw_data 9 (data_type FLOAT 1, INT64 7;
//                       raw_data is fixed-width little-endian, row-major)
//   ValueInfoProto:     name 1, type 2, doc_string 3
//   TypeProto:          tensor_type 1;  TypeProto.Tensor: elem_type 1, shape 2
//   TensorShapeProto:   dim 1;  Dimension: dim_value 1, dim_param 2

/// An ONNX tensor (TensorProto) with its data in raw_data.
public struct ONNXTensor {
    /// Element types used here (TensorProto.DataType).
    public enum DataType: Int64 {
        /// float32.
        case float = 1
        /// int64.
        case int64 = 7
    }
    /// Name (initializers are referred to by it).
    public var name: String
    /// Dimensions, outermost first.
    public var dims: [Int]
    /// Element type.
    public var dataType: DataType
    /// Elements in row-major order, fixed-width little-endian.
    public var rawData: [UInt8]

    /// A float32 tensor.
    public init(name: String, dims: [Int], floats: [Float]) {
        precondition(dims.reduce(1, *) == floats.count, "tensor '\(name)': \(floats.count) values for dims \(dims)")
        self.name = name; self.dims = dims; dataType = .float
        rawData = ProtobufWriter.littleEndianBytes(floats)
    }

    /// An int64 tensor.
    public init(name: String, dims: [Int], int64s: [Int64]) {
        precondition(dims.reduce(1, *) == int64s.count, "tensor '\(name)': \(int64s.count) values for dims \(dims)")
        self.name = name; self.dims = dims; dataType = .int64
        rawData = ProtobufWriter.littleEndianBytes(int64s)
    }

    /// The encoded TensorProto.
    public func encoded() -> ProtobufWriter {
        var w = ProtobufWriter()
        w.packedInt64(1, dims.map(Int64.init))
        w.int64(2, dataType.rawValue)
        w.string(8, name)
        w.bytes(9, rawData)
        return w
    }
}

/// A node attribute (AttributeProto).
public struct ONNXAttribute {
    /// The attribute's value.
    public enum Value {
        /// A float (type FLOAT).
        case float(Float)
        /// An integer (type INT).
        case int(Int64)
        /// A string (type STRING).
        case string(String)
        /// A tensor (type TENSOR).
        case tensor(ONNXTensor)
        /// A list of floats (type FLOATS).
        case floats([Float])
        /// A list of integers (type INTS).
        case ints([Int64])
    }
    /// Name.
    public var name: String
    /// Value.
    public var value: Value

    /// Creates an attribute.
    public init(_ name: String, _ value: Value) { self.name = name; self.value = value }

    /// The encoded AttributeProto.
    public func encoded() -> ProtobufWriter {
        var w = ProtobufWriter()
        w.string(1, name)
        let type: Int64
        switch value {
        case .float(let f): w.float(2, f); type = 1
        case .int(let i): w.int64(3, i); type = 2
        case .string(let s): w.string(4, s); type = 3
        case .tensor(let t): w.message(5, t.encoded()); type = 4
        case .floats(let fs): w.packedFloat(7, fs); type = 6
        case .ints(let xs): w.packedInt64(8, xs); type = 7
        }
        w.int64(20, type)
        return w
    }
}

/// A node (NodeProto) of the default ONNX domain.
public struct ONNXNode {
    /// Operator (Conv, Relu, ...).
    public var opType: String
    /// Node name.
    public var name: String
    /// Input value names.
    public var inputs: [String]
    /// Output value names.
    public var outputs: [String]
    /// Attributes.
    public var attributes: [ONNXAttribute]
    /// Documentation shown by viewers (empty: none).
    public var docString: String

    /// Creates a node.
    public init(_ opType: String, name: String, inputs: [String], outputs: [String], attributes: [ONNXAttribute] = [], docString: String = "") {
        self.opType = opType; self.name = name; self.inputs = inputs; self.outputs = outputs
        self.attributes = attributes; self.docString = docString
    }

    /// The encoded NodeProto.
    public func encoded() -> ProtobufWriter {
        var w = ProtobufWriter()
        for i in inputs { w.string(1, i) }
        for o in outputs { w.string(2, o) }
        w.string(3, name)
        w.string(4, opType)
        for a in attributes { w.message(5, a.encoded()) }
        if !docString.isEmpty { w.string(6, docString) }
        return w
    }
}

/// A graph input or output (ValueInfoProto) of a tensor type.
public struct ONNXValueInfo {
    /// One dimension: a fixed size or a named (dynamic) one.
    public enum Dimension: Equatable {
        /// A fixed size (dim_value).
        case value(Int)
        /// A symbolic size such as "N" (dim_param).
        case parameter(String)
    }
    /// Value name.
    public var name: String
    /// Element type.
    public var elementType: ONNXTensor.DataType
    /// Shape.
    public var shape: [Dimension]
    /// Documentation shown by viewers (empty: none).
    public var docString: String

    /// Creates a value info.
    public init(name: String, elementType: ONNXTensor.DataType = .float, shape: [Dimension], docString: String = "") {
        self.name = name; self.elementType = elementType; self.shape = shape; self.docString = docString
    }

    /// The encoded ValueInfoProto.
    public func encoded() -> ProtobufWriter {
        var w = ProtobufWriter()
        w.string(1, name)
        w.message(2) { type in                          // TypeProto
            type.message(1) { tensor in                 // TypeProto.Tensor
                tensor.int64(1, elementType.rawValue)
                tensor.message(2) { shapeProto in       // TensorShapeProto
                    for d in shape {
                        shapeProto.message(1) { dim in  // TensorShapeProto.Dimension
                            switch d {
                            case .value(let v): dim.int64(1, Int64(v))
                            case .parameter(let p): dim.string(2, p)
                            }
                        }
                    }
                }
            }
        }
        if !docString.isEmpty { w.string(3, docString) }
        return w
    }
}

/// A graph (GraphProto).
public struct ONNXGraph {
    /// Graph name.
    public var name: String
    /// Nodes in topological order.
    public var nodes: [ONNXNode] = []
    /// Constant tensors (weights).
    public var initializers: [ONNXTensor] = []
    /// Graph inputs.
    public var inputs: [ONNXValueInfo] = []
    /// Graph outputs.
    public var outputs: [ONNXValueInfo] = []
    /// Documentation.
    public var docString: String = ""

    /// An empty graph.
    public init(name: String) { self.name = name }

    /// The encoded GraphProto.
    public func encoded() -> ProtobufWriter {
        var w = ProtobufWriter()
        for n in nodes { w.message(1, n.encoded()) }
        w.string(2, name)
        for t in initializers { w.message(5, t.encoded()) }
        if !docString.isEmpty { w.string(10, docString) }
        for i in inputs { w.message(11, i.encoded()) }
        for o in outputs { w.message(12, o.encoded()) }
        return w
    }
}

/// A model (ModelProto) importing one version of the default operator set.
public struct ONNXModel {
    /// ONNX IR version (8 goes with opset 17; onnx/docs/Versioning.md).
    public var irVersion: Int64
    /// Version of the default ("ai.onnx") operator set.
    public var opsetVersion: Int64
    /// producer_name.
    public var producerName: String
    /// producer_version.
    public var producerVersion: String
    /// Documentation.
    public var docString: String
    /// The graph.
    public var graph: ONNXGraph

    /// Creates a model.
    public init(irVersion: Int64, opsetVersion: Int64, producerName: String, producerVersion: String = "", docString: String = "", graph: ONNXGraph) {
        self.irVersion = irVersion; self.opsetVersion = opsetVersion; self.producerName = producerName
        self.producerVersion = producerVersion; self.docString = docString; self.graph = graph
    }

    /// The encoded ModelProto: the bytes of a .onnx file.
    public func encoded() -> [UInt8] {
        var w = ProtobufWriter()
        w.int64(1, irVersion)
        w.string(2, producerName)
        if !producerVersion.isEmpty { w.string(3, producerVersion) }
        if !docString.isEmpty { w.string(6, docString) }
        w.message(7, graph.encoded())
        w.message(8) { opset in       // OperatorSetIdProto; domain "" is the default ai.onnx
            opset.string(1, "")
            opset.int64(2, opsetVersion)
        }
        return w.bytes
    }
}
