// dsl-fuzz: the in-process fuzzer of the front end, the printer (`fmt`), the passes and the
// engine (Sources/DSLFuzz). A supervisor runs the campaign in worker processes, each calling
// the oracles as functions on inputs `start, start + jobs, ...`; when a worker dies on a signal,
// exceeds its memory limit or stops making progress, the supervisor knows the input it was
// running (inputs are a pure function of the seed and their index), saves it, and starts a new
// worker after it. See README.md, "Fuzzing".
import DSLFuzz
import Foundation
#if os(Linux)
import Glibc
#endif

let usage = """
Usage: dsl-fuzz [--seed S] [--count N] [--start I] [--jobs J] [--corpus DIR]... [--findings DIR]
                [--front-end-only] [--hang-seconds T] [--memory-limit GIB]
       dsl-fuzz --only I [--seed S] [--corpus DIR]...    run one input here and print its findings
       dsl-fuzz --print I [--seed S] [--corpus DIR]...   print one input's bytes

Generates and mutates specs and checks, for each, that: every diagnostic is located in the
file; fmt round-trips (same statements, same comments, idempotent, same network); every
rewrite pass verifies or warns; what `check` accepts the engine runs (forward, and backward
when it ends in softmax) on small shapes; one and two threads give identical bits; and that
nothing traps, hangs or exceeds the memory limit (checked by the supervisor).

Options:
  --seed S            campaign seed (default 1)
  --count N           inputs to run (default 10000)
  --start I           first input index (default 0)
  --jobs J            worker processes (default 2)
  --corpus DIR        seed directory of .dsl files (repeatable; default specs,
                      Tests/CLITests/bad-specs, Tests/CLITests/good-specs, Tests/FuzzTests/regressions)
  --findings DIR      where failing inputs are saved (default .build/fuzz-findings)
  --front-end-only    skip the engine and pass oracles
  --hang-seconds T    an input running longer than T seconds is a hang (default 60)
  --memory-limit GIB  address-space limit of each worker (default 8)

Exit codes: 0 no findings, 1 findings, 2 usage.

"""

struct Options {
    var seed: UInt64 = 1
    var count = 10_000
    var start = 0
    var jobs = 2
    var corpus: [String] = []
    var findings = ".build/fuzz-findings"
    var frontEndOnly = false
    var hangSeconds = 60.0
    var memoryLimitGiB = 8.0
    var worker = false
    var step = 1
    var end = 0
    var only: Int?
    var printIndex: Int?
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("dsl-fuzz: \(message)\nRun 'dsl-fuzz --help' for usage.\n".utf8))
    exit(2)
}

func parseOptions() -> Options {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    func value(_ name: String) -> String {
        guard !args.isEmpty else { fail("option \(name) needs a value") }
        return args.removeFirst()
    }
    func integer(_ name: String) -> Int {
        let v = value(name)
        guard let n = Int(v), n >= 0 else { fail("\(name) must be a whole number >= 0, got '\(v)'") }
        return n
    }
    func number(_ name: String) -> Double {
        let v = value(name)
        guard let n = Double(v), n > 0, n.isFinite else { fail("\(name) must be a positive number, got '\(v)'") }
        return n
    }
    while !args.isEmpty {
        let a = args.removeFirst()
        switch a {
        case "--help", "-h": print(usage, terminator: ""); exit(0)
        case "--seed": o.seed = UInt64(integer(a))
        case "--count": o.count = integer(a)
        case "--start": o.start = integer(a)
        case "--jobs": o.jobs = max(1, integer(a))
        case "--corpus": o.corpus.append(value(a))
        case "--findings": o.findings = value(a)
        case "--front-end-only": o.frontEndOnly = true
        case "--hang-seconds": o.hangSeconds = number(a)
        case "--memory-limit": o.memoryLimitGiB = number(a)
        case "--worker": o.worker = true
        case "--step": o.step = max(1, integer(a))
        case "--end": o.end = integer(a)
        case "--only": o.only = integer(a)
        case "--print": o.printIndex = integer(a)
        default: fail("unknown option \(a)")
        }
    }
    if o.corpus.isEmpty { o.corpus = ["specs", "Tests/CLITests/bad-specs", "Tests/CLITests/good-specs", "Tests/FuzzTests/regressions"] }
    return o
}

