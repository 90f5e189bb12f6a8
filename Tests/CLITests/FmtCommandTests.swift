import Foundation
import XCTest

/// Issue #11: `dsl fmt` (and the other commands) on files that are not plain UTF-8/LF regular
/// files: every byte of comments, line endings, permissions and symbolic links are kept;
/// standard input, directories, named pipes and endless devices give clear errors, never a hang.
/// Runs the real binary.
final class FmtCommandTests: XCTestCase {
    /// A fresh directory for one test.
    func directory() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("dsl-fmt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    func write(_ bytes: [UInt8], _ name: String, in dir: URL) throws -> String {
        let p = dir.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    func contents(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// Runs `dsl` with `input` on standard input (`DSL.run` gives it /dev/null), in `cwd`.
    func run(_ arguments: [String], input: [UInt8], cwd: URL) throws -> (status: Int32, stdout: [UInt8], stderr: String) {
        let binary = try XCTUnwrap(DSL.binary)
        let inFile = cwd.appendingPathComponent(".stdin-\(UUID().uuidString)")
        let outFile = cwd.appendingPathComponent(".stdout-\(UUID().uuidString)")
        let errFile = cwd.appendingPathComponent(".stderr-\(UUID().uuidString)")
        try Data(input).write(to: inFile)
        FileManager.default.createFile(atPath: outFile.path, contents: nil)
        FileManager.default.createFile(atPath: errFile.path, contents: nil)
        defer { for f in [inFile, outFile, errFile] { try? FileManager.default.removeItem(at: f) } }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        p.currentDirectoryURL = cwd
        p.standardInput = try FileHandle(forReadingFrom: inFile)
        p.standardOutput = try FileHandle(forWritingTo: outFile)
        p.standardError = try FileHandle(forWritingTo: errFile)
        let done = DispatchSemaphore(value: 0)
        p.terminationHandler = { _ in done.signal() }
        try p.run()
        if done.wait(timeout: .now() + 60) == .timedOut {
            kill(p.processIdentifier, SIGKILL)
            done.wait()
            XCTFail("dsl \(arguments.joined(separator: " ")) hung")
        }
        return (p.terminationStatus, try contents(outFile.path), String(decoding: try contents(errFile.path), as: UTF8.self))
    }

    // MARK: encoding and line endings

    /// ISO-8859-1 bytes in comments (not valid UTF-8) were turned into U+FFFD.
    func testLatin1CommentsKeepEveryByte() throws {
        let dir = try directory()
        let before: [UInt8] = Array("# caf".utf8) + [0xE9, 0x20, 0xFF, 0xB5] + Array("\ninput 8x8x3\nconv   3 1 8     # na".utf8) + [0xEF, 0x76, 0x65] + Array("\n".utf8)
        let after: [UInt8] = Array("# caf".utf8) + [0xE9, 0x20, 0xFF, 0xB5] + Array("\n\ninput 8x8x3\nconv 3 1 8  # na".utf8) + [0xEF, 0x76, 0x65] + Array("\n".utf8)
        let p = try write(before, "latin1.dsl", in: dir)
        let check = try DSL.run(["fmt", "--check", p])
        XCTAssertEqual(check.status, 1, check.summary)
        let r = try DSL.run(["fmt", p])
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertEqual(try contents(p), after)
        XCTAssertEqual(try DSL.run(["fmt", "--check", p]).status, 0)
        // The other commands read it too; a diagnostic shows the comment's characters.
        XCTAssertEqual(try DSL.run(["check", p]).status, 0)
    }

    /// CRLF files became LF files.
    func testCRLFLineEndingsAreKept() throws {
        let dir = try directory()
        let p = try write(Array("input 8x8x3\r\nconv  3 1 8  # x\r\n\r\n\r\nrelu\r\n".utf8), "crlf.dsl", in: dir)
        let r = try DSL.run(["fmt", p])
        XCTAssertEqual(r.status, 0, r.summary)
        XCTAssertEqual(String(decoding: try contents(p), as: UTF8.self), "input 8x8x3\r\nconv 3 1 8  # x\r\n\r\nrelu\r\n")
        // Formatted CRLF is formatted: --check passes, a second fmt writes nothing.
        XCTAssertEqual(try DSL.run(["fmt", "--check", p]).status, 0)
        let lf = try write(Array("input 8x8x3\nconv 3 1 8\n".utf8), "lf.dsl", in: dir)
        XCTAssertEqual(try DSL.run(["fmt", "--check", lf]).status, 0)
    }

    // MARK: permissions, links, atomic writes

    /// Mode 600 became 644.
    func testPermissionBitsAreKept() throws {
        let dir = try directory()
        let p = try write(Array("input 8x8x3\nconv  3 1 8\n".utf8), "private.dsl", in: dir)
        XCTAssertEqual(chmod(p, 0o600), 0)
        XCTAssertEqual(try DSL.run(["fmt", p]).status, 0)
        XCTAssertEqual(try contents(p), Array("input 8x8x3\nconv 3 1 8\n".utf8))
        var st = stat()
        XCTAssertEqual(stat(p, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o600)
        XCTAssertEqual(chmod(p, 0o640), 0)
        try Data("input 8x8x3\nrelu   \n".utf8).write(to: URL(fileURLWithPath: p))
        XCTAssertEqual(try DSL.run(["fmt", p]).status, 0)
        XCTAssertEqual(stat(p, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o640)
        // The owner and group too, where the process may set them (here: when run as root).
        if geteuid() == 0 {
            XCTAssertEqual(chown(p, 12345, 23456), 0)
            try Data("input 8x8x3\nrelu   \n".utf8).write(to: URL(fileURLWithPath: p))
            XCTAssertEqual(chown(p, 12345, 23456), 0)
            XCTAssertEqual(chmod(p, 0o640), 0)
            XCTAssertEqual(try DSL.run(["fmt", p]).status, 0)
            XCTAssertEqual(stat(p, &st), 0)
            XCTAssertEqual([st.st_uid, st.st_gid], [12345, 23456])
            XCTAssertEqual(st.st_mode & 0o7777, 0o640)
        }
    }

    /// A symbolic link was replaced by a regular file: the link stays, its target is formatted.
    func testSymbolicLinkIsWrittenThrough() throws {
        let dir = try directory()
        let sub = dir.appendingPathComponent("real")
        try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
        let target = try write(Array("input 8x8x3\nconv  3 1 8\n".utf8), "spec.dsl", in: sub)
        let link = dir.appendingPathComponent("link.dsl").path
        XCTAssertEqual(symlink("real/spec.dsl", link), 0)
        let r = try DSL.run(["fmt", link])
        XCTAssertEqual(r.status, 0, r.summary)
        var st = stat()
        XCTAssertEqual(lstat(link, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK, "the link was replaced")
        XCTAssertEqual(try contents(target), Array("input 8x8x3\nconv 3 1 8\n".utf8))
        // No temporary file next to the link or the target.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["link.dsl", "real"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: sub.path), ["spec.dsl"])
    }

    /// A write that was killed leaves `.NAME.dsl-tmp-PID`; the next write removes it.
    func testStaleTemporaryFilesAreRemoved() throws {
        let dir = try directory()
        let p = try write(Array("input 8x8x3\nconv  3 1 8\n".utf8), "spec.dsl", in: dir)
        // A process id that does not run.
        var dead: Int32 = 4_000_000
        while kill(dead, 0) == 0 || errno != ESRCH { dead -= 1 }
        let stale = try write(Array("input 8".utf8), ".spec.dsl.dsl-tmp-\(dead)", in: dir)
        let other = try write(Array("keep".utf8), ".other.dsl.dsl-tmp-\(dead)", in: dir)
        XCTAssertEqual(try DSL.run(["fmt", p]).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale))
        XCTAssertTrue(FileManager.default.fileExists(atPath: other), "only the temporaries of the file written are touched")
        XCTAssertEqual(try contents(p), Array("input 8x8x3\nconv 3 1 8\n".utf8))
    }

    // MARK: standard input

    /// `dsl fmt -` wrote a file named '-'.
    func testDashIsStandardInputToStandardOutput() throws {
        let dir = try directory()
        let r = try run(["fmt", "-"], input: Array("input 8x8x3\nconv  3 1 8\n".utf8), cwd: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, Array("input 8x8x3\nconv 3 1 8\n".utf8))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("-").path), "a file named '-' was written")
        // Already formatted: printed unchanged. Latin-1 and CRLF pass through.
        let crlf: [UInt8] = Array("input 8x8x3\r\nrelu  # ".utf8) + [0xE9] + Array("\r\n".utf8)
        let same = try run(["fmt", "-"], input: crlf, cwd: dir)
        XCTAssertEqual(same.stdout, crlf)
        // --check reports standard input by name.
        let check = try run(["fmt", "--check", "-"], input: Array("input 8x8x3\nconv  3 1 8\n".utf8), cwd: dir)
        XCTAssertEqual(check.status, 1)
        XCTAssertEqual(String(decoding: check.stdout, as: UTF8.self), "<stdin>: not formatted\n")
        XCTAssertEqual(try run(["fmt", "--check", "-"], input: Array("input 8x8x3\n".utf8), cwd: dir).status, 0)
        // Syntax errors: diagnostics, nothing on standard output.
        let bad = try run(["fmt", "-"], input: Array("input 8x8x3\nconv (\n".utf8), cwd: dir)
        XCTAssertEqual(bad.status, 1)
        XCTAssertEqual(bad.stdout, [])
        XCTAssertTrue(bad.stderr.contains("<stdin>:2:"), bad.stderr)
        XCTAssertEqual(try run(["fmt", "-", "-"], input: [], cwd: dir).status, 2)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".std") }, [])
    }

    // MARK: paths that are not regular files

    func testDirectoryFIFOAndDeviceAreClearErrors() throws {
        let dir = try directory()
        let good = try write(Array("input 8x8x3\nconv  3 1 8\n".utf8), "good.dsl", in: dir)
        let fifo = dir.appendingPathComponent("pipe.dsl").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let r = try DSL.run(["fmt", dir.path, fifo, "/dev/null", dir.appendingPathComponent("missing.dsl").path, good], timeout: 60)
        XCTAssertFalse(r.timedOut, "dsl fmt hung")
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("dsl fmt: \(dir.path): is a directory, not a spec file"), r.stderr)
        XCTAssertTrue(r.stderr.contains("dsl fmt: \(fifo): is a named pipe (FIFO), not a file that can be formatted in place; use 'dsl fmt - < \(fifo)'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("dsl fmt: /dev/null: is not a regular file"), r.stderr)
        XCTAssertTrue(r.stderr.contains("missing.dsl: no such file"), r.stderr)
        // The good file is still formatted; the pipe is still a pipe.
        XCTAssertEqual(try contents(good), Array("input 8x8x3\nconv 3 1 8\n".utf8))
        var st = stat()
        XCTAssertEqual(lstat(fifo, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFIFO)
    }

    func testUnreadableFile() throws {
        try XCTSkipIf(geteuid() == 0, "root reads files of any mode")
        let dir = try directory()
        let p = try write(Array("input 8x8x3\n".utf8), "secret.dsl", in: dir)
        XCTAssertEqual(chmod(p, 0o000), 0)
        for command in ["fmt", "check"] {
            let r = try DSL.run([command, p])
            XCTAssertEqual(r.status, 1, r.summary)
            XCTAssertTrue(r.stderr.contains("\(p): cannot read file: permission denied"), r.stderr)
        }
    }

    // MARK: size cap (every command reads specs through SourceFile.read)

    /// `dsl check /dev/zero` read until a fatal error.
    func testEndlessDeviceIsCapped() throws {
        for command in [["check"], ["rewrite", "--pass", "strided"], ["run"]] {
            let r = try DSL.run([command[0], "/dev/zero"] + command.dropFirst(), timeout: 60)
            XCTAssertFalse(r.timedOut || r.signaled, r.summary)
            XCTAssertEqual(r.status, 1, r.summary)
            XCTAssertTrue(r.stderr.contains("/dev/zero: the file is larger than 16 MiB (16777216 bytes), the most a spec file may have"), r.stderr)
        }
    }

    func testLargeFileIsAnErrorNamingTheCap() throws {
        let dir = try directory()
        // A valid spec padded with comments to one byte over 16 MiB.
        var bytes = Array("input 8x8x3\nconv 3 1 8\n".utf8)
        let line = Array(("#" + String(repeating: "x", count: 1022) + "\n").utf8)
        while bytes.count + line.count <= 16 * 1024 * 1024 { bytes += line }
        bytes += [UInt8](repeating: UInt8(ascii: "#"), count: 16 * 1024 * 1024 + 1 - bytes.count)
        XCTAssertEqual(bytes.count, 16 * 1024 * 1024 + 1)
        let p = try write(bytes, "big.dsl", in: dir)
        let r = try DSL.run(["check", p])
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("\(p): the file is larger than 16 MiB"), r.stderr)
        XCTAssertEqual(try DSL.run(["fmt", p]).status, 1)
        // At the cap it is read.
        let fits = try write(Array(bytes.dropLast()), "fits.dsl", in: dir)
        XCTAssertEqual(try DSL.run(["check", fits]).status, 0)
    }

    func testNamedPipeIsReadOrAnErrorWithoutHanging() throws {
        let dir = try directory()
        let fifo = dir.appendingPathComponent("pipe.dsl").path
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        // Nobody writes: an error, not a wait for a writer.
        let r = try DSL.run(["check", fifo], timeout: 60)
        XCTAssertFalse(r.timedOut, "dsl check waited for a writer")
        XCTAssertEqual(r.status, 1, r.summary)
        XCTAssertTrue(r.stderr.contains("\(fifo): is a named pipe (FIFO) and nothing was written to it"), r.stderr)
        // A writer that is there: read to its end.
        let writer = Thread {
            let fd = open(fifo, O_WRONLY)
            guard fd >= 0 else { return }
            let text = Array("input 8x8x3\nconv 3 1 8\n".utf8)
            _ = text.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, text.count) }
            close(fd)
        }
        writer.start()
        // The writer's open waits for a reader; give it time to get there.
        Thread.sleep(forTimeInterval: 0.3)
        let ok = try DSL.run(["check", fifo], timeout: 60)
        XCTAssertEqual(ok.status, 0, ok.summary)
    }

    // MARK: rewrite keeps the file's form too

    func testRewriteKeepsEncodingLineEndingsAndLinks() throws {
        let dir = try directory()
        let src: [UInt8] = Array("input 32x32x3\r\nconv 3 1 8  # ".utf8) + [0xE9] + Array("\r\npool\r\n".utf8)
        let p = try write(src, "in.dsl", in: dir)
        let target = try write(Array("old\n".utf8), "target.dsl", in: dir)
        XCTAssertEqual(chmod(target, 0o600), 0)
        let link = dir.appendingPathComponent("out.dsl").path
        XCTAssertEqual(symlink("target.dsl", link), 0)
        let r = try DSL.run(["rewrite", p, "--pass", "strided", "-o", link])
        XCTAssertEqual(r.status, 0, r.summary)
        // The network is named after the file and the pass (a spec without a 'network' line gets one).
        let rest: [UInt8] = Array("input 32x32x3\r\nconv 3 2 8  # strided: stride 2, from the pool at line 3 (removed) (old comment: \"".utf8) + [0xE9] + Array("\")\r\n".utf8)
        let want = Array("network in-strided\r\n".utf8) + rest
        XCTAssertEqual(try contents(target), want)
        var st = stat()
        XCTAssertEqual(lstat(link, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK)
        XCTAssertEqual(stat(target, &st), 0)
        XCTAssertEqual(st.st_mode & 0o7777, 0o600)
        // Standard output too, and '-' as the input.
        let piped = try run(["rewrite", "-", "--pass", "strided"], input: src, cwd: dir)
        XCTAssertEqual(piped.status, 0, piped.stderr)
        XCTAssertEqual(piped.stdout, Array("network network-strided\r\n".utf8) + rest)
        XCTAssertTrue(piped.stderr.contains("strided: 1 change in <stdin>"), piped.stderr)
    }
}
