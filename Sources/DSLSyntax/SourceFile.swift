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

/// How a spec file's bytes are read as text.
public enum SourceEncoding: String, Sendable {
    /// UTF-8 (ASCII included): the bytes are the text.
    case utf8 = "UTF-8"
    /// ISO-8859-1 (Latin-1): a file whose bytes are not valid UTF-8 is read one character per
    /// byte, so every byte survives formatting and rewriting and is written back as it was.
    case latin1 = "ISO-8859-1"
}

/// The line ending a spec file uses, kept when `dsl fmt` and `dsl rewrite` write it back.
public enum LineEnding: String, Sendable {
    /// `\n`.
    case lf = "LF"
    /// `\r\n`.
    case crlf = "CRLF"
}

/// The text of one spec file, with its line table for locating offsets.
///
/// `bytes` is always UTF-8 text: a file that is not valid UTF-8 is read as ISO-8859-1 and its
/// bytes transcoded (`encoding` says which), so the lexer, diagnostics and comments see real
/// characters and nothing is replaced by U+FFFD. `encode(_:)` turns text back into bytes in the
/// file's own encoding and line ending.
public final class SourceFile: @unchecked Sendable {
    /// The path as the user gave it (printed in diagnostics).
    public let path: String
    /// The file's text as UTF-8 (for an ISO-8859-1 file, its bytes transcoded).
    public let bytes: [UInt8]
    /// The bytes as they were read (the same as `bytes` for a UTF-8 file).
    public let rawBytes: [UInt8]
    /// How the raw bytes were decoded.
    public let encoding: SourceEncoding
    /// The line ending most of the file's lines use (the first line's on a tie; LF for a file
    /// without line breaks).
    public let lineEnding: LineEnding
    /// Byte offsets (in `bytes`) at which each line starts.
    public let lineStarts: [Int]

    /// The largest spec file read: 16 MiB (`read(path:)` reads at most one byte more).
    public static let maxBytes = 16 * 1024 * 1024