func makeCampaign(_ o: Options) -> Campaign {
    var oracles = Oracles()
    if o.frontEndOnly { oracles.engine = false; oracles.passes = false }
    return Campaign(seed: o.seed, corpus: Campaign.loadCorpus(o.corpus), oracles: oracles)
}

/// Escapes a line of the worker protocol.
func oneLine(_ s: String) -> String { s.replacingOccurrences(of: "\n", with: "\\n") }

func writeLine(_ s: String) {
    let bytes = Array((s + "\n").utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBufferPointer { write(1, $0.baseAddress!, $0.count) }
        if n <= 0 { exit(3) }
        off += n
    }
}

func countsLine(_ c: OracleCounts) -> String {
    "c \(c.parsed) \(c.checked) \(c.diagnostics) \(c.formatted) \(c.passes) \(c.passWarnings) \(c.engineForward) \(c.engineBackward) \(c.engineSkipped)"
}

// MARK: Worker

func runWorker(_ o: Options) -> Never {
    var limit = rlimit(rlim_cur: rlim_t(o.memoryLimitGiB * 1_073_741_824), rlim_max: rlim_t(o.memoryLimitGiB * 1_073_741_824))
    setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit)
    CrashReporter.install()
    let campaign = makeCampaign(o)
    var counts = OracleCounts(), reported = OracleCounts()
    var i = o.start, done = 0
    while i < o.end {
        writeLine("i \(i)")
        let t0 = DispatchTime.now().uptimeNanoseconds
        let (_, origin, findings) = campaign.run(i, counts: &counts)
        let ms = Int((DispatchTime.now().uptimeNanoseconds - t0) / 1_000_000)
        if ms >= 500 { writeLine("t \(i) \(ms)") }
        for f in findings { writeLine("f \(i) \(f.kind.rawValue) \(oneLine(origin)) | \(oneLine(f.message))") }
        done += 1
        if done % 128 == 0 {
            var delta = counts
            delta.parsed -= reported.parsed; delta.checked -= reported.checked; delta.diagnostics -= reported.diagnostics
            delta.formatted -= reported.formatted; delta.passes -= reported.passes; delta.passWarnings -= reported.passWarnings
            delta.engineForward -= reported.engineForward; delta.engineBackward -= reported.engineBackward
            delta.engineSkipped -= reported.engineSkipped
            writeLine(countsLine(delta))
            reported = counts
        }
        i += o.step
    }
    var delta = counts
    delta.parsed -= reported.parsed; delta.checked -= reported.checked; delta.diagnostics -= reported.diagnostics
    delta.formatted -= reported.formatted; delta.passes -= reported.passes; delta.passWarnings -= reported.passWarnings
    delta.engineForward -= reported.engineForward; delta.engineBackward -= reported.engineBackward
    delta.engineSkipped -= reported.engineSkipped
    writeLine(countsLine(delta))
    writeLine("d")
    exit(0)
}

// MARK: Supervisor

final class Worker {
    let job: Int
    let process = Process()
    let pipe = Pipe()
    let lock = NSLock()
    var pending = Data()
    var eof = false
    var lastStarted: Int?
    var lastProgress = Date()
    var finished = false
    var inputs = 0

    init(job: Int, start: Int, options o: Options) throws {
        self.job = job
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        var args = ["--worker", "--seed", String(o.seed), "--start", String(start), "--end", String(o.start + o.count),
                    "--step", String(o.jobs), "--memory-limit", String(o.memoryLimitGiB)]
        for c in o.corpus { args += ["--corpus", c] }
        if o.frontEndOnly { args.append("--front-end-only") }
        process.arguments = args
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let handle = pipe.fileHandleForReading
        Thread.detachNewThread { [self] in
            while true {
                let data = handle.availableData
                lock.lock()
                if data.isEmpty { eof = true; lock.unlock(); return }
                pending.append(data)
                lock.unlock()
            }
        }
    }

