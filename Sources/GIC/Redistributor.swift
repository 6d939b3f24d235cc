import Bus

/// One GICv3 redistributor (GICR): the RD_base and SGI_base 64 KiB frames of one PE, plus, for
/// GICv4, the VLPI_base and reserved frames (plain register storage here), and the physical LPI
/// state of that PE.
///
/// LPI state follows the architecture's split between memory and the redistributor:
/// - Pending bits live in the pending table in RAM at GICR_PENDBASER. Every set/clear is written
///   there; the redistributor also keeps a shadow bitmap, loaded from the table when EnableLPIs
///   goes 0→1 (unless PTZ=1), because software may not touch the table while EnableLPIs=1.
/// - Configuration bytes live in the table at GICR_PROPBASER and are read through the GIC-wide
///   `LPIConfigurationCache` (loaded on EnableLPIs 0→1, INV and INVALL only; see there).
public final class Redistributor: MMIODevice {
    public var mmioName: String { "gicr\(processorNumber)" }

    /// GICR_TYPER.Processor_Number: the index the ITS targets when GITS_TYPER.PTA=0.
    public let processorNumber: Int
    /// GICR_TYPER.Affinity (Aff3.Aff2.Aff1.Aff0), matched by Linux against MPIDR_EL1.
    public let affinity: UInt32
    /// GICR_TYPER.Last: the last redistributor of the contiguous region.
    /// GICR_TYPER.Last: the last redistributor frame of its contiguous region (GICv3 §12.11.35);
    /// set by `GICv3.attach` from the region layout.
    public internal(set) var isLast: Bool
    public let configuration: GICConfiguration
    /// The RD_base frame address once attached (the PTA=1 target).
    public internal(set) var rdBase: PhysicalAddress?
    unowned(safe) var bus: SystemBus?
    /// The GIC this redistributor belongs to (set by `GICv3.init`), so a forked world copies it
    /// with its GIC.
    unowned(safe) var owner: GICv3?
    public var trace: TraceLog?
    /// The journal of the message being followed: every LPI this redistributor makes pending.
    public var journal: Journal?

    /// GICR_CTLR.EnableLPIs.
    public private(set) var enableLPIs = false
    /// GICR_WAKER: ProcessorSleep[1] and ChildrenAsleep[2], both 1 out of reset.
    public private(set) var waker: UInt32 = 0b110
    public private(set) var propbaser = GICRPropbaser(rawValue: 0)
    public private(set) var pendbaser = GICRPendbaser(rawValue: 0)

    /// Counters for tests and reports.
    public struct Counters: Hashable, Sendable {
        /// LPIs that became pending here.
        public var lpisSetPending = 0
        /// LPIs that were already pending when set again (coalesced, as LPIs are edge-triggered).
        public var lpisAlreadyPending = 0
        /// LPIs dropped because GICR_CTLR.EnableLPIs was 0.
        public var lpisDroppedLPIsDisabled = 0
        /// LPIs dropped because the INTID is beyond GICR_PROPBASER.IDbits.
        public var lpisOutOfRange = 0
        /// Configuration bytes read from memory (EnableLPIs, INV, INVALL).
        public var configurationReads = 0
        /// INV and INVALL operations received.
        public var invalidations = 0
        /// Pending- or configuration-table accesses that failed on the bus.
        public var tableFaults = 0
        /// PROPBASER/PENDBASER writes ignored because EnableLPIs was 1.
        public var ignoredBaseWrites = 0
        public init() {}
    }

    public var counters = Counters()

