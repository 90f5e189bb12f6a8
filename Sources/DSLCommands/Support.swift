import DSLEngine
import DSLTraining
import DSLIR
import Foundation

/// Exit codes shared by every command (README, "Exit codes").
public enum ExitCode {
    /// Success (warnings allowed).
    public static let ok: Int32 = 0
    /// Errors in the spec, the data or a budget gate; or a failed run.
    public static let failure: Int32 = 1
    /// Bad command-line usage.
    public static let usage: Int32 = 2
}

/// Thrown for a command-line mistake: the message is printed with the command's usage line.
struct UsageError: Error { var message: String }

/// Thrown for a failure that has been explained to the user already or carries its message.
struct CommandFailure: Error { var message: String }

/// Writes text to standard output.
func out(_ s: String) { FileHandle.standardOutput.write(s.data(using: .utf8)!) }
/// Writes text to standard error.
func err(_ s: String) { FileHandle.standardError.write(s.data(using: .utf8)!) }

/// A parsed command line: options with values, boolean flags, and positional arguments.
struct Arguments {
    var values: [String: [String]] = [:]
    var flags: Set<String> = []
    var positional: [String] = []

    /// Parses `args` given which options take a value and which are flags; `--x=v` is accepted.
    init(_ args: [String], valueOptions: Set<String>, flagOptions: Set<String>) throws {
        var i = 0
        while i < args.count {
            let a = args[i]
            if a == "--" { positional.append(contentsOf: args[(i + 1)...]); break }
            if a.hasPrefix("-") && a.count > 1 && Double(a) == nil {
                var name = a
                var inline: String?
                if let eq = a.firstIndex(of: "=") { name = String(a[..<eq]); inline = String(a[a.index(after: eq)...]) }
                if valueOptions.contains(name) {
                    if let v = inline { values[name, default: []].append(v) }
                    else {
                        guard i + 1 < args.count else { throw UsageError(message: "option \(name) needs a value") }
                        values[name, default: []].append(args[i + 1]); i += 1
                    }
                } else if flagOptions.contains(name) {
                    if inline != nil { throw UsageError(message: "option \(name) takes no value") }
                    flags.insert(name)
                } else {
                    let all = valueOptions.union(flagOptions).sorted()
                    let near = all.min { Self.distance($0, name) < Self.distance($1, name) }
                    throw UsageError(message: "unknown option \(name)" + (near.map { Self.distance($0, name) <= 3 ? "; did you mean \($0)?" : "" } ?? ""))
                }
            } else {
                positional.append(a)
            }
            i += 1
        }
    }

    static func distance(_ a: String, _ b: String) -> Int {
        let x = Array(a), y = Array(b)
        var prev = Array(0...y.count)
        for i in 1...max(1, x.count) where !x.isEmpty {
            var cur = [i] + [Int](repeating: 0, count: y.count)
            for j in stride(from: 1, through: y.count, by: 1) { cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1)) }
            prev = cur
        }
        return prev[y.count]
    }

    /// `; did you mean 'json'?` for a value one or two edits from one of `choices`, else "".
    static func suggestion(_ value: String, in choices: [String]) -> String {
        guard value.count <= 64, let near = choices.min(by: { distance($0, value) < distance($1, value) }),
              distance(near, value) <= (value.count <= 3 ? 1 : 2), near != value else { return "" }
        return "; did you mean '\(near)'?"
    }

    /// The last value of an option.
    func value(_ name: String) -> String? { values[name]?.last }
    /// Whether a flag was given.
    func has(_ name: String) -> Bool { flags.contains(name) }

    /// An integer option within a range.
    func integer(_ name: String, default d: Int, in range: ClosedRange<Int>) throws -> Int {
        guard let v = value(name) else { return d }
        guard let n = Int(v), range.contains(n) else {
            // `--depth -1`: "must be 0 or more", not "from 0 to 9223372036854775807".
            let bounds = range.upperBound == Int.max ? "\(range.lowerBound) or more" : "from \(range.lowerBound) to \(range.upperBound)"
            throw UsageError(message: "\(name) must be a whole number, \(bounds), got '\(v)'")
        }
        return n
    }

    /// A floating-point option within a range.
    func number(_ name: String, default d: Double, in range: ClosedRange<Double>) throws -> Double {
        guard let v = value(name) else { return d }
        guard let n = Double(v), n.isFinite, range.contains(n) else {
            throw UsageError(message: "\(name) must be a number from \(range.lowerBound) to \(range.upperBound), got '\(v)'")
        }
        return n
    }

    /// An amount such as `1.5G`, `2M`, `300k`, `1e9` or `1,369,738`.
    func amount(_ name: String) throws -> Int? {
        guard let v = value(name) else { return nil }
        guard let n = parseAmount(v) else {
            throw UsageError(message: "\(name) must be a count such as 1500000, 1.5M or 1.5G, got '\(v)'")
        }
        return n
    }
}

