import Bus

/// Why a translation stopped early (internal; becomes a `TranslationOutcome`).
enum TranslationStop: Error {
    case fault(SMMUFault)
    case abortWithoutEvent
}

/// The incoming transaction as the fault builders need it, plus the fault behaviour of the
/// configuration found so far (§5.5: CD.R/CD.A for stage 1, STE.S2R for stage 2).
struct TransactionContext {
    var streamID: StreamID
    var substreamID: SubstreamID?
    var address: UInt64
    var isWrite: Bool
    var instruction: Bool
    var privileged: Bool
    var stage1Record = true
    var stage1Abort = true
    var stage2Record = true
    /// Which stages translated the address (for the journal's response entry).
    var stage1Applied = false
    var stage2Applied = false
    /// `translateOnTLBHit` already looked this transaction up in the TLB with the tag the full
    /// path computes and found nothing; nothing changed since, so the lookup is not repeated.
    var tlbMissKnown = false
}

/// Key of the CD part of the configuration cache: StreamID and CD index (the SubstreamID, or 0
/// for non-substream traffic using CD 0), packed as `streamID << 32 | index`.
struct ContextCacheKey: Hashable {
    var streamID: UInt32
    var index: UInt32

    var packed: UInt64 { UInt64(streamID) &<< 32 | UInt64(index) }
}

/// The SMMUv3 translation engine: stream table and CD lookup, VMSAv8-64 walks at stage 1,
/// stage 2 and nested, the TLB and the configuration cache (SMMUv3 §3.3, §5; Arm ARM D8).
///
/// Caches, and what invalidates them:
/// - Configuration cache: decoded, valid STEs keyed by StreamID and decoded, valid CDs keyed by
///   (StreamID, CD index). Only CMD_CFGI_* remove them (§5.2.1: any STE change must be followed
///   by CFGI_STE; until then the SMMU may keep using the old one, and this model always does).
///   Invalid or ILLEGAL structures and failed fetches are not cached (QEMU decodes before
///   caching; a failed fetch "does not cause an STE or L1STD to be cached", §5.2.1).
/// - TLB: leaf translations only, tagged per `TLBEntryKind`. No walk caches, so read counts
///   are exact (see `SMMUCounters`). Nested walks neither consult nor fill stage-2-only
///   entries, so S2_IPA alone never affects combined entries and a nested miss always costs
///   the full (S1 levels + 1) × S2 levels + S1 levels reads.
///
/// Modelling choices (documented here once): NS-EL1 and, with IDR0.HYP, the non-E2H EL2
/// StreamWorld; both stage-1 VA ranges (TTB0/TTB1 selected by VA[55]) with TBI0/TBI1 (top byte
/// ignored for range checks, TLB tags and output); no stalls (with CD.S/STE.S2S=1 on a
/// stall-capable SMMU the fault is recorded and the transaction terminated); no ATS, Secure or
/// Realm state; little-endian VMSAv8-64 tables only (IDR0.TTF=AArch64, TTENDIAN=LE).
public final class SMMUTranslator {
    public let configuration: SMMUConfiguration
    /// The bus the SMMU reads tables through. Not owned: the bus owns the SMMU (as an MMIO
    /// device), so a strong reference back would keep every machine alive forever. Whoever
    /// builds the SMMU keeps the bus (a `Machine` does).
    public unowned(safe) let bus: SystemBus
    /// Where the stream table is; the device (`SMMUv3`) updates it on STRTAB_BASE/STRTAB_BASE_CFG writes.
    public var streamTable: StreamTableConfiguration = .reset
    /// The same bus, for the walks' descriptor reads and write-backs. `unowned(unsafe)` (no
    /// reference counting per read) is safe because it is used only by the walk and lookup
    /// methods, which are internal and reached only from `translate(_:)`, and that method
    /// holds a strong reference to the bus (loaded through the checked `bus`, so a freed bus
    /// still traps there) for as long as it runs.
    unowned(unsafe) let tableBus: SystemBus
    /// `tableBus` as an unmanaged reference, so a descriptor read borrows it without the
    /// retain/release a method call on an `unowned(unsafe)` reference costs (one pair per read
    /// before). Same validity rule as `tableBus`.
    let tableBusReference: Unmanaged<SystemBus>
    /// CR2.RECINVSID: record C_BAD_STREAMID events.
    public var recordInvalidStreamIDs: Bool = false
    /// When set, every fetch and descriptor read is reported.
    public var trace: TraceLog? {
        get { hot.pointee.trace }
        set { hot.pointee.trace = newValue; hot.pointee.updateObserved() }
    }
    /// The journal of the message being followed: configuration lookups, descriptor reads, TLB
    /// lookups (the response itself is appended by `SMMUv3.handle`).
    public var journal: Journal? {
        get { hot.pointee.journal }
        set { hot.pointee.journal = newValue; hot.pointee.updateObserved() }
    }
    public var counters: SMMUCounters {
        get { hot.pointee.counters }
        set { hot.pointee.counters = newValue }
        _modify { yield &hot.pointee.counters }
    }
    public let tlb: TranslationLookasideBuffer