    /// Number of LPIs (from 8192) the tables cover: min(PROPBASER.IDbits+1, GICD_TYPER.IDbits+1)
    /// bits of INTID; zero when PROPBASER.IDbits+1 < 14 (QEMU `lpi_outofrange`).
    public private(set) var lpiCount = 0
    /// The GIC-wide configuration cache (shared by every redistributor).
    public let configurationCache: LPIConfigurationCache
    @usableFromInline var pendingBits: ContiguousArray<UInt64> = []
    /// Bit w set iff `pendingBits[w]` is non-zero: a summary level so that acknowledging scans
    /// the words that hold pending LPIs instead of the whole table (896 words at 16 ID bits).
    /// Model bookkeeping only; it changes no architected behaviour.
    @usableFromInline var pendingWords: ContiguousArray<UInt64> = []
    /// Pending LPIs by priority, so acknowledge finds the winner in O(log words)
    /// (`PendingLPIIndex`).
    var priorityIndex = PendingLPIIndex()
    public private(set) var pendingCount = 0
    var sgiFrame = ContiguousArray<UInt32>(repeating: 0, count: 0x1_0000 / 4)
    var vlpiFrames: ContiguousArray<UInt32>
    /// GICv4.1 state (`Redistributor+VirtualLPI.swift`); unused unless `configuration.virtualLPIs`.
    public internal(set) var virtualState = VirtualLPIState()

    init(processorNumber: Int, affinity: UInt32, isLast: Bool, configuration: GICConfiguration,
         configurationCache: LPIConfigurationCache) {
        self.configurationCache = configurationCache
        self.processorNumber = processorNumber
        self.affinity = affinity
        self.isLast = isLast
        self.configuration = configuration
        vlpiFrames = ContiguousArray(repeating: 0, count: configuration.version >= 4 ? 0x2_0000 / 4 : 0)
    }

    // MARK: - Register map (RD_base frame; Linux arm-gic-v3.h GICR_*)

    public enum Offset {
        public static let ctlr: UInt64 = 0x0000
        public static let iidr: UInt64 = 0x0004
        public static let typer: UInt64 = 0x0008
        public static let statusr: UInt64 = 0x0010
        public static let waker: UInt64 = 0x0014
        public static let propbaser: UInt64 = 0x0070
        public static let pendbaser: UInt64 = 0x0078
        public static let pidr2: UInt64 = 0xFFE8
        /// Start of the SGI_base frame.
        public static let sgiBase: UInt64 = 0x1_0000
        /// Start of the GICv4 VLPI_base frame.
        public static let vlpiBase: UInt64 = 0x2_0000
    }

    /// GICR_TYPER: PLPIS[0]=1, VLPIS[1] (GICv4), DirectLPI[3]=0 (GICR_SETLPIR etc. not
    /// implemented, as in QEMU) except with GICv4.1 virtual LPIs, where it is 1 for
    /// GICR_INVLPIR/INVALLR/SYNCR only, Last[4], RVPEID[7] (GICv4.1: VPENDBASER holds a vPEID),
    /// Processor_Number[23:8], CommonLPIAff[25:24] (`GICConfiguration.commonLPIAffinity`, 0 by
    /// default: all redistributors share LPI tables), Affinity[63:32].
    public var typer: UInt64 {
        UInt64(1)
            .settingBit(1, to: configuration.version >= 4)
            .settingBit(3, to: configuration.virtualLPIs)
            .settingBit(4, to: isLast)
            .settingBit(7, to: configuration.virtualLPIs)
            .settingBits(23, 8, to: UInt64(processorNumber))
            .settingBits(25, 24, to: UInt64(configuration.commonLPIAffinity))
            .settingBits(63, 32, to: UInt64(affinity))
    }

