import Foundation

/// SplitMix64 generator with Box–Muller normals: small, fast and deterministic under its seed.
public struct EngineRandom {
    private var state: UInt64
    private var spareNormal: Double?

    /// A generator whose sequence is fixed by the seed.
    public init(seed: UInt64) { state = seed }

    /// The SplitMix64 finaliser: a stateless 64-bit hash (also used for counter-based dropout).
    @inline(__always)
    public static func mix(_ value: UInt64) -> UInt64 {
        finalize(value &+ 0x9E37_79B9_7F4A_7C15)
    }

    /// The SplitMix64 output function: scrambles a 64-bit state into 64 random-looking bits.
    @inlinable @inline(__always)
    public static func finalize(_ state: UInt64) -> UInt64 {
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return EngineRandom.mix(state)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Standard normal (Box–Muller, both values used).
    public mutating func normal() -> Double {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        let u1 = 1 - uniform()  // (0, 1]: log is finite
        let u2 = uniform()
        let radius = (-2 * log(u1)).squareRoot()
        spareNormal = radius * sin(2 * Double.pi * u2)
        return radius * cos(2 * Double.pi * u2)
    }
}