    /// Creates a source file from raw bytes: UTF-8 if they are valid UTF-8, else ISO-8859-1.
    public init(path: String, bytes raw: [UInt8]) {
        self.path = path
        self.rawBytes = raw
        if SourceFile.isValidUTF8(raw) {
            encoding = .utf8
            bytes = raw
        } else {
            encoding = .latin1
            var t: [UInt8] = []
            t.reserveCapacity(raw.count + raw.count / 4)
            for b in raw {
                if b < 0x80 { t.append(b) } else { t.append(0xC0 | (b >> 6)); t.append(0x80 | (b & 0x3F)) }
            }
            bytes = t
        }
        var starts = [0]
        starts.reserveCapacity(bytes.count / 16 + 1)
        var crlf = 0, lf = 0
        var first: LineEnding?
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") {
            starts.append(i + 1)
            let ending: LineEnding = i > 0 && bytes[i - 1] == UInt8(ascii: "\r") ? .crlf : .lf
            if ending == .crlf { crlf += 1 } else { lf += 1 }
            if first == nil { first = ending }
        }
        self.lineStarts = starts
        self.lineEnding = crlf > lf ? .crlf : lf > crlf ? .lf : (first ?? .lf)
    }

    /// Creates a source file from text (used by tests and by the printer).
    public convenience init(path: String, text: String) {
        self.init(path: path, bytes: Array(text.utf8))
    }

    /// Whether bytes are well-formed UTF-8 (no overlong forms, surrogates or values above U+10FFFF).
    public static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        // ASCII fast path, then the standard library's strict decoder.
        if bytes.allSatisfy({ $0 < 0x80 }) { return true }
        var decoder = UTF8()
        var it = bytes.makeIterator()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }

    /// `text` as bytes in this file's encoding, with its line ending (each `\n` not already
    /// preceded by `\r` becomes `\r\n` in a CRLF file). Nil when a character cannot be written
    /// in the encoding (above U+00FF in an ISO-8859-1 file).
    public func encode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + (lineEnding == .crlf ? lineStarts.count + 16 : 0))
        var previous: UInt32 = 0
        for scalar in text.unicodeScalars {
            if lineEnding == .crlf && scalar == "\n" && previous != 0x0D { out.append(0x0D) }
            previous = scalar.value
            switch encoding {
            case .utf8: out.append(contentsOf: Array(String(scalar).utf8))
            case .latin1:
                guard scalar.value <= 0xFF else { return nil }
                out.append(UInt8(scalar.value))
            }
        }
        return out
    }

    /// Reads a spec file: `-` is standard input; pipes and devices work too. At most
    /// `maxBytes` + 1 bytes are read: a larger file (or an endless device such as /dev/zero) is
    /// an error naming the file and the limit. Opening never blocks (a named pipe without a
    /// writer reads as empty, an error). Throws a readable message when the file cannot be read.
    public static func read(path: String) throws -> SourceFile {
        if path == "-" {
            return SourceFile(path: "<stdin>", bytes: try readCapped(fd: 0, path: "<stdin>", sizeHint: nil))
        }
        var st = stat()
        guard stat(path, &st) == 0 else { throw SourceError(message: openFailure(path, errno)) }
        let type = st.st_mode & S_IFMT
        if type == S_IFDIR { throw SourceError(message: "\(path): is a directory, not a spec file") }
        if type == S_IFSOCK { throw SourceError(message: "\(path): is a socket, not a spec file") }
        if type == S_IFREG && Int(st.st_size) > maxBytes { throw SourceError(message: tooLarge(path)) }
        // O_NONBLOCK: opening a named pipe that has no writer would wait for one forever.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw SourceError(message: openFailure(path, errno)) }
        defer { close(fd) }
        // Reads block again (a pipe being written to is read to its end).
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        let bytes = try readCapped(fd: fd, path: path, sizeHint: type == S_IFREG ? Int(st.st_size) : nil)
        if type == S_IFIFO && bytes.isEmpty {
            throw SourceError(message: "\(path): is a named pipe (FIFO) and nothing was written to it")
        }
        return SourceFile(path: path, bytes: bytes)
    }

    /// The prefix of the temporary files `writeAtomically` creates next to `name`:
    /// `.NAME.dsl-tmp-PID`.
    static func temporaryPrefix(_ name: String) -> String { ".\(name).dsl-tmp-" }

    /// Writes `bytes` to `path` atomically: a temporary file in the target's directory, written,
    /// flushed to disk and renamed over the target, so readers see the old file or the new one,
    /// never a part. A symbolic link is written through: its final target is replaced and the
    /// link stays. An existing target keeps its permission bits and (where the process may set
    /// them) its owner and group; a new file gets the usual mode (0666 less the umask). A target
    /// that exists and is not a regular file (a device such as /dev/stdout, a named pipe) is
    /// written directly; a directory is an error. Temporary files left by a write that was
    /// killed (`.NAME.dsl-tmp-PID` of a process that no longer runs) are removed first.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let target = try resolveLinks(path)
        var st = stat()
        let exists = stat(target, &st) == 0
        if exists {
            let type = st.st_mode & S_IFMT
            if type == S_IFDIR { throw SourceError(message: "\(path): is a directory; nothing written") }
            if type != S_IFREG { return try writeDirectly(bytes, to: path, target: target) }
        }
        let slash = target.lastIndex(of: "/")
        let dir = slash.map { String(target[..<$0]).isEmpty ? "/" : String(target[..<$0]) } ?? "."
        let name = slash.map { String(target[target.index(after: $0)...]) } ?? target
        removeStaleTemporaries(in: dir, name: name)
        let tmp = (dir == "/" ? "" : dir) + "/" + temporaryPrefix(name) + String(getpid())
        func failure(_ what: String, _ code: Int32) -> SourceError {
            SourceError(message: "\(path): cannot write file: \(what)\(String(cString: strerror(code)))")
        }
        var fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exists ? 0o600 : 0o666)
        if fd < 0 && errno == EEXIST {   // left by an earlier failed write of this process
            unlink(tmp)
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exists ? 0o600 : 0o666)
        }
        guard fd >= 0 else { throw failure("", errno) }
        var ok = false
        defer {
            if fd >= 0 { close(fd) }
            if !ok { unlink(tmp) }
        }
        if exists {
            // Owner first (changing it clears set-user-ID bits), then the mode.
            if st.st_uid != geteuid() || st.st_gid != getegid() {
                if fchown(fd, st.st_uid, st.st_gid) != 0 { _ = fchown(fd, uid_t.max, st.st_gid) }
            }
            guard fchmod(fd, st.st_mode & 0o7777) == 0 else { throw failure("cannot set its permissions: ", errno) }
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("", errno)
            }
            written += n
        }
        guard fsync(fd) == 0 else { throw failure("", errno) }
        let closed = close(fd)
        fd = -1
        guard closed == 0 else { throw failure("", errno) }
        guard rename(tmp, target) == 0 else { throw failure("", errno) }
        ok = true
        // Make the rename durable (best effort).
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// The file a path finally names, following symbolic links (relative links are resolved
    /// against the link's directory); the last target need not exist.
    static func resolveLinks(_ path: String) throws -> String {
        var current = path
        for _ in 0..<40 {
            var st = stat()
            guard lstat(current, &st) == 0, st.st_mode & S_IFMT == S_IFLNK else { return current }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(current, &buffer, buffer.count - 1)
            guard n >= 0 else { throw SourceError(message: "\(path): cannot follow the symbolic link: \(String(cString: strerror(errno)))") }
            let link = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if link.hasPrefix("/") {
                current = link
            } else if let slash = current.lastIndex(of: "/") {
                current = String(current[...slash]) + link
            } else {
                current = link
            }
        }
        throw SourceError(message: "\(path): cannot write file: too many levels of symbolic links")
    }

    /// Writes into an existing file that is not a regular file (a device, a named pipe).
    static func writeDirectly(_ bytes: [UInt8], to path: String, target: String) throws {
        // O_NONBLOCK for the open only: a named pipe without a reader is an error, not a hang.
        let fd = open(target, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw SourceError(message: "\(path): cannot write file: " + (code == ENXIO ? "it is a named pipe that nobody reads" : String(cString: strerror(code))))
        }
        defer { close(fd) }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw SourceError(message: "\(path): cannot write file: \(String(cString: strerror(errno)))")
            }
            written += n
        }
    }

    /// Removes `.NAME.dsl-tmp-PID` files (and the `.NAME.tmp-PID` of earlier versions) in `dir`
    /// whose process no longer runs and which this user owns: what a killed write left.
    static func removeStaleTemporaries(in dir: String, name: String) {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for prefix in [temporaryPrefix(name), ".\(name).tmp-"] {
            for e in entries where e.hasPrefix(prefix) {
                guard let pid = Int32(e.dropFirst(prefix.count)), pid > 0 else { continue }
                if pid != getpid() && kill(pid, 0) == 0 { continue }   // still running
                if pid != getpid() && errno != ESRCH { continue }
                let p = (dir == "/" ? "" : dir) + "/" + e
                var st = stat()
                guard lstat(p, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == geteuid() else { continue }
                unlink(p)
            }
        }
    }

    static func tooLarge(_ path: String) -> String {
        "\(path): the file is larger than 16 MiB (\(maxBytes) bytes), the most a spec file may have"
    }

    /// The message for a file that cannot be opened or stat()ed, naming it: `PATH: no such file`.
    public static func openFailure(_ path: String, _ code: Int32) -> String {
        switch code {
        case ENOENT: return "\(path): no such file"
        case EACCES: return "\(path): cannot read file: permission denied"
        case ENOTDIR: return "\(path): no such file (a component of the path is not a directory)"
        case ELOOP: return "\(path): cannot read file: too many levels of symbolic links"
        case ENXIO: return "\(path): cannot read file: no such device"
        default: return "\(path): cannot read file: \(String(cString: strerror(code)))"
        }
    }

    /// Reads a descriptor to its end, failing after `maxBytes` + 1 bytes.
    static func readCapped(fd: Int32, path: String, sizeHint: Int?) throws -> [UInt8] {
        let limit = maxBytes + 1
        var result: [UInt8] = []
        result.reserveCapacity(min(limit, (sizeHint ?? 64 * 1024) + 1))
        let chunk = 64 * 1024
        var buffer = [UInt8](repeating: 0, count: chunk)
        while result.count < limit {
            let want = min(chunk, limit - result.count)
            let n = buffer.withUnsafeMutableBytes { systemRead(fd, $0.baseAddress, want) }
            if n < 0 {
                if errno == EINTR { continue }
                let code = errno
                if code == EISDIR { throw SourceError(message: "\(path): is a directory, not a spec file") }
                throw SourceError(message: "\(path): cannot read file: \(String(cString: strerror(code)))")
            }
            if n == 0 { break }
            result.append(contentsOf: buffer[0..<n])
        }
        if result.count > maxBytes { throw SourceError(message: tooLarge(path)) }
        return result
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

/// `read(2)` (inside `SourceFile`, `read` names the static method).
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int { read(fd, buffer, count) }

/// A failure to read a source file at all (missing, a directory, unreadable).
public struct SourceError: Error, CustomStringConvertible {
    /// The message, already naming the path.
    public var message: String
    /// Creates an error.
    public init(message: String) { self.message = message }
    /// The message.
    public var description: String { message }
}
