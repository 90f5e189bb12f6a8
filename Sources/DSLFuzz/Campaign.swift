import Foundation

/// A fuzzing campaign: input `i` of seed `s` is a pure function of `(s, i)` and the corpus, so a
/// run can be split over processes, resumed, and any finding reproduced from its index.
public struct Campaign {
    /// The campaign's seed.
    public var seed: UInt64
    /// Seed inputs for mutation (the shipped specs, the bad specs, every kept regression).
    public var corpus: [(name: String, bytes: [UInt8])]
    /// The properties checked.
    public var oracles: Oracles

    /// Creates a campaign over a corpus.
    public init(seed: UInt64, corpus: [(name: String, bytes: [UInt8])], oracles: Oracles = Oracles()) {
        self.seed = seed; self.corpus = corpus; self.oracles = oracles
    }

    /// Input `index`: a generated spec, a mutated corpus file, or a mutated generated spec.
    public func input(_ index: Int) -> (bytes: [UInt8], origin: String) {
        var r = FuzzRandom(seed: seed, index: UInt64(index))
        let mode = corpus.isEmpty ? 0 : r.weighted([(0, 45), (1, 35), (2, 20)])
        var generator = SpecGenerator(random: FuzzRandom(seed: r.next()))
        switch mode {
        case 0:
            return (Array(generator.generate().utf8), "generated")
        case 1:
            let base = r.pick(corpus), other = r.pick(corpus)
            var m = Mutator(random: FuzzRandom(seed: r.next()))
            return (m.mutate(base.bytes, other: other.bytes), "mutated \(base.name)")
        default:
            let base = Array(generator.generate().utf8), other = r.pick(corpus)
            var m = Mutator(random: FuzzRandom(seed: r.next()))
            return (m.mutate(base, other: other.bytes), "mutated generated spec")
        }
    }

    /// Runs the oracles on input `index`.
    public func run(_ index: Int, counts: inout OracleCounts) -> (bytes: [UInt8], origin: String, findings: [Finding]) {
        let (bytes, origin) = input(index)
        CrashReporter.current(index: index, bytes: bytes)
        var r = FuzzRandom(seed: seed ^ 0xE61E, index: UInt64(index))
        let findings = oracles.run(bytes, random: &r, counts: &counts)
        return (bytes, origin, findings)
    }

    /// The `.dsl` files of some directories, in a fixed order (missing directories are skipped).
    public static func loadCorpus(_ directories: [String]) -> [(name: String, bytes: [UInt8])] {
        var files: [(String, [UInt8])] = []
        for dir in directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for name in names.sorted() where name.hasSuffix(".dsl") {
                let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
                if let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 { files.append((path, [UInt8](data))) }
            }
        }
        return files
    }
}
