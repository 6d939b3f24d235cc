/// A seeded, deterministic random number generator (SplitMix64, Steele, Lea and Flood,
/// "Fast splittable pseudorandom number generators", OOPSLA 2014).
///
/// Doorbell never uses unseeded randomness: property tests, the explorer's random walks and any
/// generated workload draw from this, so the same seed gives the same run on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z &>> 31)
    }

    /// `count` random bytes.
    public mutating func bytes(_ count: Int) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(max(count, 0))
        while out.count < count {
            let word = next()
            for i in 0..<8 where out.count < count { out.append(UInt8(truncatingIfNeeded: word &>> UInt64(8 * i))) }
        }
        return out
    }
}
