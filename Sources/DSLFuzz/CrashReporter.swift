#if os(Linux)
import Glibc
#endif

/// Prints the input being run when the process dies on a signal (a trap, a segfault, an abort,
/// a stack overflow: the handler runs on its own stack), so an in-process run such as the test
/// slice names the input that crashed it. Only async-signal-safe calls are made in the handler:
/// the input is copied into preallocated memory before each run.
public enum CrashReporter {
    private static let capacity = 1 << 20
    nonisolated(unsafe) private static var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
    nonisolated(unsafe) private static var length = 0
    nonisolated(unsafe) private static var header = UnsafeMutablePointer<UInt8>.allocate(capacity: 64)
    nonisolated(unsafe) private static var headerLength = 0
    nonisolated(unsafe) private static var installed = false

    /// Records the input about to run.
    public static func current(index: Int, bytes: [UInt8]) {
        let n = min(bytes.count, capacity)
        bytes.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: n) }
        length = n
        let text = Array("\ndsl-fuzz: died on input #\(index):\n".utf8.prefix(64))
        text.withUnsafeBufferPointer { header.update(from: $0.baseAddress!, count: text.count) }
        headerLength = text.count
    }

    /// Installs the handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT and SIGTRAP.
    public static func install() {
        #if os(Linux)
        if installed || getenv("DSL_FUZZ_NO_HANDLER") != nil { return }
        installed = true
        var stack = stack_t()
        let size = 1 << 16
        stack.ss_sp = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        stack.ss_size = size
        stack.ss_flags = 0
        sigaltstack(&stack, nil)
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            _ = write(2, CrashReporter.header, CrashReporter.headerLength)
            _ = write(2, CrashReporter.buffer, CrashReporter.length)
            _ = write(2, "\n", 1)
            var dfl = sigaction()
            dfl.__sigaction_handler.sa_handler = SIG_DFL
            sigaction(signal, &dfl, nil)
            raise(signal)
        }
        action.sa_flags = Int32(SA_ONSTACK) | Int32(bitPattern: UInt32(SA_RESETHAND))
        for s in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] { sigaction(s, &action, nil) }
        #endif
    }
}
