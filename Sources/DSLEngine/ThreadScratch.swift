#if os(Linux)
import Glibc
#endif

/// A growable, 64-byte-aligned float buffer private to each thread; one instance per purpose
/// (the GEMM's packing buffers, the direct convolution's padded slab), so that buffers of
/// different purposes never alias while both are in use on one thread.
final class ThreadScratch {
    private final class Buffer {
        var pointer: UnsafeMutablePointer<Float>? = nil
        var capacity = 0
        deinit { free(pointer) }
    }

    private let key: pthread_key_t

    /// Creates a scratch whose per-thread buffers are freed when their thread exits.
    init() {
        var key = pthread_key_t()
        pthread_key_create(&key) { p in
            if let p { Unmanaged<Buffer>.fromOpaque(p).release() }
        }
        self.key = key
    }

    /// This thread's buffer with room for at least `floats` floats (contents undefined).
    func floats(_ floats: Int) -> UnsafeMutablePointer<Float> {
        let buffer: Buffer
        if let p = pthread_getspecific(key) {
            buffer = Unmanaged<Buffer>.fromOpaque(p).takeUnretainedValue()
        } else {
            buffer = Buffer()
            pthread_setspecific(key, Unmanaged.passRetained(buffer).toOpaque())
        }
        if buffer.capacity < floats {
            free(buffer.pointer)
            var raw: UnsafeMutableRawPointer? = nil
            let capacity = max(floats, 4096)
            // Kernels ask from inside parallel loops, where nothing can be thrown; the sizes are
            // bounded by a layer's rows (a padded input band, packed panels), small next to the
            // planned memory that `compile` checks, so a refusal here means the machine ran out
            // after the check: stop with a message rather than dereference nil.
            guard posix_memalign(&raw, 64, capacity * MemoryLayout<Float>.stride) == 0, let raw else {
                fatalError("out of memory: the system refused \(capacity * 4) bytes of per-thread scratch")
            }
            buffer.pointer = raw.bindMemory(to: Float.self, capacity: capacity)
            buffer.capacity = capacity
        }
        return buffer.pointer!
    }
}