    /// What every translation reads or bumps: counters, trace, journal. Kept in a block this
    /// object allocates in `init` and frees in `deinit`, reached through a `let` pointer, so
    /// the per-read counter increments and trace/journal checks make no dynamic exclusivity
    /// check (as `var` stored properties of a class they made one per access, a fifth to a
    /// third of a translation). Safe: the block is private to this object, which is used from
    /// one thread at a time, and no accessor yields it across a call that could re-enter.
    struct HotState {
        var counters = SMMUCounters()
        var trace: TraceLog?
        var journal: Journal?
        /// A trace or a journal is attached: every step must be reported, so `translate` takes
        /// the full path (see `translateOnTLBHit`).
        var observed = false

        mutating func updateObserved() { observed = trace != nil || journal != nil }
    }
    let hot: UnsafeMutablePointer<HotState>

    /// Decoded STEs by StreamID.
    let streamCache = ConfigurationTable<StreamState>()
    /// Decoded CDs by `ContextCacheKey.packed`.
    let contextCache = ConfigurationTable<Stage1Configuration>()
    /// What a TLB hit needs per (StreamID, SubstreamID), derived from the two caches above.
    let hitRoutes = HitRouteTable()

    public init(configuration: SMMUConfiguration, bus: SystemBus, tlbCapacity: Int = 256) {
        self.configuration = configuration
        self.bus = bus
        self.tableBus = bus
        self.tableBusReference = Unmanaged.passUnretained(bus)
        self.tlb = TranslationLookasideBuffer(capacity: tlbCapacity)
        hot = .allocate(capacity: 1)
        hot.initialize(to: HotState())
    }

    deinit {
        hot.deinitialize(count: 1)
        hot.deallocate()
    }

    /// Number of STEs and CDs in the configuration cache.
    public var cachedStreamCount: Int { streamCache.count }
    public var cachedContextDescriptorCount: Int { contextCache.count }

    /// Translates one incoming transaction with SMMUEN=1 (B handles SMMUEN=0/GBPA itself).
    public func translate(_ transaction: DeviceTransaction) -> TranslationOutcome {
        var tlbMissKnown = false
        if let hit = translateOnTLBHit(transaction, missed: &tlbMissKnown) { return .translated(hit) }
        // Holds the bus for the whole translation: `tableBus` is valid while this lives.
        let owner = bus
        defer { withExtendedLifetime(owner) {} }
        var context = TransactionContext(
            streamID: transaction.streamID, substreamID: transaction.substreamID,
            address: transaction.address.rawValue, isWrite: transaction.isWrite,
            instruction: transaction.instruction && !transaction.isWrite, privileged: transaction.privileged)
        context.tlbMissKnown = tlbMissKnown
        do {
            let result = try translate(&context)
            journal?.append(.smmuTranslated(input: context.address, intermediate: result.intermediate?.rawValue,
                                            output: result.output.rawValue,
                                            stage1: context.stage1Applied, stage2: context.stage2Applied))
            return .translated(result)
        } catch {
            switch error {
            case .fault(let fault):
                counters.faults &+= 1
                if let trace { trace.append(.smmu, "fault", address: fault.inputAddress, "\(fault)") }
                journal?.append(.smmuFault(fault.journalFault))
                return .fault(fault)
            case .abortWithoutEvent:
                if let trace { trace.append(.smmu, "STE.Config=abort", address: context.address, "transaction aborted, no event (§5.2 Config)") }
                journal?.append(.smmuAborted(input: context.address))
                return .abortedWithoutEvent
            }
        }
    }