    /// The affinity bits that GICR_TYPER.CommonLPIAff says are common to every redistributor
    /// sharing this one's tables (Linux `compute_common_aff`: Affinity with the lowest
    /// 32 − 8 × CommonLPIAff bits cleared).
    public var commonAffinityGroup: UInt32 {
        let shift = UInt32(configuration.commonLPIAffinity * 8)
        return affinity & ~(UInt32.max >> shift)
    }

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        guard size == 4 || size == 8, offset & UInt64(size - 1) == 0 else { return 0 }
        if let word = virtualRead(offset: offset) {
            return size == 8 ? word : (word &>> ((offset & 4) &* 8)) & 0xFFFF_FFFF
        }
        if offset >= Offset.sgiBase {
            return readStorage(offset: offset, size: size)
        }
        let word: UInt64
        switch offset & ~7 {
        case 0x0000: word = UInt64(enableLPIs ? 1 : 0) | UInt64(configuration.iidr) << 32
        case Offset.typer: word = typer
        case 0x0010: word = UInt64(waker) << 32
        case Offset.propbaser: word = propbaser.rawValue
        case Offset.pendbaser: word = pendbaser.rawValue
        case 0xFFE8: word = UInt64(GICv3.pidr2(version: configuration.version))
        default: word = 0
        }
        return size == 8 ? word : (word &>> ((offset & 4) &* 8)) & 0xFFFF_FFFF
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        guard size == 4 || size == 8, offset & UInt64(size - 1) == 0 else { return }
        if virtualWrite(offset: offset, size: size, value: value) { return }
        if offset >= Offset.sgiBase {
            writeStorage(offset: offset, size: size, value: value)
            return
        }
        switch offset {
        case Offset.ctlr:
            setEnableLPIs(value.bit(0))
        case Offset.waker:
            // ProcessorSleep is RW; ChildrenAsleep (RO) follows it at once: the model has no
            // power-down latency, so Linux's gic_enable_redist poll sees the handshake complete.
            let sleep = value.bit(1)
            waker = UInt32(0).settingBit(1, to: sleep).settingBit(2, to: sleep)
        case Offset.propbaser, Offset.propbaser + 4:
            guard !enableLPIs else { counters.ignoredBaseWrites += 1; return }
            var raw = GICv3.merge(propbaser.rawValue, at: offset - Offset.propbaser, size: size, value: value)
            // QEMU clamps IDbits to GICD_TYPER.IDbits on write.
            if raw.bits(4, 0) > UInt64(configuration.lpiIDBits - 1) {
                raw = raw.settingBits(4, 0, to: UInt64(configuration.lpiIDBits - 1))
            }
            propbaser = GICRPropbaser(rawValue: raw)
        case Offset.pendbaser, Offset.pendbaser + 4:
            // Writing PROPBASER/PENDBASER while EnableLPIs=1 has no architected effect ("Storing a
            // value with LPIs already enabled is undefined", KVM vgic_mmio_write_propbase/
            // pendbase, which ignores it). The model ignores such writes too and counts them,
            // so a driver that does it reads back the old value.
            guard !enableLPIs else { counters.ignoredBaseWrites += 1; return }
            pendbaser = GICRPendbaser(rawValue: GICv3.merge(pendbaser.rawValue, at: offset - Offset.pendbaser, size: size, value: value))
        default:
            break
        }
    }

    /// SGI_base: GICR_ISENABLER0 (0x100) / GICR_ICENABLER0 (0x180), ISPENDR0/ICPENDR0 (0x200/0x280)
    /// and ISACTIVER0/ICACTIVER0 (0x300/0x380) are set/clear views of one register each; the
    /// rest (IGROUPR0, IPRIORITYR, ICFGR, …) is read/write storage. SGIs and PPIs are not
    /// signalled by this model.
    func readStorage(offset: UInt64, size: Int) -> UInt64 {
        let low = readWord(offset)
        guard size == 8 else { return UInt64(low) }
        return UInt64(low) | UInt64(readWord(offset &+ 4)) << 32
    }

    func writeStorage(offset: UInt64, size: Int, value: UInt64) {
        writeWord(offset, UInt32(truncatingIfNeeded: value))
        if size == 8 { writeWord(offset &+ 4, UInt32(truncatingIfNeeded: value &>> 32)) }
    }

    private func storageIndex(_ offset: UInt64) -> (vlpi: Bool, index: Int)? {
        if offset >= Offset.vlpiBase {
            let i = Int((offset &- Offset.vlpiBase) / 4)
            return i < vlpiFrames.count ? (true, i) : nil
        }
        let o = offset &- Offset.sgiBase
        let folded: UInt64 = switch o {
        case 0x180, 0x280, 0x380: o - 0x80
        default: o
        }
        let i = Int(folded / 4)
        return i < sgiFrame.count ? (false, i) : nil
    }

    private func readWord(_ offset: UInt64) -> UInt32 {
        guard let (vlpi, i) = storageIndex(offset) else { return 0 }
        return vlpi ? vlpiFrames[i] : sgiFrame[i]
    }

    private func writeWord(_ offset: UInt64, _ value: UInt32) {
        guard let (vlpi, i) = storageIndex(offset) else { return }
        if vlpi { vlpiFrames[i] = value; return }
        switch offset &- Offset.sgiBase {
        case 0x100, 0x200, 0x300: sgiFrame[i] |= value
        case 0x180, 0x280, 0x380: sgiFrame[i] &= ~value
        default: sgiFrame[i] = value
        }
    }

    // MARK: - LPI enable

    /// GICR_CTLR.EnableLPIs. 0→1 loads the configuration cache and the pending shadow from
    /// memory (QEMU `gicv3_redist_update_lpi` likewise scans the pending table then). 1→0 is
    /// allowed (QEMU allows it; on some hardware EnableLPIs is sticky, which Linux tolerates):
    /// the cache and shadow are dropped, the pending table in memory keeps the state.
    func setEnableLPIs(_ enable: Bool) {
        guard enable != enableLPIs else { return }
        enableLPIs = enable
        if !enable {
            lpiCount = 0
            pendingBits = []
            pendingWords = []
            pendingCount = 0
            priorityIndex.reset(words: 0)
            return
        }
        let bits = min(propbaser.idBits, configuration.lpiIDBits)
        lpiCount = bits < 14 ? 0 : (1 << bits) - 8192
        pendingBits = ContiguousArray(repeating: 0, count: (lpiCount + 63) / 64)
        pendingWords = ContiguousArray(repeating: 0, count: (pendingBits.count + 63) / 64)
        pendingCount = 0
        priorityIndex.reset(words: pendingBits.count)
        reloadConfiguration(from: 0, count: lpiCount)
        if !pendbaser.pendingTableZero, lpiCount > 0 {
            let bytes = readTable(at: pendbaser.physicalAddress.adding(1024), count: lpiCount / 8)
            for (i, byte) in bytes.enumerated() where byte != 0 {
                for bit in 0..<8 where (byte >> UInt8(bit)) & 1 == 1 {
                    let index = i * 8 + bit
                    pendingBits[index / 64] |= UInt64(1) << UInt64(index % 64)
                    markWordPending(index / 64)
                    pendingCount += 1
                }
            }
        }
        trace?.append(.redistributor, "EnableLPIs", address: propbaser.physicalAddress.rawValue, value: UInt64(lpiCount),
                      "CPU\(processorNumber): \(lpiCount) LPIs, \(pendingCount) pending from the table")
    }

    /// Bytes from RAM; unreadable bytes read as 0 and are counted as table faults.
    private func readTable(at address: PhysicalAddress?, count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        guard let address, let bus else {
            counters.tableFaults += 1
            return Array(repeating: 0, count: count)
        }
        if let backing = bus.ramBackingAddress(address, size: UInt64(count)) {
            return bus.ram.readBytes(backing, count: count)
        }
        var out = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            guard let a = address.adding(UInt64(i)), let b = try? bus.read(a, size: 1, requester: .hardware) else {
                counters.tableFaults += 1
                continue
            }
            out[i] = UInt8(truncatingIfNeeded: b)
        }
        return out
    }

    private func reloadConfiguration(from index: Int, count: Int) {
        guard count > 0 else { return }
        counters.tableFaults += configurationCache.load(base: propbaser.physicalAddress, from: index, count: count, bus: bus)
        counters.configurationReads += count
    }

    // MARK: - LPI state (ITS and CPU interface side)

    @inlinable
    func lpiIndex(_ intid: INTID) -> Int? {
        guard intid.isLPI else { return nil }
        let i = Int(intid.rawValue &- 8192)
        return i < lpiCount ? i : nil
    }

    /// The cached configuration byte, or nil if LPIs are disabled or the INTID is out of range.
    public func cachedConfiguration(_ intid: INTID) -> UInt8? {
        lpiIndex(intid).map { configurationCache[$0] }
    }

    public func isPending(_ intid: INTID) -> Bool {
        guard let i = lpiIndex(intid) else { return false }
        return pendingBits[i / 64] & (UInt64(1) << UInt64(i % 64)) != 0
    }

    /// Makes `intid` pending (an ITS translation, INT, MOVI/MOVALL moving state). Returns false
    /// if the redistributor dropped it (EnableLPIs=0 or INTID beyond PROPBASER.IDbits).
    @discardableResult
    public func setPending(_ intid: INTID) -> Bool {
        guard enableLPIs else {
            counters.lpisDroppedLPIsDisabled &+= 1
            trace?.append(.redistributor, "LPI dropped", value: UInt64(intid.rawValue), "CPU\(processorNumber): GICR_CTLR.EnableLPIs=0")
            return false
        }
        guard let i = lpiIndex(intid) else {
            counters.lpisOutOfRange &+= 1
            trace?.append(.redistributor, "LPI dropped", value: UInt64(intid.rawValue), "CPU\(processorNumber): INTID beyond GICR_PROPBASER.IDbits")
            return false
        }
        let mask = UInt64(1) << UInt64(i % 64)
        if pendingBits[i / 64] & mask != 0 {
            counters.lpisAlreadyPending &+= 1
            return true
        }
        pendingBits[i / 64] |= mask
        markWordPending(i / 64)
        pendingCount &+= 1
        if priorityIndex.isBuilt {
            let byte = configurationCache[i]
            if LPIConfigurationTable.isEnabled(byte) {
                let p = UInt16(LPIConfigurationTable.priority(byte))
                if p < priorityIndex.leaf(i / 64) { priorityIndex.setLeaf(i / 64, p) }
            }
        }
        counters.lpisSetPending &+= 1
        writePendingBit(intid, set: true)
        journal?.append(.lpiPending(intid: intid.rawValue, cpu: processorNumber))
        if let trace {
            let config = configurationCache[i]
            trace.append(.redistributor, "LPI pending", value: UInt64(intid.rawValue),
                         "LPI \(intid.rawValue) pending on CPU\(processorNumber) (priority \(Hex.format(UInt64(LPIConfigurationTable.priority(config)), minDigits: 2)), \(LPIConfigurationTable.isEnabled(config) ? "enabled" : "disabled"))")
        }
        return true
    }

    /// Clears the pending state; returns whether it was pending.
    @discardableResult
    public func clearPending(_ intid: INTID) -> Bool {
        guard let i = lpiIndex(intid) else { return false }
        let mask = UInt64(1) << UInt64(i % 64)
        guard pendingBits[i / 64] & mask != 0 else { return false }
        pendingBits[i / 64] &= ~mask
        if pendingBits[i / 64] == 0 { pendingWords[i / 4096] &= ~(UInt64(1) << UInt64((i / 64) % 64)) }
        pendingCount &-= 1
        if priorityIndex.isBuilt { updatePriorityLeaf(word: i / 64) }
        writePendingBit(intid, set: false)
        return true
    }

    /// Recomputes the priority index's leaf of pending word `word` from its bits.
    private func updatePriorityLeaf(word: Int) {
        let bits = pendingBits[word]
        let value = bits == 0 ? PendingLPIIndex.none : configurationCache.bytes.withUnsafeBufferPointer { config in
            PendingLPIIndex.leafValue(word: word, bits: bits, config: config)
        }
        priorityIndex.setLeaf(word, value)
    }

    @inline(__always)
    func markWordPending(_ word: Int) {
        pendingWords[word / 64] |= UInt64(1) << UInt64(word % 64)
    }

    @inline(__always)
    private func writePendingBit(_ intid: INTID, set: Bool) {
        guard let bus, let address = LPIPendingTable.byteAddress(base: pendbaser.physicalAddress, intid: intid) else {
            counters.tableFaults &+= 1
            return
        }
        do {
            let old = try bus.read(address, size: 1, requester: .hardware)
            let mask = LPIPendingTable.bitMask(intid)
            try bus.write(address, size: 1, value: set ? old | mask : old & ~mask, requester: .hardware)
        } catch {
            counters.tableFaults &+= 1
        }
    }

    /// INV for one LPI: re-read its configuration byte from memory.
    public func invalidate(_ intid: INTID) {
        counters.invalidations += 1
        guard let i = lpiIndex(intid) else { return }
        reloadConfiguration(from: i, count: 1)
        trace?.append(.redistributor, "INV", value: UInt64(intid.rawValue),
                      "CPU\(processorNumber): LPI \(intid.rawValue) config \(Hex.format(UInt64(configurationCache[i]), minDigits: 2))")
    }

    /// INVALL: re-read every configuration byte of this redistributor's LPI range (the cache is
    /// GIC-wide, so every redistributor sees the result).
    public func invalidateAll() {
        counters.invalidations += 1
        reloadConfiguration(from: 0, count: lpiCount)
        trace?.append(.redistributor, "INVALL", "CPU\(processorNumber): \(lpiCount) configuration bytes re-read")
    }

    /// Pending LPIs in INTID order.
    public var pendingLPIs: [INTID] {
        var out: [INTID] = []
        for (w, word) in pendingBits.enumerated() where word != 0 {
            for b in 0..<64 where word & (UInt64(1) << UInt64(b)) != 0 {
                out.append(INTID(UInt32(8192 + w * 64 + b)))
            }
        }
        return out
    }

    /// The pending, enabled LPI with the lowest priority value below `threshold` (exclusive);
    /// ties go to the lowest INTID. GICv3 §4.8 leaves the choice among equal priorities
    /// IMPLEMENTATION DEFINED. Answered from `priorityIndex` (brought up to date with the
    /// configuration cache first): O(log words) per acknowledge, the same answer as
    /// `highestPriorityPendingByScan`.
    func highestPriorityPending(below threshold: UInt16) -> (intid: INTID, priority: UInt8)? {
        guard pendingCount > 0 else { return nil }
        let generation = configurationCache.generation
        let lastLoad = configurationCache.lastLoad
        let found: (index: Int, priority: UInt16)? = configurationCache.bytes.withUnsafeBufferPointer { config in
            pendingBits.withUnsafeBufferPointer { words in
                if !priorityIndex.isBuilt || priorityIndex.generation != generation {
                    pendingWords.withUnsafeBufferPointer { summary in
                        priorityIndex.refresh(to: generation, lastLoad: lastLoad, words: words, summary: summary, config: config)
                    }
                }
                return priorityIndex.best(below: threshold, words: words, config: config)
            }
        }
        guard let found else { return nil }
        return (INTID(UInt32(8192 + found.index)), UInt8(truncatingIfNeeded: found.priority))
    }

    /// The same choice as `highestPriorityPending` by walking every pending LPI (in INTID order,
    /// keeping the first of the lowest priority value): the reference the index is tested
    /// against.
    func highestPriorityPendingByScan(below threshold: UInt16) -> (intid: INTID, priority: UInt8)? {
        guard pendingCount > 0 else { return nil }
        var bestIndex = -1
        var bestPriority = threshold
        configurationCache.bytes.withUnsafeBufferPointer { config in
            pendingBits.withUnsafeBufferPointer { words in
                for w in 0..<words.count where words[w] != 0 {
                    var rest = words[w]
                    while rest != 0 {
                        let i = w &* 64 &+ rest.trailingZeroBitCount
                        rest &= rest &- 1
                        guard i < config.count else { continue }
                        let byte = config[i]
                        guard LPIConfigurationTable.isEnabled(byte) else { continue }
                        let p = UInt16(LPIConfigurationTable.priority(byte))
                        if p < bestPriority {
                            bestPriority = p
                            bestIndex = i
                        }
                    }
                }
            }
        }
        guard bestIndex >= 0 else { return nil }
        return (INTID(UInt32(8192 + bestIndex)), UInt8(truncatingIfNeeded: bestPriority))
    }
}

extension Redistributor {
    /// Takes `other`'s state (a forked world's copy); `bus` is the copy's bus. The LPI
    /// configuration cache is the GIC's, copied by the GIC.
    func copyState(of other: Redistributor, bus: SystemBus?) {
        isLast = other.isLast
        rdBase = other.rdBase
        self.bus = bus
        enableLPIs = other.enableLPIs
        waker = other.waker
        propbaser = other.propbaser
        pendbaser = other.pendbaser
        counters = other.counters
        lpiCount = other.lpiCount
        pendingBits = other.pendingBits
        pendingWords = other.pendingWords
        pendingCount = other.pendingCount
        priorityIndex = other.priorityIndex
        sgiFrame = other.sgiFrame
        vlpiFrames = other.vlpiFrames
        virtualState = other.virtualState
    }
}
