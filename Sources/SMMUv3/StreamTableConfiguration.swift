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

    /// The table STRTAB_BASE / STRTAB_BASE_CFG describe (§6.3.24–25):
    /// - LOG2SIZE is capped at IDR1.SIDSIZE ("the effective LOG2SIZE");
    /// - FMT = 0b01 selects the 2-level format only if IDR0.ST_LEVEL advertises it; FMT = 0b01
    ///   without support and the Reserved 0b1x are treated as linear (a CONSTRAINED
    ///   UNPREDICTABLE choice);
    /// - the base is aligned as §6.3.24 says, using the literal LOG2SIZE: a linear table to its
    ///   size (ADDR[LOG2SIZE+5:0] = 0), a 2-level L1 table to max(64 bytes, its size)
    ///   (ADDR[MAX(5, LOG2SIZE−SPLIT−1+3):0] = 0);
    /// - SPLIT is kept as written; `StreamTableWalker` applies §6.3.25's "other values behave
    ///   as 6".
    public init(strtabBase: UInt64, strtabBaseCfg cfg: UInt32, on configuration: SMMUConfiguration) {
        let log2Size = SMMURegisterField.streamTableLog2Size(cfg)
        let split = SMMURegisterField.streamTableSplit(cfg)
        let twoLevel = SMMURegisterField.streamTableFormat(cfg) == 1 && configuration.twoLevelStreamTable
        let lowBit = twoLevel ? max(5, log2Size - split + 2) : log2Size + 5
        let address = SMMURegisterField.streamTableAddress(strtabBase) & ~UInt64.lowMask(lowBit + 1)
        self.init(base: PhysicalAddress(address),
                  log2Size: min(log2Size, configuration.effectiveStreamIDBits),
                  split: split, twoLevel: twoLevel)
    }

    /// An empty linear table at 0 (what the registers hold after reset).
    public static let reset = StreamTableConfiguration(base: PhysicalAddress(0), log2Size: 0, split: 0, twoLevel: false)
}
