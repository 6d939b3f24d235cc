import Bus

/// Geometry of one VMSAv8-64 translation (Arm ARM D8.2 "Translation table walk"; docs/hardware.md
/// §Translation table walks): granule, input size, start level and, at stage 2, the number of concatenated start
/// tables. Shared by the walker, the validity checks and the page-table builder so that the
/// three can never disagree about where a descriptor lives.
public struct WalkGeometry: Hashable, Sendable, CustomStringConvertible {
    public var granule: Granule
    /// Input-address bits (64 − TxSZ).
    public var inputSize: Int
    /// Level of the first table read (0…3).
    public var startLevel: Int

    public init(granule: Granule, inputSize: Int, startLevel: Int) {
        self.granule = granule
        self.inputSize = inputSize
        self.startLevel = startLevel
    }

    /// Input bits resolved by the start level: inputSize − shift(start). More than one stride
    /// means concatenated start tables (stage 2 only).
    public var startLevelBits: Int { inputSize - granule.levelShift(startLevel) }

    /// Number of concatenated start tables: 2^(startLevelBits − stride), at least 1
    /// (Arm ARM D8.2.7 "Concatenated translation tables for the initial stage 2 lookup").
    public var concatenatedTables: Int {
        let extra = startLevelBits - granule.stride
        return extra <= 0 ? 1 : 1 << min(extra, 30)
    }

    /// Entries in the start table (all concatenated tables together).
    public var startTableEntries: Int { 1 << min(max(startLevelBits, 0), 40) }

    /// Bytes of the start table(s); the base is aligned down to this size (STE.S2TTB: "bits
    /// [(x−1):0] are treated as zero", Arm ARM TTBR BADDR alignment).
    public var startTableBytes: UInt64 { UInt64(startTableEntries) &* 8 }

    /// Bits of input resolved at `level` (the start level may resolve fewer or more than a
    /// stride).
    public func bitsResolved(at level: Int) -> Int {
        level == startLevel ? startLevelBits : granule.stride
    }

    /// Index of the descriptor for `address` in the table at `level`.
    @inlinable
    public func index(of address: UInt64, at level: Int) -> UInt64 {
        let shift = granule.levelShift(level)
        let bits = level == startLevel ? startLevelBits : granule.stride
        return address.bits(shift + bits - 1, shift)
    }

    /// Stage-1 start level from the input size: 4 − ⌊(inputSize − 4) / stride⌋ (Arm ARM
    /// AArch64.S1StartLevel; docs/hardware.md §Translation table walks). E.g. 4K/48 → 0, 4K/39 → 1, 64K/48 → 1, 16K/47 → 1.
    public static func stage1StartLevel(granule: Granule, inputSize: Int) -> Int {
        4 - (inputSize - 4) / granule.stride
    }

    /// Stage-2 start level encoded by VTCR_EL2.SL0 / STE.S2SL0 (Arm ARM AArch64.S2StartLevel):
    /// 4K: 0 → L2, 1 → L1, 2 → L0, 3 → L3 (FEAT_TTST only); 16K/64K: 0 → L3, 1 → L2, 2 → L1,
    /// 3 → L0 on 16K only with DS=1 (never here). Returns nil where AArch64.S2InvalidSL says the
    /// encoding is invalid: 4K SL0=2 needs PAMax ≥ 44, SL0=3 needs STT; 16K SL0=2 needs
    /// PAMax ≥ 42; 64K SL0=2 needs PAMax ≥ 44; 16K/64K SL0=3 invalid (QEMU check_s2_mmu_setup,
    /// which mirrors the pseudocode).
    public static func stage2StartLevel(granule: Granule, sl0: Int, physicalAddressBits: Int, smallTables: Bool) -> Int? {
        switch granule {
        case .size4K:
            switch sl0 {
            case 0: return 2
            case 1: return 1
            case 2: return physicalAddressBits >= 44 ? 0 : nil
            case 3: return smallTables ? 3 : nil
            default: return nil
            }
        case .size16K:
            switch sl0 {
            case 0: return 3
            case 1: return 2
            case 2: return physicalAddressBits >= 42 ? 1 : nil
            default: return nil
            }
        case .size64K:
            switch sl0 {
            case 0: return 3
            case 1: return 2
            case 2: return physicalAddressBits >= 44 ? 1 : nil
            default: return nil
            }
        }
    }

