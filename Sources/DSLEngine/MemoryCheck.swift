import Foundation

// Memory the machine can give, and the error the engine throws when a plan does not fit or the
// system refuses an allocation. `EngineGraph.compile` plans every byte it will hold before it
// allocates any (`EngineGraph.plannedMemory(training:)`), compares the plan with
// `EngineMemory.availableBytes()` and refuses, with the planned and available figures and the
// largest batch that fits, instead of allocating until the process is killed.

/// What the machine can give the engine.
public enum EngineMemory {
    /// Overrides the measured figure (bytes; tests). `DSL_AVAILABLE_MEMORY` in the environment
    /// (a byte count, or with a K, M, G or T suffix in powers of 1024) does the same for the
    /// `dsl` binary, so that command-line tests do not depend on the machine.
    public nonisolated(unsafe) static var availableOverride: Int? = nil

    /// Bytes the engine may allocate: the smaller of `MemAvailable` (/proc/meminfo) and the
    /// room left under the cgroup's memory limit (v2 `memory.max` − `memory.current`, or v1
    /// `memory.limit_in_bytes` − `memory.usage_in_bytes`), less a margin of 10 % and at least
    /// 64 MiB for everything else the process holds; nil where none of these can be read.
    public static func availableBytes() -> Int? {
        if let o = availableOverride { return o }
        if let text = getenv("DSL_AVAILABLE_MEMORY").map({ String(cString: $0) }), let v = parseByteCount(text) { return v }
        var figures: [Int] = []
        if let meminfo = readText("/proc/meminfo") {
            for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
                let parts = line.split(separator: " ")
                if parts.count >= 2, let kib = Int(parts[1]) { figures.append(kib * 1024) }
            }
        }
        if let room = cgroupRoom() { figures.append(room) }
        guard let available = figures.min() else { return nil }
        return max(0, available - max(available / 10, 64 << 20))
    }

    /// Room under the cgroup memory limit, if one is set.
    static func cgroupRoom() -> Int? {
        var candidates: [(limit: String, usage: String)] = []
        // cgroup v2: the process's own group (0::/path), then the root of the mount.
        if let own = readText("/proc/self/cgroup")?.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) {
            let path = String(own.dropFirst(3))
            if path != "/" { candidates.append(("/sys/fs/cgroup\(path)/memory.max", "/sys/fs/cgroup\(path)/memory.current")) }
        }
        candidates.append(("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"))
        candidates.append(("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))
        for (limitPath, usagePath) in candidates {
            guard let text = readText(limitPath)?.split(separator: "\n").first else { continue }
            // "max" (v2) or a huge number (v1, 2^63 rounded to pages) means no limit.
            guard let limit = Int(text), limit < 1 << 60 else { return nil }
            let usage = readText(usagePath).flatMap { Int($0.split(separator: "\n").first ?? "") } ?? 0
            return max(0, limit - usage)
        }
        return nil
    }

    /// A whole file's text, or nil (small files under /proc and /sys).
    static func readText(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = fread(&buffer, 1, buffer.count, f)
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `123`, `64M`, `1.5G`, `2T` (powers of 1024) as bytes.
    public static func parseByteCount(_ text: String) -> Int? {
        var s = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
        var scale = 1.0
        if let last = s.last, let m = ["K": 1024.0, "M": 1024.0 * 1024, "G": 1024.0 * 1024 * 1024,
                                        "T": 1024.0 * 1024 * 1024 * 1024][String(last).uppercased()] {
            scale = m
            s = s.dropLast()
        }
        guard let v = Double(s), v.isFinite, v >= 0, v * scale < 9e18 else { return nil }
        return Int(v * scale)
    }
}

/// The engine could not get the memory a network needs: its plan exceeds what the machine can
/// give (checked before anything is allocated), or the system refused an allocation.
public struct EngineMemoryError: Error, CustomStringConvertible {
    /// Bytes the plan needs (or the allocation that failed).
    public let plannedBytes: Int
    /// Bytes the machine can give (nil when an allocation failed without a plan check).
    public let availableBytes: Int?
    /// The batch the graph was planned for (nil for a failed allocation).
    public let batch: Int?
    /// Whether the plan was for training.
    public let training: Bool
    /// The largest batch whose plan fits (nil: not even a batch of 1, or not known).
    public let largestBatch: Int?

    init(plannedBytes: Int, availableBytes: Int, batch: Int, training: Bool, largestBatch: Int?) {
        self.plannedBytes = plannedBytes
        self.availableBytes = availableBytes
        self.batch = batch
        self.training = training
        self.largestBatch = largestBatch
    }

    init(allocationFailed bytes: Int) {
        plannedBytes = bytes
        availableBytes = nil
        batch = nil
        training = false
        largestBatch = nil
    }

    /// "the network needs 140.2 GiB for inference at batch 4096, but this machine can give
    /// 19.8 GiB; the largest batch that fits is 570".
    public var description: String {
        guard let available = availableBytes, let batch else {
            return "out of memory: the system refused to allocate \(formatBytes(plannedBytes))"
        }
        var s = "the network needs \(formatBytes(plannedBytes)) for \(training ? "training" : "inference") at batch \(batch), "
            + "but this machine can give \(formatBytes(available))"
        if let largest = largestBatch {
            s += "; the largest batch that fits is \(largest)"
        } else {
            s += "; even a batch of 1 does not fit"
        }
        return s
    }
}

/// `12.0 MiB`, `1.50 GiB`.
public func formatBytes(_ n: Int) -> String {
    let v = Double(n)
    let kib = 1024.0, mib = kib * 1024, gib = mib * 1024
    if v >= gib { return String(format: "%.2f GiB", v / gib) }
    if v >= mib { return String(format: "%.1f MiB", v / mib) }
    if v >= kib { return String(format: "%.1f KiB", v / kib) }
    return "\(n) B"
}
