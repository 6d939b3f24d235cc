import Bus

/// The SMMUv3 translation engine (skeleton; filled in by the translation core).
public final class SMMUTranslator {
    public let configuration: SMMUConfiguration
    public let bus: SystemBus
    /// Where the stream table is; helper B updates it on STRTAB_BASE/STRTAB_BASE_CFG writes.
    public var streamTable: StreamTableConfiguration = .reset
    /// CR2.RECINVSID: record C_BAD_STREAMID events.
    public var recordInvalidStreamIDs: Bool = false
    /// When set, every fetch and descriptor read is reported.
    public var trace: TraceLog?
    public var counters = SMMUCounters()

    public init(configuration: SMMUConfiguration, bus: SystemBus) {
        self.configuration = configuration
        self.bus = bus
    }

    /// Translates one incoming transaction with SMMUEN=1 (B handles SMMUEN=0/GBPA itself).
    public func translate(_ transaction: DeviceTransaction) -> TranslationOutcome {
        .abortedWithoutEvent
    }

    /// Applies one invalidation (B calls this when it executes a CFGI_* / TLBI_* command).
    public func invalidate(_ scope: Invalidation) {}
}
