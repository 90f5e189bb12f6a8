import Foundation
#if os(Linux)
import Glibc
#endif

/// An error from the training library, with a message naming the file and what is wrong.
public struct TrainingError: Error, CustomStringConvertible, LocalizedError, Equatable {
    /// The full human-readable message.
    public let message: String

    /// Creates an error with the given message.
    public init(_ message: String) { self.message = message }

    /// The message, for printing.
    public var description: String { message }
    /// The message, for `localizedDescription`.
    public var errorDescription: String? { message }
}

/// Reads a whole file into memory, throwing a `TrainingError` naming the file on failure.
public func readFileBytes(_ path: String) throws -> [UInt8] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw TrainingError("\(path): file not found")
    }
    if isDirectory.boolValue { throw TrainingError("\(path): is a directory, expected a file") }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw TrainingError("\(path): cannot be read (permission denied or I/O error)")
    }
    return [UInt8](data)
}

/// The size in bytes of a regular file, or nil when it does not exist.
func fileSize(_ path: String) -> Int? {
    guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
    return (attributes[.size] as? NSNumber)?.intValue
}

/// Whether `path` names an existing regular file (not a directory).
func isRegularFile(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, then rename(2).
public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory),
          isDirectory.boolValue else {
        throw TrainingError("\(path): cannot write, directory \(directory) does not exist")
    }
    let temporary = directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UUID().uuidString)"
    guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
        throw TrainingError("\(path): cannot write temporary file \(temporary) (permission denied or disk full)")
    }
    if rename(temporary, path) != 0 {
        let reason = String(cString: strerror(errno))
        unlink(temporary)
        throw TrainingError("\(path): cannot rename temporary file into place: \(reason)")
    }
}

/// Writes a UTF-8 string to `path` atomically.
public func writeTextAtomically(_ text: String, to path: String) throws {
    try writeFileAtomically(Array(text.utf8), to: path)
}
