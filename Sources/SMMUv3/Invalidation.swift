import Bus

/// The scope of one configuration or TLB invalidation command (SMMUv3 §4.3, §4.4; docs/hardware.md §TLB and invalidation).
///
/// Helper B decodes commands into these; `SMMUTranslator.invalidate(_:)` applies each scope to
/// the configuration cache and the TLB exactly as the command's definition says (which entries
/// it must hit, and which it must leave: NH_ASID leaves global entries, S2_IPA leaves combined
/// stage 1+2 entries).
public enum Invalidation: Hashable, Sendable {
    case configurationAll                              // CMD_CFGI_ALL (CFGI_STE_RANGE, Range=31)
    case streamTableEntry(StreamID, leaf: Bool)        // CMD_CFGI_STE
    case streamTableEntryRange(StreamID, range: Int)   // CMD_CFGI_STE_RANGE: 2^(range+1) SIDs
    case contextDescriptor(StreamID, SubstreamID, leaf: Bool) // CMD_CFGI_CD
    case contextDescriptorAll(StreamID)                // CMD_CFGI_CD_ALL
    case nhAll(VMID)                                   // CMD_TLBI_NH_ALL
    case nhASID(VMID, ASID)                            // CMD_TLBI_NH_ASID (not global entries)
    case nhVA(VMID, ASID, address: UInt64, leaf: Bool, range: TLBIRange?)   // CMD_TLBI_NH_VA
    case nhVAA(VMID, address: UInt64, leaf: Bool, range: TLBIRange?)        // CMD_TLBI_NH_VAA
    case el2All                                        // CMD_TLBI_EL2_ALL
    case s12VMAll(VMID)                                // CMD_TLBI_S12_VMALL
    case s2IPA(VMID, ipa: UInt64, leaf: Bool, range: TLBIRange?)            // CMD_TLBI_S2_IPA
    case nsnhAll                                       // CMD_TLBI_NSNH_ALL
}

/// Range TLBI fields (IDR3.RIL): (num+1) × 2^scale pages of `granule`; ttl = level hint (0 unknown).
public struct TLBIRange: Hashable, Sendable {
    public var num: Int
    public var scale: Int
    public var granule: Granule
    public var ttl: Int

    public init(num: Int, scale: Int, granule: Granule, ttl: Int) {
        self.num = num
        self.scale = scale
        self.granule = granule
        self.ttl = ttl
    }

    /// The number of bytes the range covers, (NUM+1) × 2^SCALE × granule (§4.4.1 "Range-based
    /// invalidation"), saturating at 2^64 so a hostile command cannot overflow. NUM is 5 bits and
    /// SCALE 5 bits in the command; larger values here are clamped to those widths.
    public var byteLength: UInt64 {
        let pages = UInt64(min(max(num, 0), 31) + 1)
        let shift = min(max(scale, 0), 31) + granule.shift
        guard shift < 64 else { return .max }
        let (product, overflow) = pages.multipliedReportingOverflow(by: 1 &<< UInt64(shift))
        return overflow ? .max : product
    }
}
