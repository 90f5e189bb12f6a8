import DSLSyntax

// NumPy .npy files, format version 1.0 (numpy.lib.format): the magic "\x93NUMPY", the version
// bytes 1 and 0, the header's length (little-endian UInt16), the header (an ASCII Python dict
// literal: 'descr', 'fortran_order', 'shape'; padded with spaces and ended by "\n" so that the
// data start at a multiple of 64 bytes), then the data: float32 little-endian ('<f4'), C order.

/// The .npy encoder (float32 arrays).
public enum NPY {
    /// The file's bytes for a C-order float32 array of `shape` (the product of `shape` must be `values.count`).
    public static func encode(shape: [Int], values: [Float]) -> [UInt8] {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let length = header.utf8.count
        out += [UInt8(length & 0xFF), UInt8(length >> 8)]
        out += Array(header.utf8)
        out.reserveCapacity(out.count + 4 * values.count)
        for v in values {
            let bits = v.bitPattern
            out += [UInt8(bits & 0xFF), UInt8((bits >> 8) & 0xFF), UInt8((bits >> 16) & 0xFF), UInt8(bits >> 24)]
        }
        return out
    }

    /// Writes the array atomically (temporary file and rename).
    public static func write(shape: [Int], values: [Float], to path: String) throws {
        try SourceFile.writeAtomically(encode(shape: shape, values: values), to: path)
    }
}
