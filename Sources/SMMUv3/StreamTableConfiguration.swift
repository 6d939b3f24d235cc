import Bus

/// Where the stream table is (STRTAB_BASE / STRTAB_BASE_CFG, §6.3.23–24). Helper B sets it from
/// the registers; the translator reads it on every configuration-cache miss.
public struct StreamTableConfiguration: Hashable, Sendable {
    /// STRTAB_BASE.ADDR (64-byte aligned for a linear table; for a 2-level table the L1 table
    /// base, aligned to its size per §6.3.24 — the model uses the address as given).
    public var base: PhysicalAddress
    /// STRTAB_BASE_CFG.LOG2SIZE: log2 of the number of StreamIDs the table covers.
    public var log2Size: Int
    /// STRTAB_BASE_CFG.SPLIT: StreamID bits resolved by the level-2 tables (6, 8 or 10).
    public var split: Int
    /// STRTAB_BASE_CFG.FMT = 0b01 (2-level); false = linear.
    public var twoLevel: Bool

    public init(base: PhysicalAddress, log2Size: Int, split: Int, twoLevel: Bool) {
        self.base = base
        self.log2Size = log2Size
        self.split = split
        self.twoLevel = twoLevel
    }

    /// An empty linear table at 0 (what the registers hold after reset).
    public static let reset = StreamTableConfiguration(base: PhysicalAddress(0), log2Size: 0, split: 0, twoLevel: false)
}
