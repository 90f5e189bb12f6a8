import DSLIR
import Foundation

// The safetensors checkpoint format (https://github.com/huggingface/safetensors):
//   8 bytes   N, the header length, unsigned little-endian
//   N bytes   UTF-8 JSON object: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
//             ..., "__metadata__": {"key": "string value"}}, padded with spaces to a multiple of 8
//   rest      the tensors' raw little-endian bytes; offsets are relative to the start of this part.

/// Element types a stored tensor can have.
public enum TensorDType: String, Sendable, CaseIterable {
    /// 32-bit IEEE float.
    case f32 = "F32"
    /// 64-bit IEEE float (accumulators that must survive a resume exactly, such as elapsed time).
    case f64 = "F64"
    /// 64-bit signed integer (counters such as epoch and step).
    case i64 = "I64"

    /// Bytes per element.
    public var byteSize: Int { switch self { case .f32: return 4; case .f64, .i64: return 8 } }
}

/// A tensor as stored in a checkpoint: a shape and its elements in row-major order.
public struct StoredTensor: Equatable, Sendable {
    /// Elements of one of the supported element types.
    public enum Values: Equatable, Sendable {
        /// 32-bit floats (dtype F32).
        case f32([Float])
        /// 64-bit floats (dtype F64).
        case f64([Double])
        /// 64-bit signed integers (dtype I64).
        case i64([Int64])
    }

    /// Dimensions, outermost first; [] is a scalar.
    public let shape: [Int]
    /// The elements, row-major; their count is the product of `shape`.
    public let values: Values

    /// A float tensor; throws when the element count does not match the shape.
    public init(shape: [Int], floats: [Float]) throws {
        try StoredTensor.check(shape: shape, count: floats.count)
        self.shape = shape; values = .f32(floats)
    }

    /// A 64-bit float tensor; throws when the element count does not match the shape.
    public init(shape: [Int], doubles: [Double]) throws {
        try StoredTensor.check(shape: shape, count: doubles.count)
        self.shape = shape; values = .f64(doubles)
    }

    /// A 64-bit integer tensor; throws when the element count does not match the shape.
    public init(shape: [Int], int64s: [Int64]) throws {
        try StoredTensor.check(shape: shape, count: int64s.count)
        self.shape = shape; values = .i64(int64s)
    }

    /// A one-element F32 tensor of shape [].
    public static func scalar(_ value: Float) -> StoredTensor { StoredTensor(unchecked: [], .f32([value])) }
    /// A one-element F64 tensor of shape [].
    public static func scalar(_ value: Double) -> StoredTensor { StoredTensor(unchecked: [], .f64([value])) }
    /// A one-element I64 tensor of shape [].
    public static func scalar(_ value: Int64) -> StoredTensor { StoredTensor(unchecked: [], .i64([value])) }

    private init(unchecked shape: [Int], _ values: Values) { self.shape = shape; self.values = values }

    private static func check(shape: [Int], count: Int) throws {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw TrainingError("tensor shape \(shape) has a negative dimension") }
        var product = 1
        for dimension in shape {
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw TrainingError("tensor shape \(shape) is too large") }
            product = next
        }
        guard product == count else { throw TrainingError("tensor shape \(shape) needs \(product) elements, got \(count)") }
    }

    /// The element type.
    public var dtype: TensorDType { switch values { case .f32: return .f32; case .f64: return .f64; case .i64: return .i64 } }
    /// Number of elements.
    public var count: Int { switch values { case .f32(let v): return v.count; case .f64(let v): return v.count; case .i64(let v): return v.count } }
    /// The elements when F32, else nil.
    public var floats: [Float]? { if case .f32(let v) = values { return v }; return nil }
    /// The elements when F64, else nil.
    public var doubles: [Double]? { if case .f64(let v) = values { return v }; return nil }
    /// The elements when I64, else nil.
    public var int64s: [Int64]? { if case .i64(let v) = values { return v }; return nil }
}

/// The contents of a safetensors file: named tensors and string metadata.
public struct SafetensorsContents: Equatable, Sendable {
    /// Tensors by name.
    public var tensors: [String: StoredTensor]
    /// The `__metadata__` string map (empty when absent).
    public var metadata: [String: String]

