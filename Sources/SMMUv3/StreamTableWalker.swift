import Bus

/// Why a StreamID has no STE: the configuration errors and fetch faults of the stream table
/// walk (§3.3.2, §5.1.1, §3.4.3, §7.3). `eventType` is the event the SMMU records for it.
public enum StreamTableWalkError: Error, Hashable, Sendable, CustomStringConvertible {
    /// StreamID ≥ 2^(effective STRTAB_BASE_CFG.LOG2SIZE) (§6.3.24): C_BAD_STREAMID.
    case streamIDOutOfRange(StreamID, log2Size: Int)
    /// The L1STD's Span is 0 (invalid), 12–31 (Reserved, as 0) or above SPLIT + 1 (§5.1.1):
    /// C_BAD_STREAMID.
    case invalidSpan(StreamID, l1Index: UInt64, l1Address: UInt64, span: Int, split: Int)
    /// The StreamID's L2 index is beyond the 2^(Span−1) STEs of its L2 array (§5.1.1):
    /// C_BAD_STREAMID.
    case beyondSpan(StreamID, l1Index: UInt64, span: Int)
    /// An L1STD or STE address beyond IDR5.OAS, or one that overflows 64 bits: F_STE_FETCH
    /// (§3.4.3 note 5: reported, not truncated).
    case addressBeyondOAS(StreamID, address: UInt64, level: Level)
    case addressOverflow(StreamID, base: UInt64)
    /// The L1STD or STE read returned an abort: F_STE_FETCH.
    case fetchAbort(StreamID, address: UInt64, level: Level, reason: String)

    /// Which structure the walk was fetching.
    public enum Level: Hashable, Sendable {
        case levelOneDescriptor, entry
        var name: String { self == .levelOneDescriptor ? "L1STD" : "STE" }
    }

    /// The event the SMMU records (§7.3).
    public var eventType: SMMUEventType {
        switch self {
        case .streamIDOutOfRange, .invalidSpan, .beyondSpan: .cBadStreamID
        case .addressBeyondOAS, .addressOverflow, .fetchAbort: .fSTEFetch
        }
    }

    /// The address an F_STE_FETCH record reports as FetchAddr.
    public var fetchAddress: UInt64? {
        switch self {
        case .streamIDOutOfRange, .invalidSpan, .beyondSpan: nil
        case .addressBeyondOAS(_, let address, _), .fetchAbort(_, let address, _, _): address
        case .addressOverflow(_, let base): base
        }
    }

    public var description: String {
        switch self {
        case .streamIDOutOfRange(let sid, let log2Size):
            "StreamID \(sid) ≥ 2^\(log2Size) (effective STRTAB_BASE_CFG.LOG2SIZE) (§6.3.24)"
        case .invalidSpan(_, let l1Index, let l1Address, let span, let split):
            "L1STD[\(l1Index)] at \(Hex.format(l1Address)) has invalid Span \(span) (SPLIT \(split)) (§5.1)"
        case .beyondSpan(let sid, let l1Index, let span):
            "StreamID \(sid) beyond L1STD[\(l1Index)].Span \(span) (2^\(span - 1) STEs) (§5.1.1)"
        case .addressBeyondOAS(_, _, let level):
            "\(level.name) address beyond the OAS (§3.4.3)"
        case .addressOverflow:
            "STE address overflows"
        case .fetchAbort(_, _, let level, let reason):
            "\(level.name) fetch aborted: \(reason)"
        }
    }
}

/// The stream table walk (§3.3.2, §5.1): from a StreamID to the address and contents of its
/// STE, through a linear table or a 2-level table (L1STD, then the L2 array). Memory is read
/// through a closure, so the same walk serves the physical SMMU (system memory) and a virtual
/// SMMU front end (the guest's memory, through its IPA→host mapping), as QEMU's accelerated
/// vSMMU uses the emulated SMMU's `smmu_find_ste`.
///
/// The walk fetches; it does not judge the STE (`StreamTableEntry.illegalRule` does, C_BAD_STE):
/// QEMU's `smmuv3_accel_install_ste` also installs what `smmu_find_ste` returns without
/// `decode_ste`'s checks, leaving them to the host kernel and SMMU.
///
/// Choices where the spec allows several behaviours (each documented at its check):
/// - LOG2SIZE is capped at IDR1.SIDSIZE; FMT = 2-level only with IDR0.ST_LEVEL = 0b01.
/// - SPLIT values other than 6, 8 and 10 are Reserved and behave as 6 (§6.3.25).
/// - An L1STD or STE address beyond the OAS is F_STE_FETCH, not truncated (§3.4.3 note 5).
/// - An invalid L1STD (Span 0, Reserved 12–31, > SPLIT+1, or the StreamID beyond the span) is
///   C_BAD_STREAMID (§5.1.1).
/// - L2Ptr[5 + (Span−1):0] are treated as zero: the L2 array is aligned to its size (§5.1).
public struct StreamTableWalker: Hashable, Sendable {
    public let table: StreamTableConfiguration
    public let configuration: SMMUConfiguration

