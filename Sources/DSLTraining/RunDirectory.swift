import Foundation
#if os(Linux)
import Glibc
#endif

/// A training run's output directory (`dsl train --out`), created if needed and locked for as
/// long as this object lives: an exclusive flock(2) on `DIR/.lock`, which holds the holder's
/// pid. The kernel releases the lock when the process ends, however it ends, so a stale lock
/// file never blocks a later run.
public final class RunDirectory {
    /// The directory.
    public let path: String
    /// The lock file, `path/.lock`.
    public let lockPath: String
    private let descriptor: Int32

    /// The files a run writes (the first two make a directory hold a run), each replaced
    /// atomically through a `.NAME.tmp-*` temporary when rewritten; the logs are appended to.
    public static let runFiles = ["checkpoint.safetensors", "metrics.jsonl", "steps.jsonl", "curves.svg"]

    /// Creates `path` (and missing parents), checks it is a writable directory, and takes the
    /// lock. `label` (e.g. "--out") starts every error message, which is one line naming the
    /// path and the reason; a directory locked by another process names that process's pid.
    public init(path: String, label: String) throws {
        func fail(_ why: String) -> TrainingError { TrainingError("\(label) \(path): \(why)") }
        guard !path.isEmpty else { throw TrainingError("\(label): the directory name is empty") }
        self.path = path
        lockPath = (path.hasSuffix("/") ? path : path + "/") + ".lock"
        // mkdir -p, one component at a time, so that the message names what is in the way.
        var prefix = path.hasPrefix("/") ? "/" : ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + component
            var info = stat()
            if stat(prefix, &info) == 0 {
                if info.st_mode & S_IFMT != S_IFDIR {
                    throw fail(prefix == path ? "is a file, not a directory" : "\(prefix) is a file, not a directory")
                }
                continue
            }
            if mkdir(prefix, 0o777) != 0 && errno != EEXIST {
                throw fail("cannot create directory \(prefix): \(String(cString: strerror(errno)))")
            }
        }
        guard access(path, W_OK | X_OK) == 0 else { throw fail("cannot write into the directory: \(String(cString: strerror(errno)))") }
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("cannot create the lock file \(lockPath): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let reason = errno
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = pread(fd, &buffer, 63, 0)
            close(fd)
            if reason == EWOULDBLOCK {
                let text = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
                let holder = Int(text).map { "pid \($0)" } ?? "pid unknown"
                throw fail("in use by another 'dsl train' (\(holder), lock \(lockPath)); wait for it to finish, stop it, or choose another \(label)")
            }
            throw fail("cannot lock \(lockPath): \(String(cString: strerror(reason)))")
        }
        let pid = Array("\(getpid())\n".utf8)
        if ftruncate(fd, 0) != 0 || pwrite(fd, pid, pid.count, 0) != pid.count {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw fail("cannot write the lock file \(lockPath): \(reason)")
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// `path/name`.
    public func file(_ name: String) -> String { (path.hasSuffix("/") ? path : path + "/") + name }

    /// Removes the temporary files a killed writer of `runFiles` left behind (`.NAME.tmp-*`);
    /// safe because the lock is held. Returns the removed paths.
    @discardableResult
    public func removeStaleTemporaryFiles() -> [String] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path) else { return [] }
        var removed: [String] = []
        for entry in entries.sorted() where RunDirectory.runFiles.contains(where: { entry.hasPrefix(".\($0).tmp-") }) {
            if unlink(file(entry)) == 0 { removed.append(file(entry)) }
        }
        return removed
    }

    /// Throws when one of `runFiles` exists but is not a regular file (a directory in the way).
    public func checkRunFiles(label: String) throws {
        for name in RunDirectory.runFiles {
            var info = stat()
            if lstat(file(name), &info) == 0 && info.st_mode & S_IFMT != S_IFREG {
                throw TrainingError("\(label) \(path): \(file(name)) exists and is not a regular file; move it away or choose another \(label)")
            }
        }
    }

    /// A directory name for a network: letters, digits, `-`, `_` and `.` kept, anything else
    /// replaced by `_`, leading dots replaced by one `_` (so `.`, `..` and `.name` stay inside
    /// the parent), "network" when nothing is left.
    public static func safeName(_ name: String) -> String {
        var s = String(name.map { c -> Character in c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_" || c == ".") ? c : "_" })
        if s.hasPrefix(".") { s = "_" + s.drop { $0 == "." } }
        return s.isEmpty ? "network" : s
    }
}
