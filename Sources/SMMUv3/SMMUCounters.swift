/// Event counts for reports and tests (docs/architecture.md, "Traces"). Translation counters are kept by
/// the translator; command and event counters by the device (`SMMUv3`).
///
/// How memory reads are counted (one per 64-bit or structure fetch the SMMU issues):
/// - `steFetches`: one per STE fetch; an L1STD read for a 2-level stream table is also counted
///   here (it is part of fetching the STE), so a 2-level lookup adds 2.
/// - `cdFetches`: one per CD fetch; an L1CD read for a 2-level CD table is also counted here.
/// - `stage1DescriptorReads`: one per stage-1 translation-table descriptor read.
/// - `stage2DescriptorReads`: one per stage-2 descriptor read, whatever it was for (the final
///   IPA, an S1 table address, TTB0, or a CD/L1CD address in nested mode).
public struct SMMUCounters: Hashable, Sendable {
    public var steFetches = 0, cdFetches = 0, stage1DescriptorReads = 0, stage2DescriptorReads = 0
    public var tlbHits = 0, tlbMisses = 0, configCacheHits = 0, configCacheMisses = 0
    public var commandsConsumed = 0, eventsRecorded = 0, eventsDropped = 0   // the device (`SMMUv3`) increments these
    /// Faults the translator returned (recorded or not).
    public var faults = 0
    /// TLB entries dropped by invalidation commands.
    public var tlbInvalidatedEntries = 0

    public init() {}

    /// Every descriptor and structure read the translator issued.
    public var totalReads: Int { steFetches + cdFetches + stage1DescriptorReads + stage2DescriptorReads }
}