    /// The SL0 encoding of a stage-2 start level (inverse of `stage2StartLevel`; Linux
    /// `arm_64_lpae_alloc_pgtable_s2`: sl = start (+1 for 4K), SL0 = ~sl & 3).
    public static func sl0(granule: Granule, startLevel: Int) -> Int {
        let sl = granule == .size4K ? startLevel + 1 : startLevel
        return ~sl & 3
    }

    /// AArch64.S2InconsistentSL: the start level must resolve at least one input bit and at
    /// most a stride plus 4 (16 concatenated tables): shift(start) + 1 ≤ inputSize ≤
    /// shift(start) + stride + 4.
    public var isConsistentStage2: Bool {
        let minimum = granule.levelShift(startLevel) + 1
        let maximum = minimum + (granule.stride - 1) + 4
        return inputSize >= minimum && inputSize <= maximum
    }

    /// A stage-2 layout of `inputSize` bits for the bare-metal page-table builder: the minimal
    /// number of levels, then, if that starts at level 0 with at most 16 entries, one level
    /// lower with concatenated tables. This is io-pgtable-arm's rule before v6.14 (before commit
    /// 4dcac8407fe1, `arm_64_lpae_alloc_pgtable_s2` with ARM_LPAE_S2_MAX_CONCAT_PAGES = 16);
    /// it needs no OAS and is valid wherever the SMMU's OAS allows the start level it picks
    /// (for 16K with 37–47 bits, start level 1, an OAS of at least 42). The Linux kernel model
    /// uses the v6.14+ rule, which depends on the OAS (`IOPageTableARM.stage2Geometry`).
    public static func linuxStage2(granule: Granule, inputSize: Int) -> WalkGeometry {
        let levels = (inputSize - granule.shift + granule.stride - 1) / granule.stride
        var start = 4 - levels
        if start == 0 {
            let pgdBits = inputSize - granule.shift - granule.stride * (levels - 1)
            if pgdBits <= 4 { start = 1 }
        }
        return WalkGeometry(granule: granule, inputSize: inputSize, startLevel: start)
    }

    /// Whether a block descriptor is permitted at `level` (Arm ARM D8.3.1, without FEAT_LPA2):
    /// 4K: levels 1 and 2; 16K: level 2; 64K: level 2, and level 1 (4 TiB) only with FEAT_LPA
    /// (modelled as a 52-bit OAS). Elsewhere bits[1:0] = 0b01 is treated as invalid.
    public static func blockAllowed(granule: Granule, level: Int, lpa: Bool) -> Bool {
        switch granule {
        case .size4K: level == 1 || level == 2
        case .size16K: level == 2
        case .size64K: level == 2 || (level == 1 && lpa)
        }
    }

    public var description: String {
        let concat = concatenatedTables > 1 ? " ×\(concatenatedTables) concatenated" : ""
        return "\(granule) granule, \(inputSize)-bit input, start L\(startLevel)\(concat)"
    }
}

extension Granule {
    /// CD.TG0 / STE.S2TG encoding (§5.4 CD.TG0, §5.2 STE.S2TG): 0 4K, 1 64K, 2 16K, 3 reserved.
    public init?(tg0 field: UInt64) {
        switch field {
        case 0: self = .size4K
        case 1: self = .size64K
        case 2: self = .size16K
        default: return nil
        }
    }

    /// The TG0 / S2TG encoding of this granule.
    public var tg0: UInt64 {
        switch self {
        case .size4K: 0
        case .size64K: 1
        case .size16K: 2
        }
    }

    /// CD.TG1 encoding (§5.4 CD.TG1, = TCR_EL1.TG1): 1 16K, 2 4K, 3 64K, 0 reserved.
    public init?(tg1 field: UInt64) {
        switch field {
        case 1: self = .size16K
        case 2: self = .size4K
        case 3: self = .size64K
        default: return nil
        }
    }

    /// The TG1 encoding of this granule.
    public var tg1: UInt64 {
        switch self {
        case .size16K: 1
        case .size4K: 2
        case .size64K: 3
        }
    }
}