    /// Bundles tensors and metadata.
    public init(tensors: [String: StoredTensor], metadata: [String: String] = [:]) {
        self.tensors = tensors; self.metadata = metadata
    }

    /// The named F32 tensor, with a clear error when missing, of another type, or of another shape.
    public func floats(_ name: String, shape expected: [Int]? = nil, file: String = "checkpoint") throws -> [Float] {
        guard let tensor = tensors[name] else { throw TrainingError("\(file): no tensor named '\(name)'") }
        guard let values = tensor.floats else { throw TrainingError("\(file): tensor '\(name)' is \(tensor.dtype.rawValue), expected F32") }
        if let expected, expected != tensor.shape {
            throw TrainingError("\(file): tensor '\(name)' has shape \(tensor.shape), expected \(expected)")
        }
        return values
    }
}


/// Encodes tensors (in name order) and metadata as safetensors bytes.
public func encodeSafetensors(_ tensors: [String: StoredTensor], metadata: [String: String] = [:]) throws -> [UInt8] {
    if tensors.keys.contains("__metadata__") { throw TrainingError("safetensors: '__metadata__' is reserved and cannot name a tensor") }
    var entries: [String] = []
    if !metadata.isEmpty {
        let pairs = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0]!))" }
        entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
    }
    var offset = 0
    let names = tensors.keys.sorted()
    for name in names {
        let tensor = tensors[name]!
        let size = tensor.count * tensor.dtype.byteSize
        let shape = tensor.shape.map(String.init).joined(separator: ",")
        entries.append("\(jsonQuoted(name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + size)]}")
        offset += size
    }
    var header = Array("{\(entries.joined(separator: ","))}".utf8)
    while (8 + header.count) % 8 != 0 { header.append(0x20) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(8 + header.count + offset)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { bytes.append(contentsOf: $0) }
    bytes.append(contentsOf: header)
    for name in names {
        switch tensors[name]!.values {
        case .f32(let values):
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        case .f64(let values):
            for value in values { withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        case .i64(let values):
            for value in values { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
        }
    }
    return bytes
}

/// Writes a safetensors file atomically (temporary file in the same directory, then rename).
public func writeSafetensors(_ tensors: [String: StoredTensor], metadata: [String: String] = [:], to path: String) throws {
    let bytes: [UInt8]
    do { bytes = try encodeSafetensors(tensors, metadata: metadata) } catch let error as TrainingError {
        throw TrainingError("\(path): \(error.message)")
    }
    try writeFileAtomically(bytes, to: path)
}

/// Reads and fully validates a safetensors file.
public func readSafetensors(path: String) throws -> SafetensorsContents {
    try decodeSafetensors(try readFileBytes(path), name: path)
}

/// Decodes safetensors bytes, validating header length, JSON, dtypes, shapes and offsets; `name` labels errors.
public func decodeSafetensors(_ bytes: [UInt8], name: String) throws -> SafetensorsContents {
    func fail(_ message: String) -> TrainingError { TrainingError("\(name): \(message)") }
    guard bytes.count >= 8 else { throw fail("\(bytes.count) bytes, too short for a safetensors file (8-byte header length missing)") }
    var length: UInt64 = 0
    for i in 0..<8 { length |= UInt64(bytes[i]) << (8 * UInt64(i)) }
    guard length >= 2, length <= UInt64(bytes.count - 8) else {
        throw fail("header length \(length) does not fit in the file (\(bytes.count) bytes); not a safetensors file or truncated")
    }
    guard length <= 100_000_000 else { throw fail("header length \(length) exceeds the 100 MB safetensors limit") }
    let headerEnd = 8 + Int(length)
    let dataSize = bytes.count - headerEnd
    guard bytes[8] == UInt8(ascii: "{") else { throw fail("header does not start with '{'") }
    guard let headerText = String(bytes: bytes[8..<headerEnd], encoding: .utf8) else { throw fail("header is not valid UTF-8") }
    let parsed: Any
    do {
        parsed = try JSONSerialization.jsonObject(with: Data(headerText.utf8), options: [])
    } catch {
        throw fail("header is not well-formed JSON")
    }
    guard let object = parsed as? [String: Any] else { throw fail("header is not a JSON object") }

    var metadata: [String: String] = [:]
    if let rawMetadata = object["__metadata__"] {
        guard let map = rawMetadata as? [String: Any] else { throw fail("__metadata__ is not an object") }
        for (key, value) in map {
            guard let text = value as? String else { throw fail("__metadata__ value for '\(key)' is not a string") }
            metadata[key] = text
        }
    }
    var spans: [(begin: Int, end: Int, name: String)] = []
    var tensors: [String: StoredTensor] = [:]
    for (tensorName, rawEntry) in object where tensorName != "__metadata__" {
        guard let entry = rawEntry as? [String: Any] else { throw fail("tensor '\(tensorName)': entry is not an object") }
        guard let dtypeName = entry["dtype"] as? String else { throw fail("tensor '\(tensorName)': missing string 'dtype'") }
        guard let dtype = TensorDType(rawValue: dtypeName) else {
            throw fail("tensor '\(tensorName)': unsupported dtype '\(dtypeName)' (supported: F32, F64, I64)")
        }
        guard let shapeList = entry["shape"] as? [Any] else { throw fail("tensor '\(tensorName)': missing array 'shape'") }
        var shape: [Int] = []
        for dimension in shapeList {
            guard let number = dimension as? NSNumber, let value = Int(exactly: number.doubleValue), value >= 0 else {
                throw fail("tensor '\(tensorName)': shape \(shapeList) has a dimension that is not a non-negative integer")
            }
            shape.append(value)
        }
        guard let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
              let beginNumber = offsets[0] as? NSNumber, let endNumber = offsets[1] as? NSNumber,
              let begin = Int(exactly: beginNumber.doubleValue), let end = Int(exactly: endNumber.doubleValue) else {
            throw fail("tensor '\(tensorName)': 'data_offsets' must be two integers [begin, end]")
        }
        guard begin >= 0, begin <= end, end <= dataSize else {
            throw fail("tensor '\(tensorName)': data_offsets [\(begin), \(end)] outside the \(dataSize)-byte data section")
        }
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw fail("tensor '\(tensorName)': shape \(shape) is too large") }
            elements = product
        }
        guard elements <= dataSize, elements * dtype.byteSize == end - begin else {
            throw fail("tensor '\(tensorName)': shape \(shape) of \(dtype.rawValue) needs \(elements * dtype.byteSize) bytes but data_offsets span \(end - begin)")
        }
        spans.append((begin, end, tensorName))
        let start = headerEnd + begin
        switch dtype {
        case .f32:
            var values = [Float](repeating: 0, count: elements)
            bytes.withUnsafeBytes { raw in
                for i in 0..<elements {
                    values[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self)))
                }
            }
            tensors[tensorName] = try StoredTensor(shape: shape, floats: values)
        case .f64:
            var values = [Double](repeating: 0, count: elements)
            bytes.withUnsafeBytes { raw in
                for i in 0..<elements {
                    values[i] = Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: start + 8 * i, as: UInt64.self)))
                }
            }
            tensors[tensorName] = try StoredTensor(shape: shape, doubles: values)
        case .i64:
            var values = [Int64](repeating: 0, count: elements)
            bytes.withUnsafeBytes { raw in
                for i in 0..<elements {
                    values[i] = Int64(littleEndian: raw.loadUnaligned(fromByteOffset: start + 8 * i, as: Int64.self))
                }
            }
            tensors[tensorName] = try StoredTensor(shape: shape, int64s: values)
        }
    }
    // Like the reference implementation: tensors tile the data section exactly, in offset order.
    spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
    var covered = 0
    for span in spans {
        if span.begin < covered {
            throw fail("tensor '\(span.name)' (data_offsets [\(span.begin), \(span.end)]) overlaps the previous tensor in the data section")
        }
        if span.begin > covered {
            throw fail("gap in the data section: bytes \(covered)..<\(span.begin) belong to no tensor (before '\(span.name)')")
        }
        covered = span.end
    }
    if covered != dataSize {
        throw fail("data section has \(dataSize) bytes but the tensors cover only \(covered) (truncated header or trailing bytes)")
    }
    return SafetensorsContents(tensors: tensors, metadata: metadata)
}
