import DSLSyntax

// PNG (ISO/IEC 15948, RFC 2083) written with the toolchain only: 8-bit truecolour (colour type
// 2), no interlace, one IHDR, one IDAT, IEND. The IDAT holds a zlib stream (RFC 1950: header
// 0x78 0x01, deflate data, Adler-32) whose deflate data (RFC 1951) are stored blocks (BTYPE 00,
// at most 65,535 bytes each): no compression, so the encoder is a few lines and exact. Every
// scanline starts with filter type 0 (None). Each chunk ends with the CRC-32 of its type and
// data (polynomial 0xEDB88320, as zlib's crc32).

/// An 8-bit RGB image, row-major, three bytes per pixel.
public struct RGBImage: Equatable, Sendable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// `height × width × 3` bytes: row y, column x, channel c at `(y * width + x) * 3 + c`.
    public var pixels: [UInt8]

    /// A `width`×`height` image filled with one colour.
    public init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        precondition(width >= 1 && height >= 1, "an image has at least one pixel")
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[3 * i] = fill.0; pixels[3 * i + 1] = fill.1; pixels[3 * i + 2] = fill.2 }
    }

    /// Sets one pixel.
    public mutating func set(x: Int, y: Int, _ rgb: (UInt8, UInt8, UInt8)) {
        let i = (y * width + x) * 3
        pixels[i] = rgb.0; pixels[i + 1] = rgb.1; pixels[i + 2] = rgb.2
    }

    /// One pixel.
    public func pixel(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        let i = (y * width + x) * 3
        return (pixels[i], pixels[i + 1], pixels[i + 2])
    }
}

/// The PNG encoder.
public enum PNG {
    /// The file's bytes.
    public static func encode(_ image: RGBImage) -> [UInt8] {
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header: [UInt8] = []
        header.appendPNGBigEndian(UInt32(image.width))
        header.appendPNGBigEndian(UInt32(image.height))
        header += [8, 2, 0, 0, 0]  // bit depth 8, truecolour, deflate, adaptive filtering, no interlace
        appendChunk("IHDR", header, to: &out)
        // Scanlines: filter byte 0, then the row's RGB bytes.
        let rowBytes = image.width * 3
        var raw: [UInt8] = []
        raw.reserveCapacity(image.height * (rowBytes + 1))
        for y in 0..<image.height {
            raw.append(0)
            raw += image.pixels[(y * rowBytes)..<((y + 1) * rowBytes)]
        }
        let fixed = zlibFixedHuffman(raw)
        appendChunk("IDAT", fixed.count < raw.count + 5 * (raw.count / 65_535 + 1) + 6 ? fixed : zlibStored(raw), to: &out)
        appendChunk("IEND", [], to: &out)
        return out
    }

    /// Writes the PNG atomically (temporary file and rename).
    public static func write(_ image: RGBImage, to path: String) throws {
        try SourceFile.writeAtomically(encode(image), to: path)
    }

