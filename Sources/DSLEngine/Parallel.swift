#if os(Linux)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

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
/// Returns when every chunk is done. Nested calls (from inside a body) and calls made while
/// another thread is using the pool run serially on the calling thread.
public func parallelFor(_ chunks: Int, _ body: (Int) -> Void) {
    if chunks <= 0 { return }
    let threads = min(engineThreadCount, chunks)
    if threads <= 1 {
        for i in 0..<chunks { body(i) }
        return
    }
    withoutActuallyEscaping(body) { b in
        if !WorkerPool.shared.run(chunks: chunks, helpers: threads - 1, body: b) {
            for i in 0..<chunks { b(i) }
        }
    }
}

/// Persistent worker threads parked on a condition variable. The calling thread takes part in
/// the work; chunks are claimed one at a time under the pool mutex.
/// Waking a parked thread takes 5–50 µs here, as long as a whole small parallel region (the
/// Winograd weight-gradient transforms of one block take ~70 µs per thread), so after a region
/// workers spin for up to `spinNanoseconds` watching for the next one before parking, and the
/// caller spins the same way for the workers' last chunks before waiting on the condition.
private final class WorkerPool {
    static let shared = WorkerPool()
    /// How long a thread polls for new work (or for the last chunks) before blocking.
    static let spinNanoseconds: UInt64 = 200_000

    /// `generation`, readable without the mutex (released after each change).
    private let publishedGeneration = Atomic<Int>(0)
    /// Chunks completed in the current generation, readable without the mutex.
    private let publishedCompleted = Atomic<Int>(0)

    /// Held by the thread that currently drives the pool (try-locked: busy → run serially).
    private var owner = pthread_mutex_t()
    /// Protects everything below.
    private var mutex = pthread_mutex_t()
    private var wake = pthread_cond_t()
    private var finished = pthread_cond_t()
    private var generation = 0
    private var body: ((Int) -> Void)? = nil
    private var chunks = 0
    private var next = 0
    private var completed = 0
    /// Workers with index < helpers take part in the current generation.
    private var helpers = 0
    private var workerCount = 0

    private init() {
        pthread_mutex_init(&owner, nil)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&wake, nil)
        pthread_cond_init(&finished, nil)
    }

    /// Runs all chunks with up to `helpers` workers besides the caller; false if the pool is busy.
    func run(chunks n: Int, helpers h: Int, body b: @escaping (Int) -> Void) -> Bool {
        if pthread_mutex_trylock(&owner) != 0 { return false }
        defer { pthread_mutex_unlock(&owner) }
        while workerCount < h { spawnWorker(index: workerCount); workerCount += 1 }
        pthread_mutex_lock(&mutex)
        body = b
        chunks = n
        next = 0
        completed = 0
        helpers = h
        generation &+= 1
        publishedCompleted.store(0, ordering: .relaxed)
        publishedGeneration.store(generation, ordering: .releasing)
        pthread_cond_broadcast(&wake)
        runChunks()
        if completed < chunks {
            pthread_mutex_unlock(&mutex)
            let total = chunks
            WorkerPool.spin { self.publishedCompleted.load(ordering: .acquiring) >= total }
            pthread_mutex_lock(&mutex)
        }
        while completed < chunks { pthread_cond_wait(&finished, &mutex) }
        body = nil
        pthread_mutex_unlock(&mutex)
        return true
    }

    /// Claims and runs chunks until none is left; called and returns with `mutex` held.
    private func runChunks() {
        while next < chunks {
            let i = next
            next += 1
            let b = body!
            pthread_mutex_unlock(&mutex)
            b(i)
            pthread_mutex_lock(&mutex)
            completed += 1
            publishedCompleted.store(completed, ordering: .releasing)
            if completed == chunks { pthread_cond_signal(&finished) }
        }
    }

    private func workerLoop(index: Int) {
        pthread_mutex_lock(&mutex)
        var seen = generation
        while true {
            if generation == seen {
                pthread_mutex_unlock(&mutex)
                let last = seen
                WorkerPool.spin { self.publishedGeneration.load(ordering: .acquiring) != last }
                pthread_mutex_lock(&mutex)
            }
            while generation == seen { pthread_cond_wait(&wake, &mutex) }
            seen = generation
            if index < helpers { runChunks() }
        }
    }

    /// Polls `done` for up to `spinNanoseconds`; the caller then blocks if it is still false.
    private static func spin(until done: () -> Bool) {
        var start: UInt64 = 0
        var polls = 0
        while !done() {
            polls += 1
            if polls & 255 == 0 {
                let now = monotonicNanoseconds()
                if start == 0 { start = now } else if now - start > spinNanoseconds { return }
            }
        }
    }

    private func spawnWorker(index: Int) {
        final class Start { let pool: WorkerPool; let index: Int
            init(_ p: WorkerPool, _ i: Int) { pool = p; index = i } }
        let arg = Unmanaged.passRetained(Start(self, index)).toOpaque()
        #if os(Linux)
        var thread = pthread_t()
        #else
        var thread: pthread_t? = nil
        #endif
        let rc = pthread_create(&thread, nil, { raw in
            let start = Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue()
            start.pool.workerLoop(index: start.index)
            return nil
        }, arg)
        precondition(rc == 0, "parallelFor: cannot create a worker thread")
        pthread_detach(thread)
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
@inline(__always) private func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