    /// The answer of a transaction that hits the TLB on a stream whose CD is cached, with
    /// nothing observing (no trace, no journal), or nil when any of that is not so — then the
    /// full path runs, and it alone builds faults. Does exactly what the full path does for
    /// such a hit and nothing else: one configuration-cache hit and one TLB hit counted, the
    /// same TLB lookup (tag from the STE's StreamWorld and VMID and the CD's ASID, the address
    /// after TBI), the same permission test (S1 and S2 bits of the entry for the access
    /// kind); a permission failure returns nil so the full path builds the fault. It reads no
    /// memory, allocates nothing and does not touch the bus. `missed` is set when the route was
    /// found and the TLB lookup found nothing, so the full path need not look again.
    @inline(__always)
    private func translateOnTLBHit(_ transaction: DeviceTransaction, missed: inout Bool) -> TranslationResult? {
        let state = hot
        if state.pointee.observed { return nil }
        guard let key = HitRouteTable.key(streamID: transaction.streamID.rawValue, substreamID: transaction.substreamID?.rawValue),
              let route = hitRoutes.route(for: key) else { return nil }
        let address = transaction.address.rawValue
        let upper = address.bit(55)
        let effective = (upper ? route.topByteIgnore1 : route.topByteIgnore0)
            ? (upper ? address | 0xFF00_0000_0000_0000 : address & 0x00FF_FFFF_FFFF_FFFF) : address
        guard let (tag, entry) = tlb.lookup(address: effective, kind: route.kind, vmid: route.vmid,
                                            asid: route.hasASID ? route.asid : nil) else {
            missed = true
            return nil
        }
        let isWrite = transaction.isWrite
        let required = StagePermissions.required(write: isWrite, instruction: transaction.instruction && !isWrite,
                                                 privileged: transaction.privileged)
        // `required` is one bit: both stages must grant it.
        guard entry.stage1Permissions & entry.stage2Permissions & required != 0 else { return nil }
        state.pointee.counters.configCacheHits &+= 1
        state.pointee.counters.tlbHits &+= 1
        return result(entry: entry, key: tag, address: effective, privileged: transaction.privileged, fromTLB: true)
    }

    private func translate(_ context: inout TransactionContext) throws(TranslationStop) -> TranslationResult {
        var configHit = true
        let stream = try streamState(for: context, hit: &configHit)
        journal?.append(.steFetch(streamID: context.streamID, cached: configHit,
                                  stage1: stream.config.stage1Enabled, stage2: stream.config.stage2Enabled))
        // STE.S2R governs every stage-2 fault of this stream, including those found on a TLB
        // or configuration-cache hit.
        if let s2 = stream.stage2 { context.stage2Record = s2.record }
        switch stream.config {
        case .abort:
            countConfig(hit: configHit)
            throw .abortWithoutEvent
        case .bypass:
            countConfig(hit: configHit)
            return try bypass(&context, checkBits: configuration.oasBits)
        case .stage2:
            countConfig(hit: configHit)
            if context.substreamID != nil {
                throw fault(.cBadSubstreamID, context, reason: "SubstreamID supplied but stage 1 is disabled (STE.Config=0b110) (§5.2 S1Fmt)")
            }
            return try stage2Only(&context, stream: stream)
        case .stage1, .nested:
            // Substream selection (§5.2 S1CDMax, S1DSS).
            let ssidBits = configuration.effectiveSubstreamIDBits
            let cdMax = ssidBits == 0 ? 0 : stream.ste.s1CDMax
            var index: UInt32 = 0
            if cdMax == 0 {
                if context.substreamID != nil {
                    countConfig(hit: configHit)
                    throw fault(.cBadSubstreamID, context, reason: "SubstreamID supplied but STE.S1CDMax=0 (§5.2 S1CDMax)")
                }
            } else if let ssid = context.substreamID {
                if UInt64(ssid.rawValue) >> UInt64(cdMax) != 0 {
                    countConfig(hit: configHit)
                    throw fault(.cBadSubstreamID, context, reason: "SubstreamID \(ssid) ≥ 2^S1CDMax (\(cdMax)) (§5.2 S1CDMax)")
                }
                if stream.ste.s1DSS == 2 && ssid.rawValue == 0 {
                    countConfig(hit: configHit)
                    throw fault(.fStreamDisabled, context, reason: "SubstreamID 0 is reserved for non-substream traffic by STE.S1DSS=0b10 (§5.2 S1DSS)")
                }
                index = ssid.rawValue
            } else {
                switch stream.ste.s1DSS {
                case 1:
                    countConfig(hit: configHit)
                    if stream.config == .nested { return try stage2Only(&context, stream: stream) }
                    return try bypass(&context, checkBits: configuration.iasBits)
                case 2:
                    index = 0
                default:
                    countConfig(hit: configHit)
                    throw fault(.fStreamDisabled, context, reason: "no SubstreamID and STE.S1DSS=terminate (§5.2 S1DSS)")
                }
            }
            let stage1: Stage1Configuration
            var cdHit = true
            do {
                stage1 = try contextDescriptor(index: index, stream: stream, context: &context, hit: &cdHit)
                configHit = configHit && cdHit
            } catch {
                configHit = configHit && cdHit
                countConfig(hit: configHit)
                throw error
            }
            journal?.append(.cdFetch(streamID: context.streamID, index: index, cached: cdHit))
            countConfig(hit: configHit)
            storeHitRoute(context, stream: stream, stage1: stage1)
            context.stage1Record = stage1.record
            context.stage1Abort = stage1.abortOnFault
            return try stage1Translate(&context, stream: stream, stage1: stage1)
        }
    }

