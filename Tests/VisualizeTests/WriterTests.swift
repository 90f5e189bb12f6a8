import Foundation
import PythonTestSupport
import XCTest
@testable import DSLVisualize

/// The PNG and .npy writers, read back with the formats' reference readers (Pillow, numpy).
final class WriterTests: XCTestCase {
    private func temporaryPath(_ name: String) -> String {
        VisualizeFixture.scratch.appendingPathComponent(name).path
    }

    private func image(width: Int, height: Int, seed: UInt32) -> RGBImage {
        var im = RGBImage(width: width, height: height)
        var s = seed
        for i in 0..<im.pixels.count {
            s = s &* 1_664_525 &+ 1_013_904_223
            im.pixels[i] = UInt8(s >> 24)
        }
        return im
    }

    func testChecksumsMatchKnownValues() {
        // zlib's crc32 and adler32 of "123456789" (the standard check values).
        XCTAssertEqual(PNG.crc32(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(PNG.adler32(Array("123456789".utf8)), 0x091E_01DE)
        XCTAssertEqual(PNG.adler32([]), 1)
    }

    /// Both deflate encodings, decompressed by Python's zlib (the reference inflater, which
    /// checks the Adler-32): noise, runs, repeats at every distance class, long matches.
    func testZlibStreamsInflate() throws {
        let python = try PythonEnvironment.require(modules: ["PIL", "numpy"], packages: ["pillow", "numpy"])
        var s: UInt32 = 7
        let noise = (0..<70_000).map { _ -> UInt8 in s = s &* 1_664_525 &+ 1_013_904_223; return UInt8(s >> 24) }
        var structured: [UInt8] = []
        for k in 0..<40_000 { structured.append(UInt8((k / 7) % 13 == 0 ? 255 : (k * k / 97) % 5)) }
        structured += [UInt8](repeating: 128, count: 3000) + noise.prefix(500) + noise.prefix(500) + Array(noise[20_000..<20_300])
        structured += Array(structured[100..<2000])  // a match at a distance near 32 KiB
        for (name, data) in [("empty", [UInt8]()), ("one", [42]), ("noise", noise), ("structured", structured)] {
            for (kind, stream) in [("stored", PNG.zlibStored(data)), ("fixed", PNG.zlibFixedHuffman(data))] {
                let path = temporaryPath("\(name)-\(kind).zlib"), expected = temporaryPath("\(name).bin")
                FileManager.default.createFile(atPath: path, contents: Data(stream))
                FileManager.default.createFile(atPath: expected, contents: Data(data))
                let (status, output) = PythonEnvironment.run(python, ["-c", """
                    import sys, zlib
                    got = zlib.decompress(open(sys.argv[1], 'rb').read())
                    want = open(sys.argv[2], 'rb').read()
                    print('same' if got == want else 'differ %d %d' % (len(got), len(want)))
                    """, path, expected])
                XCTAssertEqual(status, 0, "\(name) \(kind): \(output)")
                XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "same", "\(name) \(kind)")
            }
        }
        XCTAssertLessThan(PNG.zlibFixedHuffman(structured).count, structured.count / 3, "the LZ77 parse finds the repeats")
    }

    func testPillowDecodesThePixelsExactly() throws {
        let python = try PythonEnvironment.require(modules: ["PIL", "numpy"], packages: ["pillow", "numpy"])
        // 1×1, odd sizes, and one above 65,535 bytes of scanlines (several stored blocks).
        for (w, h, seed) in [(1, 1, 1), (37, 23, 2), (300, 120, 3), (65_535 / 3 + 1, 1, 4), (200, 150, 0)] as [(Int, Int, UInt32)] {
            var im = image(width: w, height: h, seed: seed)
            if seed == 0 {
                // Flat areas and stripes (compressed with the fixed codes) beside noise.
                for y in 0..<h { for x in 0..<(w / 2) { im.set(x: x, y: y, (UInt8(x % 7 * 30), 128, UInt8(y % 3 * 100))) } }
            }
            let path = temporaryPath("image-\(w)x\(h).png")
            try PNG.write(im, to: path)
            let dump = temporaryPath("image-\(w)x\(h).rgb")
            let (status, output) = PythonEnvironment.run(python, ["-c", """
                import sys
                from PIL import Image
                im = Image.open(sys.argv[1])
                im.load()
                print(im.format, im.mode, im.size[0], im.size[1])
                open(sys.argv[2], 'wb').write(im.tobytes())
                """, path, dump])
            XCTAssertEqual(status, 0, output)
            XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "PNG RGB \(w) \(h)")
            let decoded = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dump)))
            XCTAssertTrue(decoded == im.pixels, "\(w)x\(h): Pillow's pixels differ from the ones written")
        }
    }

    func testNumpyReadsTheArray() throws {
        let python = try PythonEnvironment.require(modules: ["PIL", "numpy"], packages: ["pillow", "numpy"])
        for shape in [[7], [2, 3, 4, 5], [1, 1, 1, 1, 1, 3], [0, 4]] {
            let n = shape.reduce(1, *)
            var values: [Float] = []
            for i in 0..<n {
                let tiny: Float = i % 3 == 0 ? Float.leastNonzeroMagnitude : 0
                values.append(Float(i) * 0.37 - 5 + tiny)
            }
            let path = temporaryPath("array-\(shape.map(String.init).joined(separator: "x")).npy")
            try NPY.write(shape: shape, values: values, to: path)
            let (status, output) = PythonEnvironment.run(python, ["-c", """
                import sys, numpy as np
                a = np.load(sys.argv[1], allow_pickle=False)
                assert a.dtype == np.dtype('<f4'), a.dtype
                assert a.flags['C_CONTIGUOUS']
                print(list(a.shape))
                print(a.astype('<f4').tobytes().hex())
                """, path])
            XCTAssertEqual(status, 0, output)
            let lines = output.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.first, "[" + shape.map(String.init).joined(separator: ", ") + "]")
            let hex = values.map { v -> String in
                let b: UInt32 = v.bitPattern
                let parts: [UInt32] = [b & 0xFF, (b >> 8) & 0xFF, (b >> 16) & 0xFF, b >> 24]
                return parts.map { String(format: "%02x", $0) }.joined()
            }.joined()
            XCTAssertEqual(lines.count > 1 ? lines[1] : "", hex)
            // The header ends on a 64-byte boundary, as numpy writes it.
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            XCTAssertEqual((bytes.count - 4 * n) % 64, 0)
        }
    }
}
