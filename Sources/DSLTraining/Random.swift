import DSLEngine

/// SplitMix64: a tiny, fast, seedable 64-bit generator (Steele, Lea, Flood 2014).
public struct SplitMix64: RandomNumberGenerator {
    /// The generator's whole state.
    public var state: UInt64

    /// Creates a generator from a seed; equal seeds give equal sequences.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return EngineRandom.finalize(state)
    }

    /// A uniform integer in 0..<bound for 0 < bound ≤ 2^32 (Lemire's multiply-shift).
    @inline(__always)
    public mutating func nextInt(below bound: Int) -> Int {
        let product = (next() >> 32) &* UInt64(bound)
        return Int(product >> 32)
    }

    /// A uniform Bool.
    @inline(__always)
    public mutating func nextBool() -> Bool { next() >> 63 == 1 }

    /// A uniform Float in [0, 1).
    @inline(__always)
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }
}