    /// A zlib stream of stored deflate blocks.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]  // CM 8 (deflate), 32K window, FCHECK: 0x7801 % 31 == 0, fastest
        var start = 0
        repeat {
            let length = min(65_535, data.count - start)
            let final: UInt8 = start + length == data.count ? 1 : 0
            out.append(final)  // BFINAL, BTYPE 00; the rest of the byte is padding
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += data[start..<(start + length)]
            start += length
        } while start < data.count
        out.appendPNGBigEndian(adler32(data))
        return out
    }

    /// A zlib stream of one deflate block with the fixed Huffman codes (RFC 1951, 3.2.6) over a
    /// greedy LZ77 parse: at each position the longest match among the last 64 earlier
    /// positions with the same next three bytes (within 32,768 bytes), else a literal.
    static func zlibFixedHuffman(_ data: [UInt8]) -> [UInt8] {
        var bits = DeflateBitWriter()
        bits.bytes = [0x78, 0x01]
        bits.write(1, count: 1)  // BFINAL
        bits.write(1, count: 2)  // BTYPE 01, fixed codes
        let n = data.count
        let window = 32_768, maxChain = 64
        var head = [Int32](repeating: -1, count: 1 << 15)
        var previous = [Int32](repeating: -1, count: max(n, 1))
        func hash(_ i: Int) -> Int {
            (Int(data[i]) << 10 ^ Int(data[i + 1]) << 5 ^ Int(data[i + 2])) & 0x7FFF
        }
        func insert(_ i: Int) {
            guard i + 2 < n else { return }
            let h = hash(i)
            previous[i] = head[h]
            head[h] = Int32(i)
        }
        var i = 0
        while i < n {
            var bestLength = 0, bestDistance = 0
            if i + 2 < n {
                var candidate = Int(head[hash(i)])
                var chain = 0
                let limit = min(258, n - i)
                while candidate >= 0 && i - candidate <= window && chain < maxChain {
                    var length = 0
                    while length < limit && data[candidate + length] == data[i + length] { length += 1 }
                    if length > bestLength { bestLength = length; bestDistance = i - candidate; if length == limit { break } }
                    candidate = Int(previous[candidate])
                    chain += 1
                }
            }
            if bestLength >= 3 {
                writeLength(bestLength, &bits)
                writeDistance(bestDistance, &bits)
                for j in i..<(i + bestLength) { insert(j) }
                i += bestLength
            } else {
                writeLiteral(Int(data[i]), &bits)
                insert(i)
                i += 1
            }
        }
        writeLiteral(256, &bits)  // end of block
        bits.flush()
        var out = bits.bytes
        out.appendPNGBigEndian(adler32(data))
        return out
    }

    private static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    private static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    private static let distanceBase = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
                                       2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    private static let distanceExtra = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    /// A literal/length symbol 0...287 with its fixed Huffman code (written most significant bit first).
    private static func writeLiteral(_ symbol: Int, _ bits: inout DeflateBitWriter) {
        switch symbol {
        case 0...143: bits.writeCode(0x30 + symbol, count: 8)
        case 144...255: bits.writeCode(0x190 + symbol - 144, count: 9)
        case 256...279: bits.writeCode(symbol - 256, count: 7)
        default: bits.writeCode(0xC0 + symbol - 280, count: 8)
        }
    }

    private static func writeLength(_ length: Int, _ bits: inout DeflateBitWriter) {
        var code = lengthBase.count - 1
        while lengthBase[code] > length { code -= 1 }
        writeLiteral(257 + code, &bits)
        if lengthExtra[code] > 0 { bits.write(UInt64(length - lengthBase[code]), count: lengthExtra[code]) }
    }

    private static func writeDistance(_ distance: Int, _ bits: inout DeflateBitWriter) {
        var code = distanceBase.count - 1
        while distanceBase[code] > distance { code -= 1 }
        bits.writeCode(code, count: 5)
        if distanceExtra[code] > 0 { bits.write(UInt64(distance - distanceBase[code]), count: distanceExtra[code]) }
    }

    /// Adler-32 (RFC 1950).
    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        var i = 0
        while i < data.count {
            // 5,552 bytes keep the sums below 2^32 before the reduction (zlib's NMAX).
            let end = min(data.count, i + 5552)
            while i < end { a += UInt32(data[i]); b += a; i += 1 }
            a %= 65_521; b %= 65_521
        }
        return b << 16 | a
    }

    private static let crcTable: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// CRC-32 (ISO 3309, as zlib's crc32).
    static func crc32<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes { c = crcTable[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    private static func appendChunk(_ type: String, _ data: [UInt8], to out: inout [UInt8]) {
        out.appendPNGBigEndian(UInt32(data.count))
        let typeAndData = Array(type.utf8) + data
        out += typeAndData
        out.appendPNGBigEndian(crc32(typeAndData))
    }
}

/// Deflate's bit order: values least significant bit first, packed from each byte's low bit.
struct DeflateBitWriter {
    var bytes: [UInt8] = []
    private var buffer: UInt64 = 0
    private var used = 0

    /// The low `count` bits of `value`, least significant first (extra bits, header fields).
    mutating func write(_ value: UInt64, count: Int) {
        buffer |= (value & ((1 << UInt64(count)) - 1)) << UInt64(used)
        used += count
        while used >= 8 { bytes.append(UInt8(buffer & 0xFF)); buffer >>= 8; used -= 8 }
    }

    /// A Huffman code of `count` bits, most significant bit first.
    mutating func writeCode(_ code: Int, count: Int) {
        var reversed: UInt64 = 0
        for k in 0..<count { reversed |= UInt64((code >> k) & 1) << UInt64(count - 1 - k) }
        write(reversed, count: count)
    }

    /// Pads the last byte with zeros.
    mutating func flush() {
        if used > 0 { bytes.append(UInt8(buffer & 0xFF)); buffer = 0; used = 0 }
    }
}

extension Array where Element == UInt8 {
    mutating func appendPNGBigEndian(_ v: UInt32) {
        append(UInt8(v >> 24)); append(UInt8((v >> 16) & 0xFF)); append(UInt8((v >> 8) & 0xFF)); append(UInt8(v & 0xFF))
    }
}