/// Parses `1.5G`, `2M`, `300k`, `1e9`, `1,369,738` into an integer count.
func parseAmount(_ text: String) -> Int? {
    var s = text.replacingOccurrences(of: ",", with: "").replacingOccurrences(of: "_", with: "")
    var scale = 1.0
    if let last = s.last, let m = ["k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12][String(last)] {
        scale = m; s.removeLast()
    }
    guard let v = Double(s), v.isFinite, v >= 0, v * scale < 9e18 else { return nil }
    return Int((v * scale).rounded())
}


/// `271.5 M`, `1.58 G`, `12.0 k`.
func human(_ n: Int, unit: String = "") -> String {
    let v = Double(n)
    let a = abs(v)
    if a >= 1e9 { return String(format: "%.2f G", v / 1e9) + unit }
    if a >= 1e6 { return String(format: "%.1f M", v / 1e6) + unit }
    if a >= 1e3 { return String(format: "%.1f k", v / 1e3) + unit }
    return "\(n)" + (unit.isEmpty ? "" : " " + unit)
}

/// `12.0 MiB` (the engine's `formatBytes`, so memory figures read alike everywhere).
func bytes(_ n: Int) -> String { formatBytes(n) }

/// A JSON value with ordered object keys, written without Foundation's reordering.
indirect enum JSON {
    case string(String), int(Int), double(Double), bool(Bool), null
    case array([JSON])
    case object([(String, JSON)])

    /// Renders compactly (`pretty` indents by two spaces).
    func render(pretty: Bool = true, indent: Int = 0) -> String {
        let pad = pretty ? String(repeating: "  ", count: indent + 1) : ""
        let end = pretty ? String(repeating: "  ", count: indent) : ""
        let nl = pretty ? "\n" : ""
        switch self {
        case .string(let s): return JSON.quote(s)
        case .int(let i): return String(i)
        case .double(let d): return d.isFinite ? (d.rounded() == d && abs(d) < 1e15 ? String(format: "%.1f", d) : String(d)) : "null"
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array(let a):
            if a.isEmpty { return "[]" }
            if a.allSatisfy({ if case .int = $0 { return true }; if case .double = $0 { return true }; return false }) {
                return "[" + a.map { $0.render(pretty: false) }.joined(separator: ", ") + "]"
            }
            return "[" + nl + a.map { pad + $0.render(pretty: pretty, indent: indent + 1) }.joined(separator: "," + nl) + nl + end + "]"
        case .object(let o):
            if o.isEmpty { return "{}" }
            return "{" + nl + o.map { pad + JSON.quote($0.0) + (pretty ? ": " : ":") + $0.1.render(pretty: pretty, indent: indent + 1) }.joined(separator: "," + nl) + nl + end + "}"
        }
    }

    static func quote(_ s: String) -> String { jsonQuoted(s) }
}

extension Arguments {
    /// `--dataset NAME` (cifar10, cifar100, mnist), nil when not given; a usage error naming the
    /// choices otherwise. Shared by train, eval and visualize.
    func datasetFormat() throws -> DatasetFormat? {
        try value("--dataset").map { name in
            guard let format = try? DatasetFormat(parsing: name) else {
                throw UsageError(message: "--dataset must be \(DatasetFormat.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'")
            }
            return format
        }
    }

    /// `--labels fine|coarse` (CIFAR-100), nil when not given.
    func cifar100Labels() throws -> CIFAR100Labels? {
        try value("--labels").map { kind in
            guard let labels = try? CIFAR100Labels(parsing: kind) else { throw UsageError(message: "--labels must be fine or coarse, got '\(kind)'") }
            return labels
        }
    }
}
