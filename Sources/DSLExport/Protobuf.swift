// A small protocol-buffers encoder: just what writing an ONNX model needs, with no dependency.
//
// The wire format (https://protobuf.dev/programming-guides/encoding/): a message is a sequence
// of fields, each a key followed by a value. The key is the varint `field_number << 3 | wire_type`:
//
//   wire type 0, VARINT: int32, int64, uint64, bool, enum. A varint stores 7 bits per byte, least
//                 significant group first, the high bit set on every byte but the last (300 is
//                 AC 02). Negative int32 and int64 values are sign-extended to 64 bits, so they
//                 always take 10 bytes (-1 is FF FF FF FF FF FF FF FF FF 01).
//   wire type 1, I64: fixed64, double: 8 bytes, little-endian.
//   wire type 2, LEN: string, bytes, embedded messages and packed repeated scalars: a varint
//                 byte length, then the bytes. A packed repeated field puts all its elements,
//                 each encoded without a key, into one LEN field.
//   wire type 5, I32: fixed32, float: 4 bytes, little-endian.
//
// Fields may come in any order and a reader keeps the last value of a singular field; ONNX's
// writers emit them by increasing field number, as `ProtobufWriter` callers do. Repeated
// scalar fields may be written packed or unpacked: readers must accept both (proto2 fields
// such as AttributeProto.ints are unpacked by default, yet parse packed data; onnx.proto marks
// TensorProto's data fields `packed = true`). Protocol buffers limit a message to 2 GiB.

/// Appends protocol-buffer fields to a byte buffer. Nested messages are written into their own
/// writer and appended as LEN fields (`message(_:_:)`).
public struct ProtobufWriter {
    /// Wire types (the low three bits of a field's key).
    public enum WireType: UInt64 {
        /// int32, int64, uint64, bool, enum.
        case varint = 0
        /// fixed64, double.
        case fixed64 = 1
        /// string, bytes, messages, packed repeated fields.
        case lengthDelimited = 2
        /// fixed32, float.
        case fixed32 = 5
    }

    /// The encoded bytes so far.
    public private(set) var bytes: [UInt8] = []

    /// An empty message.
    public init() {}

    /// Appends a bare varint (no key): 7 bits per byte, least significant first.
    public mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// Appends a field key: `field << 3 | wireType`.
    public mutating func appendKey(_ field: Int, _ wireType: WireType) {
        precondition(field >= 1 && field < 1 << 29, "protobuf field numbers are 1 ..< 2^29")
        appendVarint(UInt64(field) << 3 | wireType.rawValue)
    }

    /// An int64 (or int32, or enum) field, as a varint; negative values take 10 bytes (two's
    /// complement in 64 bits).
    public mutating func int64(_ field: Int, _ value: Int64) {
        appendKey(field, .varint)
        appendVarint(UInt64(bitPattern: value))
    }

    /// A uint64 field, as a varint.
    public mutating func uint64(_ field: Int, _ value: UInt64) {
        appendKey(field, .varint)
        appendVarint(value)
    }

    /// A float field: 4 bytes, IEEE 754, little-endian.
    public mutating func float(_ field: Int, _ value: Float) {
        appendKey(field, .fixed32)
        appendFixed32(value.bitPattern)
    }

    /// A double field: 8 bytes, IEEE 754, little-endian.
    public mutating func double(_ field: Int, _ value: Double) {
        appendKey(field, .fixed64)
        let bits = value.bitPattern
        for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }

    /// A bytes field.
    public mutating func bytes(_ field: Int, _ value: [UInt8]) {
        appendKey(field, .lengthDelimited)
        appendVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// A string field, UTF-8.
    public mutating func string(_ field: Int, _ value: String) {
        bytes(field, Array(value.utf8))
    }

    /// An embedded message field.
    public mutating func message(_ field: Int, _ value: ProtobufWriter) {
        bytes(field, value.bytes)
    }

    /// An embedded message field, written by `body` into a fresh writer.
    public mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        message(field, inner)
    }

    /// A packed repeated int64 (or int32) field: one LEN field of varints. Nothing for an empty list.
    public mutating func packedInt64(_ field: Int, _ values: [Int64]) {
        guard !values.isEmpty else { return }
        var inner = ProtobufWriter()
        for v in values { inner.appendVarint(UInt64(bitPattern: v)) }
        bytes(field, inner.bytes)
    }

    /// A packed repeated float field: one LEN field of 4-byte little-endian values. Nothing for an empty list.
    public mutating func packedFloat(_ field: Int, _ values: [Float]) {
        guard !values.isEmpty else { return }
        appendKey(field, .lengthDelimited)
        appendVarint(UInt64(4 * values.count))
        bytes.reserveCapacity(bytes.count + 4 * values.count)
        for v in values { appendFixed32(v.bitPattern) }
    }

    /// Four bytes, little-endian.
    private mutating func appendFixed32(_ bits: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: bits))
        bytes.append(UInt8(truncatingIfNeeded: bits >> 8))
        bytes.append(UInt8(truncatingIfNeeded: bits >> 16))
        bytes.append(UInt8(truncatingIfNeeded: bits >> 24))
    }

    /// `values` as 4-byte little-endian IEEE 754 floats (a TensorProto's raw_data).
    public static func littleEndianBytes(_ values: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 4 * values.count)
        out.withUnsafeMutableBufferPointer { buffer in
            for (i, v) in values.enumerated() {
                let bits = v.bitPattern
                buffer[4 * i] = UInt8(truncatingIfNeeded: bits)
                buffer[4 * i + 1] = UInt8(truncatingIfNeeded: bits >> 8)
                buffer[4 * i + 2] = UInt8(truncatingIfNeeded: bits >> 16)
                buffer[4 * i + 3] = UInt8(truncatingIfNeeded: bits >> 24)
            }
        }
        return out
    }

    /// `values` as 8-byte little-endian two's-complement integers (raw_data of an INT64 tensor).
    public static func littleEndianBytes(_ values: [Int64]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 * values.count)
        for v in values {
            let bits = UInt64(bitPattern: v)
            for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        }
        return out
    }
}