    /// Complete lines received so far.
    func lines() -> [String] {
        lock.lock(); defer { lock.unlock() }
        guard let last = pending.lastIndex(of: 10) else { return [] }
        let chunk = pending[pending.startIndex...last]
        pending.removeSubrange(pending.startIndex...last)
        return String(decoding: chunk, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    var reachedEOF: Bool { lock.lock(); defer { lock.unlock() }; return eof }
}

struct FindingRecord {
    var index: Int
    var kind: String
    var origin: String
    var message: String
}

func supervise(_ o: Options) -> Int32 {
    let campaign = makeCampaign(o)
    let startTime = Date()
    var counts = OracleCounts()
    var findings: [FindingRecord] = []
    var workers: [Worker] = []
    var lastReport = Date()
    var slowest: [(index: Int, ms: Int)] = []
    try? FileManager.default.createDirectory(atPath: o.findings, withIntermediateDirectories: true)

    func save(_ f: FindingRecord) {
        let (bytes, origin) = campaign.input(f.index)
        let base = "\(o.findings)/\(f.kind)-s\(o.seed)-i\(f.index)"
        _ = FileManager.default.createFile(atPath: base + ".dsl", contents: Data(bytes))
        let note = "seed \(o.seed), input \(f.index) (\(origin)): \(f.kind): \(f.message)\nreproduce: dsl-fuzz --seed \(o.seed) --only \(f.index)\n"
        _ = FileManager.default.createFile(atPath: base + ".txt", contents: Data(note.utf8))
        FileHandle.standardError.write(Data("dsl-fuzz: \(f.kind) on input \(f.index) (\(origin)): \(f.message.prefix(300))\n  saved \(base).dsl\n".utf8))
    }

    func handle(_ line: String, _ w: Worker) {
        if line.hasPrefix("i ") {
            w.lastStarted = Int(line.dropFirst(2)); w.lastProgress = Date(); w.inputs += 1; counts.inputs += 1
        } else if line.hasPrefix("f ") {
            let parts = line.dropFirst(2).split(separator: " ", maxSplits: 2).map(String.init)
            guard parts.count == 3, let index = Int(parts[0]) else { return }
            let rest = parts[2]
            let bar = rest.range(of: " | ")
            let origin = bar.map { String(rest[..<$0.lowerBound]) } ?? ""
            let message = bar.map { String(rest[$0.upperBound...]) } ?? rest
            let f = FindingRecord(index: index, kind: parts[1], origin: origin, message: message)
            findings.append(f); save(f)
        } else if line.hasPrefix("c ") {
            let v = line.dropFirst(2).split(separator: " ").compactMap { Int($0) }
            guard v.count == 9 else { return }
            var d = OracleCounts()
            (d.parsed, d.checked, d.diagnostics, d.formatted, d.passes, d.passWarnings, d.engineForward, d.engineBackward, d.engineSkipped) =
                (v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8])
            counts.add(d)
        } else if line.hasPrefix("t ") {
            let v = line.dropFirst(2).split(separator: " ").compactMap { Int($0) }
            if v.count == 2 { slowest.append((v[0], v[1])); slowest.sort { $0.ms > $1.ms }; if slowest.count > 5 { slowest.removeLast() } }
        } else if line == "d" {
            w.finished = true
        }
    }

    do {
        for j in 0..<min(o.jobs, max(1, o.count)) where o.start + j < o.start + o.count {
            workers.append(try Worker(job: j, start: o.start + j, options: o))
        }
    } catch {
        FileHandle.standardError.write(Data("dsl-fuzz: cannot start a worker: \(error)\n".utf8))
        return 2
    }
    while !workers.isEmpty {
        usleep(100_000)
        var next: [Worker] = []
        for w in workers {
            for line in w.lines() { handle(line, w) }
            let stuck = Date().timeIntervalSince(w.lastProgress) > o.hangSeconds
            if stuck && w.process.isRunning {
                kill(w.process.processIdentifier, SIGKILL)
                w.process.waitUntilExit()
                if let i = w.lastStarted {
                    let f = FindingRecord(index: i, kind: "hang", origin: campaign.input(i).origin, message: "no progress for \(Int(o.hangSeconds)) s")
                    findings.append(f); save(f)
                }
            }
            if w.process.isRunning || !w.reachedEOF { next.append(w); continue }
            w.process.waitUntilExit()
            for line in w.lines() { handle(line, w) }
            if w.finished && w.process.terminationStatus == 0 { continue }
            // The worker died: the input it had started is the culprit.
            let resumeAt: Int
            if let i = w.lastStarted {
                if !stuck {
                    let how = w.process.terminationReason == .uncaughtSignal ? "signal \(w.process.terminationStatus)" : "exit \(w.process.terminationStatus)"
                    let f = FindingRecord(index: i, kind: "trap", origin: campaign.input(i).origin, message: "the worker died (\(how))")
                    findings.append(f); save(f)
                }
                resumeAt = i + o.jobs
            } else {
                FileHandle.standardError.write(Data("dsl-fuzz: a worker failed before its first input (exit \(w.process.terminationStatus))\n".utf8))
                return 2
            }
            if resumeAt < o.start + o.count {
                do { next.append(try Worker(job: w.job, start: resumeAt, options: o)) } catch { return 2 }
            }
        }
        workers = next
        if Date().timeIntervalSince(lastReport) >= 10 {
            lastReport = Date()
            let t = Date().timeIntervalSince(startTime)
            FileHandle.standardError.write(Data(String(format: "dsl-fuzz: %d / %d inputs, %.0f s, %.0f inputs/s, %d findings\n", counts.inputs, o.count, t, Double(counts.inputs) / t, findings.count).utf8))
        }
    }
    let seconds = Date().timeIntervalSince(startTime)
    var report = """
    dsl-fuzz: seed \(o.seed), inputs \(o.start)..<\(o.start + o.count), \(o.jobs) worker\(o.jobs == 1 ? "" : "s")
      inputs run:            \(counts.inputs) in \(String(format: "%.1f", seconds)) s (\(String(format: "%.0f", Double(counts.inputs) / max(seconds, 1e-9))) inputs/s)
      parsed without errors: \(counts.parsed)
      accepted by check:     \(counts.checked)
      diagnostics located:   \(counts.diagnostics)
      fmt round trips:       \(counts.formatted)
      pass runs verified:    \(counts.passes) (\(counts.passWarnings) warnings where a pass skipped a place)
      engine runs:           \(counts.engineForward) forward, \(counts.engineBackward) also backward, each with 1 and 2 threads (\(counts.engineSkipped) checked networks over the engine budget)
      slowest inputs:        \(slowest.isEmpty ? "all under 0.5 s" : slowest.map { "#\($0.index) \(String(format: "%.1f", Double($0.ms) / 1000)) s" }.joined(separator: ", "))
      findings:              \(findings.count)
    """
    for kind in Finding.Kind.allCases {
        let n = findings.filter { $0.kind == kind.rawValue }.count
        report += "\n    \(kind.rawValue): \(n)"
    }
    print(report)
    return findings.isEmpty ? 0 : 1
}

// MARK: Main

let options = parseOptions()
if options.worker { runWorker(options) }
if let i = options.printIndex {
    let (bytes, _) = makeCampaign(options).input(i)
    FileHandle.standardOutput.write(Data(bytes))
    exit(0)
}
if let i = options.only {
    CrashReporter.install()
    var counts = OracleCounts()
    let (_, origin, findings) = makeCampaign(options).run(i, counts: &counts)
    print("input \(i) (\(origin)): \(findings.isEmpty ? "no findings" : "\(findings.count) finding\(findings.count == 1 ? "" : "s")")")
    for f in findings { print("  \(f.kind.rawValue): \(f.message)") }
    exit(findings.isEmpty ? 0 : 1)
}
exit(supervise(options))
