/// Why the ITS dropped a write to GITS_TRANSLATER (GICv3 §5.2 translation steps, docs/hardware.md §ITS translation).
public enum ITSDropReason: Int, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// GITS_CTLR.Enabled = 0.
    case itsDisabled
    /// The write carried no DeviceID sideband (a PE store or a hardware unit's own access).
    case noDeviceID
    /// DeviceID ≥ 2^(Devbits+1) or beyond the device table.
    case deviceIDOutOfRange
    /// The DTE is invalid (or its level-2 page is not allocated).
    case unmappedDevice
    /// EventID ≥ 2^(DTE.Size+1).
    case eventIDOutOfRange
    /// The ITE is invalid.
    case unmappedEvent
    /// The ITE's collection has no valid CTE (or names a redistributor that does not exist).
    case unmappedCollection
    /// The ITE is a GICv4 virtual entry and the ITS has no GICv4.1 support modelled
    /// (`GICConfiguration.virtualLPIs` false, or an emulated ITS such as KVM's).
    case virtualNotModelled
    /// Reading a table failed on the bus.
    case tableReadFault
    /// A 1- or 8-byte write (GITS_TRANSLATER takes 16- and 32-bit writes, as in QEMU).
    case badAccessSize
    /// GICv4.1: the ITE is a vLPI whose vPE has no valid vPE table entry (no VMAPP, or VMAPP
    /// V=0), or whose vPEID is beyond the vPE table.
    case unmappedVPE
    /// GICv4.1: the vINTID is beyond the vPE's virtual pending table (VMAPP VPT_size).
    case vINTIDOutOfRange

    public var description: String {
        switch self {
        case .itsDisabled: "ITS disabled"
        case .noDeviceID: "no DeviceID"
        case .deviceIDOutOfRange: "DeviceID out of range"
        case .unmappedDevice: "unmapped device"
        case .eventIDOutOfRange: "EventID out of range"
        case .unmappedEvent: "unmapped event"
        case .unmappedCollection: "unmapped collection"
        case .virtualNotModelled: "virtual ITE (not modelled)"
        case .tableReadFault: "table read fault"
        case .badAccessSize: "bad access size"
        case .unmappedVPE: "unmapped vPE"
        case .vINTIDOutOfRange: "vINTID beyond the virtual pending table"
        }
    }
}

/// ITS event counters (docs/hardware.md §ITS caches: count ITS cache hits and misses per
/// cache, commands, and drops).
public struct ITSCounters: Hashable, Sendable {
    /// Writes to GITS_TRANSLATER that reached the ITS.
    public var translaterWrites = 0
    /// Translations that produced an LPI and handed it to a redistributor.
    public var translations = 0
    /// Of those, LPIs the redistributor refused (EnableLPIs=0 or INTID beyond its tables).
    public var lpisRefusedByRedistributor = 0
    /// Drops per `ITSDropReason.rawValue`.
    public var drops: [Int] = Array(repeating: 0, count: ITSDropReason.allCases.count)
    public var commandsProcessed = 0
    public var commandErrors = 0
    public var unsupportedCommands = 0
    public var commandMemoryFaults = 0
    /// Queue runs refused because CWRITER or CREADR pointed beyond the queue.
    public var invalidQueueOffsets = 0
    public var syncs = 0
    /// DTE/ITE/CTE reads from memory (cache misses that went to RAM).
    public var tableReads = 0
    public var tableWrites = 0

    public init() {}

    public func drops(_ reason: ITSDropReason) -> Int { drops[reason.rawValue] }
    public var totalDrops: Int { drops.reduce(0, +) }

    @inlinable mutating func countDrop(_ reason: ITSDropReason) {
        drops[reason.rawValue] &+= 1
    }
}
