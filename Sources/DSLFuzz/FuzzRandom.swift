/// The fuzzer's random numbers: SplitMix64, seeded per input so that input `i` of a campaign
/// with seed `s` is the same on every machine and every run (a finding is reproduced from
/// `(seed, index)` alone).
public struct FuzzRandom: RandomNumberGenerator {
    private var state: UInt64

    /// A generator for input `index` of the campaign seeded with `seed`.
    public init(seed: UInt64, index: UInt64 = 0) {
        state = seed &* 0x9E37_79B9_7F4A_7C15 ^ (index &+ 0x632B_E59B_D9B4_E019) &* 0xD1B5_4A32_D192_ED03
        _ = next(); _ = next()
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `range`.
    public mutating func int(_ range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound) &+ 1
        if span == 0 { return Int(truncatingIfNeeded: next()) }
        return range.lowerBound + Int(next() % span)
    }

    /// A uniform integer in `range`.
    public mutating func int(_ range: Range<Int>) -> Int { int(range.lowerBound...(range.upperBound - 1)) }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }

    /// A uniformly chosen element.
    public mutating func pick<T>(_ items: [T]) -> T { items[int(0..<items.count)] }

    /// An element chosen with the given relative weights.
    public mutating func weighted<T>(_ items: [(T, Int)]) -> T {
        let total = items.reduce(0) { $0 + $1.1 }
        var r = int(0..<total)
        for (item, w) in items {
            if r < w { return item }
            r -= w
        }
        return items[items.count - 1].0
    }

    /// Mostly small numbers, sometimes larger: for sizes and counts.
    public mutating func small(_ max: Int) -> Int {
        chance(0.7) ? int(1...min(max, 4)) : int(1...max)
    }
}
