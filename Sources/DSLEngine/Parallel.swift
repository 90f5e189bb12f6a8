#if os(Linux)
import Glibc
#endif
import Dispatch

/// How many worker threads engine kernels may use; set once by the command line (`--threads`).
public nonisolated(unsafe) var engineThreadCount: Int = max(1, min(2, ProcessInfoCores.count))

/// The number of cores the operating system reports.
public enum ProcessInfoCores {
    /// Active processor count of this machine.
    public static var count: Int { sysconfCores() }
}

@inline(__always) func sysconfCores() -> Int {
    #if os(Linux)
    return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    #else
    return 2
    #endif
}

/// Runs `body(chunk)` for chunk in 0..<chunks, spread over up to `engineThreadCount` threads.
/// The body must only touch memory disjoint from other chunks (or use per-chunk scratch).
@inline(__always)
public func parallelFor(_ chunks: Int, _ body: (Int) -> Void) {
    if chunks <= 0 { return }
    if chunks == 1 || engineThreadCount <= 1 {
        for i in 0..<chunks { body(i) }
        return
    }
    withoutActuallyEscaping(body) { b in
        DispatchQueue.concurrentPerform(iterations: chunks) { b($0) }
    }
}