    public init(table: StreamTableConfiguration, configuration: SMMUConfiguration) {
        self.table = table
        self.configuration = configuration
    }

    /// The walker over the table STRTAB_BASE / STRTAB_BASE_CFG describe.
    public init(registers: SMMURegisterState, configuration: SMMUConfiguration) {
        self.init(table: StreamTableConfiguration(strtabBase: registers.strtabBase,
                                                  strtabBaseCfg: registers.strtabBaseCfg,
                                                  on: configuration),
                  configuration: configuration)
    }

    /// The effective SPLIT: 6, 8 or 10; other values are Reserved and behave as 6 (§6.3.25).
    public var split: Int { [6, 8, 10].contains(table.split) ? table.split : 6 }

    /// The address of `sid`'s STE. `levelOne` sees each L1STD read (index, address, descriptor)
    /// before it is checked, for traces and fetch counters.
    public func entryAddress(
        _ sid: StreamID, read: (UInt64) throws(BusError) -> UInt64,
        levelOne: (UInt64, UInt64, LevelOneStreamTableDescriptor) -> Void = { _, _, _ in }
    ) throws(StreamTableWalkError) -> UInt64 {
        let id = UInt64(sid.rawValue)
        // STRTAB_BASE_CFG.LOG2SIZE, effective = min(LOG2SIZE, SIDSIZE) (§6.3.24).
        let log2Size = min(max(table.log2Size, 0), configuration.effectiveStreamIDBits)
        if id >> UInt64(log2Size) != 0 {
            throw .streamIDOutOfRange(sid, log2Size: log2Size)
        }
        let base = table.base.rawValue
        let oasBits = UInt64(configuration.oasBits)
        let steAddress: UInt64
        if table.twoLevel && configuration.twoLevelStreamTable {
            let split = self.split
            let l1Index = id >> UInt64(split)
            let (l1Address, overflow) = base.addingReportingOverflow(l1Index &* 8)
            if overflow || l1Address >> oasBits != 0 {
                throw .addressBeyondOAS(sid, address: l1Address, level: .levelOneDescriptor)
            }
            let raw: UInt64
            do { raw = try read(l1Address) } catch {
                throw .fetchAbort(sid, address: l1Address, level: .levelOneDescriptor, reason: "\(error)")
            }
            let l1 = LevelOneStreamTableDescriptor(rawValue: raw)
            levelOne(l1Index, l1Address, l1)
            // Span 0 invalid, 12–31 reserved (as 0), above SPLIT+1 out of bounds (§5.1.1).
            let span = l1.span
            if span == 0 || span > 11 || span > split + 1 {
                throw .invalidSpan(sid, l1Index: l1Index, l1Address: l1Address, span: span, split: split)
            }
            let l2Index = id & UInt64.lowMask(split)
            if l2Index >> UInt64(span - 1) != 0 {
                throw .beyondSpan(sid, l1Index: l1Index, span: span)
            }
            // L2Ptr[5 + (Span−1):0] are treated as zero: the L2 array is aligned to its size (§5.1).
            let l2Base = l1.l2Ptr & ~UInt64.lowMask(6 + span - 1)
            steAddress = l2Base &+ l2Index &* 64
        } else {
            let (address, overflow) = base.addingReportingOverflow(id &* 64)
            if overflow { throw .addressOverflow(sid, base: base) }
            steAddress = address
        }
        if steAddress >> oasBits != 0 {
            throw .addressBeyondOAS(sid, address: steAddress, level: .entry)
        }
        return steAddress
    }

    /// The STE of `sid` and where it was read: `entryAddress`, then the eight words.
    public func fetch(
        _ sid: StreamID, read: (UInt64) throws(BusError) -> UInt64,
        levelOne: (UInt64, UInt64, LevelOneStreamTableDescriptor) -> Void = { _, _, _ in }
    ) throws(StreamTableWalkError) -> (address: UInt64, entry: StreamTableEntry) {
        let address = try entryAddress(sid, read: read, levelOne: levelOne)
        var ste = StreamTableEntry()
        for i in 0..<8 {
            do { ste[word: i] = try read(address &+ UInt64(i * 8)) } catch {
                throw .fetchAbort(sid, address: address, level: .entry, reason: "\(error)")
            }
        }
        return (address, ste)
    }
}