    /// Records what `translateOnTLBHit` needs for this (StreamID, SubstreamID): reached only
    /// once the substream selection passed every check and the CD is cached.
    private func storeHitRoute(_ context: TransactionContext, stream: StreamState, stage1: Stage1Configuration) {
        guard let key = HitRouteTable.key(streamID: context.streamID.rawValue, substreamID: context.substreamID?.rawValue) else { return }
        let el2 = stream.world == .el2
        hitRoutes.store(HitRoute(
            key: key, kind: Self.tlbKind(stream), vmid: el2 ? 0 : stream.vmidTag.rawValue,
            asid: UInt32(stage1.asid.rawValue), hasASID: !el2,
            topByteIgnore0: stage1.range0.topByteIgnore, topByteIgnore1: stage1.range1.topByteIgnore))
    }

    /// The TLB entry kind of a stage-1 or nested stream's translations.
    @inline(__always)
    static func tlbKind(_ stream: StreamState) -> TLBEntryKind {
        stream.world == .el2 ? .el2 : (stream.config == .nested ? .nested : .stage1)
    }

    /// One 64-bit table or structure read through `tableBusReference` (only while `translate`
    /// holds the bus, as every caller is reached from it).
    @inline(__always)
    func readTable(_ address: UInt64) throws(BusError) -> UInt64 {
        let outcome: Result<UInt64, BusError> = tableBusReference._withUnsafeGuaranteedRef { bus in
            do throws(BusError) { return .success(try bus.read64(PhysicalAddress(address))) } catch { return .failure(error) }
        }
        return try outcome.get()
    }

    @inline(__always)
    private func countConfig(hit: Bool) {
        if hit { counters.configCacheHits &+= 1 } else { counters.configCacheMisses &+= 1 }
    }

    // MARK: Bypass and stage-2-only

    /// Both stages bypassed (Config=0b100, or S1DSS=bypass with stage 2 off). §3.4: an input
    /// address beyond the OAS (full bypass) or IAS (stage-1 bypass) is a stage-1 F_ADDR_SIZE.
    private func bypass(_ context: inout TransactionContext, checkBits: Int) throws(TranslationStop) -> TranslationResult {
        if checkBits < 64 && context.address >> UInt64(checkBits) != 0 {
            throw fault(.fAddrSize, context, stage2: false, faultClass: .input,
                        reason: "bypassed input address beyond the \(checkBits)-bit address size (§3.4)")
        }
        if let trace { trace.append(.smmu, "bypass", address: context.address, "output = input") }
        return TranslationResult(output: PhysicalAddress(context.address), pageSize: Granule.size4K.size,
                                 readable: true, writable: true, fromTLB: false)
    }

