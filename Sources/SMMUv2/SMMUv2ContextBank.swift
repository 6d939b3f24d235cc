import Bus

/// One translation context bank's registers: the SMMU_CBARn / CBA2Rn / CBFRSYNRAn entries of
/// global space 1 (IHI 0062D §10.7) and the bank's own page (§10.8, chapter 14).
public struct SMMUv2ContextBank: Hashable, Sendable {
    // Global space 1.
    public var cbar: UInt32 = 0
    public var cba2r: UInt32 = 0
    public var cbfrsynra: UInt32 = 0
    // The bank's page.
    public var sctlr: UInt32 = 0
    public var actlr: UInt32 = 0
    public var tcr2: UInt32 = 0
    public var ttbr0: UInt64 = 0
    public var ttbr1: UInt64 = 0
    public var tcr: UInt32 = 0
    public var contextIDR: UInt32 = 0
    public var mair0: UInt32 = 0
    public var mair1: UInt32 = 0
    public var par: UInt64 = 0
    public var fsr: UInt32 = 0
    public var far: UInt64 = 0
    public var fsynr0: UInt32 = 0
    public var fsynr1: UInt32 = 0

    public init() {}

    /// SMMU_CBARn.TYPE[17:16].
    public var type: UInt32 { cbar.bits(17, 16) }
    /// SMMU_CBARn.VMID[7:0], or SMMU_CBA2Rn.VMID16[31:16] when sCR0.VMID16EN is set.
    public func vmid(sixteenBit: Bool) -> UInt16 {
        sixteenBit ? UInt16(truncatingIfNeeded: cba2r >> 16) : UInt16(truncatingIfNeeded: cbar & 0xFF)
    }
    /// SMMU_CBA2Rn.VA64[0]: the bank uses the AArch64 translation scheme.
    public var va64: Bool { cba2r.bit(0) }
    /// SMMU_CBn_SCTLR.M: the MMU is enabled for this bank.
    public var enabled: Bool { sctlr.bit(SMMUv2Field.sctlrM) }
    /// Whether the bank translates at stage 1 (CBAR.TYPE ≠ stage 2 only).
    public var isStage1: Bool { type != SMMUv2Field.cbarTypeS2 }
}

/// What the SMMU did with a client transaction.
public enum SMMUv2Response: Hashable, Sendable {
    /// Passed on at `output`: translated by context bank `contextBank`, or bypassed (nil bank).
    case translated(output: PhysicalAddress, contextBank: Int?)
    /// Terminated: `abort` (SCTLR.CFRE / sCR0.GFRE set: an abort returns to the client) or
    /// read-as-zero/write-ignored. `reason` says why, for traces and reports.
    case terminated(abort: Bool, reason: String)
}
