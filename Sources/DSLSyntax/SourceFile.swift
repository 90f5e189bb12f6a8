import Foundation

/// A position in a source file: byte offset plus 1-based line and column (columns count characters).
public struct SourceLocation: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Byte offset of the first character in the file's UTF-8 text.
    public var offset: Int
    /// Length in bytes of the text this location covers (at least 1 for carets).
    public var length: Int
    /// 1-based line number.
    public var line: Int
    /// 1-based column, counted in characters.
    public var column: Int

    /// Creates a location.
    public init(offset: Int, length: Int, line: Int, column: Int) {
        self.offset = offset; self.length = length; self.line = line; self.column = column
    }

    /// The location used when a file has no text to point at.
    public static let start = SourceLocation(offset: 0, length: 0, line: 1, column: 1)

    /// `line:column`.
    public var description: String { "\(line):\(column)" }

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool { a.offset < b.offset }

    /// The smallest location covering both `self` and `other` (which must be on the same file).
    public func through(_ other: SourceLocation) -> SourceLocation {
        let end = max(offset + length, other.offset + other.length)
        let first = self.offset <= other.offset ? self : other
        var r = first
        r.length = end - first.offset
        return r
    }
}

/// The text of one spec file, with its line table for locating offsets.
public final class SourceFile: @unchecked Sendable {
    /// The path as the user gave it (printed in diagnostics).
    public let path: String
    /// The raw bytes of the file.
    public let bytes: [UInt8]
    /// Byte offsets at which each line starts.
    public let lineStarts: [Int]

    /// Creates a source file from raw bytes.
    public init(path: String, bytes: [UInt8]) {
        self.path = path
        self.bytes = bytes
        var starts = [0]
        starts.reserveCapacity(bytes.count / 16 + 1)
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") { starts.append(i + 1) }
        self.lineStarts = starts
    }

    /// Creates a source file from text (used by tests and by the printer).
    public convenience init(path: String, text: String) {
        self.init(path: path, bytes: Array(text.utf8))
    }

    /// Reads a file from disk (`-` is standard input; pipes and devices work too); throws a
    /// readable message when it cannot be read.
    public static func read(path: String) throws -> SourceFile {
        if path == "-" {
            return SourceFile(path: "<stdin>", bytes: [UInt8](FileHandle.standardInput.readDataToEndOfFile()))
        }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
           let attributes = try? FileManager.default.attributesOfItem(atPath: path),
           attributes[.type] as? FileAttributeType != .typeRegular,
           let handle = FileHandle(forReadingAtPath: path) {
            defer { handle.closeFile() }
            return SourceFile(path: path, bytes: [UInt8](handle.readDataToEndOfFile()))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
                throw SourceError(message: isDir.boolValue ? "\(path): is a directory, not a spec file" : "\(path): cannot read file")
            }
            throw SourceError(message: "\(path): no such file")
        }
        return SourceFile(path: path, bytes: [UInt8](data))
    }

    /// The 1-based line containing byte `offset`.
    public func line(of offset: Int) -> Int {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo + 1
    }

    /// The location of `length` bytes starting at byte `offset`.
    public func location(offset: Int, length: Int) -> SourceLocation {
        let line = line(of: offset)
        let start = lineStarts[line - 1]
        var column = 1
        var i = start
        while i < offset && i < bytes.count {
            if bytes[i] & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        // Columns count characters: the first byte of the target itself does not count.
        if offset < bytes.count && bytes[offset] & 0xC0 == 0x80 { column -= 0 }
        return SourceLocation(offset: offset, length: max(length, 0), line: line, column: column)
    }

    /// The text of a 1-based line, without its newline.
    public func lineText(_ line: Int) -> [UInt8] {
        guard line >= 1 && line <= lineStarts.count else { return [] }
        let start = lineStarts[line - 1]
        var end = line < lineStarts.count ? lineStarts[line] - 1 : bytes.count
        if end > start && end <= bytes.count && end - 1 >= start && bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return Array(bytes[start..<max(start, end)])
    }

    /// The source text covered by a location.
    public func text(_ loc: SourceLocation) -> String {
        let lo = min(max(0, loc.offset), bytes.count), hi = min(bytes.count, lo + loc.length)
        return String(decoding: bytes[lo..<hi], as: UTF8.self)
    }
}

/// A failure to read a source file at all (missing, a directory, unreadable).
public struct SourceError: Error, CustomStringConvertible {
    /// The message, already naming the path.
    public var message: String
    /// Creates an error.
    public init(message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}