    private func stage2Only(_ context: inout TransactionContext, stream: StreamState) throws(TranslationStop) -> TranslationResult {
        guard let s2 = stream.stage2 else {
            throw fault(.cBadSTE, context, reason: "stage 2 configuration missing")
        }
        context.stage2Record = s2.record
        // Stage 1 bypassed: the input must fit the IAS (§3.4), else a stage-1 F_ADDR_SIZE.
        let ias = configuration.iasBits
        if context.address >> UInt64(ias) != 0 {
            throw fault(.fAddrSize, context, stage2: false, faultClass: .input,
                        reason: "stage-1-bypassed input address beyond the \(ias)-bit IAS (§3.4)")
        }
        let required = StagePermissions.required(write: context.isWrite, instruction: context.instruction, privileged: context.privileged)
        if let (key, entry) = tlb.lookup(address: context.address, kind: .stage2, vmid: s2.vmid.rawValue, asid: nil) {
            counters.tlbHits &+= 1
            journal?.append(.tlb(hit: true, address: context.address, stage1: false, stage2: true))
            if entry.stage2Permissions & required == 0 {
                throw permissionFault(stage2: true, context, ipa: context.address, reason: "S2AP/XN forbid the access (TLB entry)")
            }
            if let trace { trace.append(.smmu, "TLB hit (S2)", address: context.address, value: entry.outputBase, "VMID \(s2.vmid), \(1 << Int(key.pageShift)) bytes") }
            context.stage2Applied = true
            return result(entry: entry, key: key, address: context.address, privileged: context.privileged, fromTLB: true)
        }
        counters.tlbMisses &+= 1
        journal?.append(.tlb(hit: false, address: context.address, stage1: false, stage2: true))
        if let trace { trace.append(.smmu, "TLB miss (S2)", address: context.address, "VMID \(s2.vmid)") }
        let walk = try stage2Walk(context.address, s2, purpose: .input, write: context.isWrite, instruction: context.instruction, context)
        context.stage2Applied = true
        let shift = UInt64(walk.pageShift)
        let key = TLBKey(pageNumber: context.address >> shift, pageShift: UInt8(walk.pageShift), kind: .stage2, vmid: s2.vmid.rawValue, asid: TLBKey.global)
        let entry = TLBEntry(outputBase: walk.output & ~UInt64.lowMask(walk.pageShift), intermediateBase: 0, hasIntermediate: false,
                             stage1Permissions: StagePermissions.all, stage2Permissions: walk.permissions)
        tlb.insert(entry, for: key)
        return result(entry: entry, key: key, address: context.address, privileged: context.privileged, fromTLB: false)
    }

    // MARK: Stage 1 and nested

    private func stage1Translate(_ context: inout TransactionContext, stream: StreamState, stage1: Stage1Configuration) throws(TranslationStop) -> TranslationResult {
        let address = context.address
        let upper = address.bit(55)
        let range = upper ? stage1.range1 : stage1.range0
        // TBI: VA[63:56] are ignored and taken as a sign extension of VA[55] (§3.4.1).
        let effective = range.topByteIgnore ? (upper ? address | 0xFF00_0000_0000_0000 : address & 0x00FF_FFFF_FFFF_FFFF) : address
        let kind = Self.tlbKind(stream)
        let vmid = kind == .el2 ? 0 : stream.vmidTag.rawValue
        let asid: UInt32? = kind == .el2 ? nil : UInt32(stage1.asid.rawValue)
        let required = StagePermissions.required(write: context.isWrite, instruction: context.instruction, privileged: context.privileged)
        if !context.tlbMissKnown, let (key, entry) = tlb.lookup(address: effective, kind: kind, vmid: vmid, asid: asid) {
            counters.tlbHits &+= 1
            journal?.append(.tlb(hit: true, address: address, stage1: true, stage2: kind == .nested))
            if entry.stage1Permissions & required == 0 {
                throw permissionFault(stage2: false, context, ipa: nil, reason: "stage-1 AP/XN forbid the access (TLB entry)")
            }
            if entry.stage2Permissions & required == 0 {
                let ipa = entry.intermediateBase | (effective & UInt64.lowMask(Int(key.pageShift)))
                throw permissionFault(stage2: true, context, ipa: ipa, reason: "S2AP/XN forbid the access (TLB entry)")
            }
            if let trace { trace.append(.smmu, "TLB hit", address: address, value: entry.outputBase, "\(kind) VMID \(vmid) ASID \(stage1.asid), \(1 << Int(key.pageShift)) bytes") }
            context.stage1Applied = true
            context.stage2Applied = entry.hasIntermediate
            return result(entry: entry, key: key, address: effective, privileged: context.privileged, fromTLB: true)
        }
        counters.tlbMisses &+= 1
        journal?.append(.tlb(hit: false, address: address, stage1: true, stage2: kind == .nested))
        if let trace { trace.append(.smmu, "TLB miss", address: address, "\(kind) VMID \(vmid) ASID \(stage1.asid)") }

        let s1 = try stage1Walk(effective, range: range, upper: upper, stage1: stage1, stream: stream, context)
        if s1.permissions & required == 0 {
            throw permissionFault(stage2: false, context, ipa: nil, level: s1.level, reason: "stage-1 \(s1.permissionText) forbids the access (S1 L\(s1.level) descriptor at \(Hex.format(s1.descriptorAddress)))")
        }
        var pageShift = s1.pageShift
        var output = s1.output
        var s2Permissions = StagePermissions.all
        var intermediate: UInt64 = 0
        context.stage1Applied = true
        if stream.config == .nested, let s2 = stream.stage2 {
            context.stage2Applied = true
            intermediate = s1.output
            let s2walk = try stage2Walk(s1.output, s2, purpose: .input, write: context.isWrite, instruction: context.instruction, context)
            pageShift = min(pageShift, s2walk.pageShift)
            output = s2walk.output
            s2Permissions = s2walk.permissions
        }
        let mask = UInt64.lowMask(pageShift)
        let key = TLBKey(pageNumber: effective >> UInt64(pageShift), pageShift: UInt8(pageShift), kind: kind, vmid: vmid,
                         asid: (s1.global || asid == nil) ? TLBKey.global : UInt32(stage1.asid.rawValue))
        let entry = TLBEntry(outputBase: output & ~mask, intermediateBase: intermediate & ~mask, hasIntermediate: stream.config == .nested,
                             stage1Permissions: s1.permissions, stage2Permissions: s2Permissions)
        tlb.insert(entry, for: key)
        return result(entry: entry, key: key, address: effective, privileged: context.privileged, fromTLB: false)
    }

    @inline(__always)
    private func result(entry: TLBEntry, key: TLBKey, address: UInt64, privileged: Bool, fromTLB: Bool) -> TranslationResult {
        let offset = address & UInt64.lowMask(Int(key.pageShift))
        let permissions = entry.stage1Permissions & entry.stage2Permissions
        let read = privileged ? StagePermissions.privilegedRead : StagePermissions.unprivilegedRead
        let write = privileged ? StagePermissions.privilegedWrite : StagePermissions.unprivilegedWrite
        return TranslationResult(
            output: PhysicalAddress(entry.outputBase | offset),
            intermediate: entry.hasIntermediate ? IPA(entry.intermediateBase | offset) : nil,
            pageSize: 1 &<< UInt64(key.pageShift),
            readable: permissions & read != 0, writable: permissions & write != 0, fromTLB: fromTLB)
    }

    // MARK: Faults

    /// Builds a fault. Translation-related faults (§5.5) are recorded per CD.R (stage 1) or
    /// STE.S2R (stage 2) and terminate per CD.A (stage 1; stage 2 always aborts); every other
    /// event is recorded and aborts.
    func fault(_ type: SMMUEventType, _ context: TransactionContext, stage2: Bool = false, faultClass: FaultClass = .input,
               ipa: UInt64? = nil, fetchAddress: UInt64? = nil, tableWalkWrite: Bool = false,
               record: Bool? = nil, level: Int? = nil, invalid: Bool = false, reason: String) -> TranslationStop {
        let translationFault = type.isTranslationFault
        let recorded = record ?? (translationFault ? (stage2 ? context.stage2Record : context.stage1Record) : true)
        let abort = translationFault && !stage2 ? context.stage1Abort : true
        return .fault(SMMUFault(
            type: type, streamID: context.streamID, substreamID: context.substreamID, inputAddress: context.address,
            isWrite: context.isWrite, instruction: context.instruction, privileged: context.privileged,
            stage2: stage2, faultClass: faultClass, ipa: ipa.map { IPA($0) }, fetchAddress: fetchAddress.map { PhysicalAddress($0) },
            tableWalkWrite: tableWalkWrite, record: recorded, abort: abort, level: level, invalidDescriptor: invalid,
            reason: reason))
    }

    private func permissionFault(stage2: Bool, _ context: TransactionContext, ipa: UInt64?, level: Int? = nil, reason: String) -> TranslationStop {
        fault(.fPermission, context, stage2: stage2, faultClass: .input, ipa: ipa, level: level, reason: reason)
    }
}
