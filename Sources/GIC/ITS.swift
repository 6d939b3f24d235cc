import Bus

/// A GICv3 Interrupt Translation Service: the 64 KiB control frame and the 64 KiB translation
/// frame holding GITS_TRANSLATER (GICv3 §5.2, §12.19; register map docs/hardware.md §ITS registers).
///
/// Tables (device table at GITS_BASER0, collection table at GITS_BASER1, one ITT per device at its
/// MAPD ITT_addr) live in RAM in the IMPLEMENTATION DEFINED formats documented on
/// `DeviceTableEntry`, `InterruptTranslationEntry` and `CollectionTableEntry`. The ITS writes
/// them only when executing commands and reads them on translation behind three caches
/// (`deviceCache`, `eventCache`, `collectionCache`), which commands alone keep coherent.
///
/// The command queue is processed synchronously when GITS_CWRITER is written (and when the ITS
/// is enabled with commands outstanding), so every command has taken effect when the write
/// returns; SYNC then has nothing left to wait for and is only counted.
public final class ITS: MMIODevice {
    public var mmioName: String { "gits\(number)" }
    /// Control frame + translation frame.
    public static let frameSize: UInt64 = 0x2_0000
    /// GITS_TRANSLATER's offset from the ITS base.
    public static let translaterOffset: UInt64 = 0x1_0040

    public let number: Int
    public let configuration: GICConfiguration
    unowned(safe) let gic: GICv3
    unowned(safe) let bus: SystemBus
    /// The ITS base address on the bus.
    public internal(set) var base = PhysicalAddress(0)
    public var trace: TraceLog?
    /// Where DTEs, ITEs and CTEs live when not in the memory tables (an emulated ITS such as
    /// KVM's keeps them in its own lists); nil for a hardware ITS.
    public let entryStorage: (any ITSEntryStorage)?

    /// The MSI doorbell address devices write (base + 0x10040).
    public var translaterAddress: PhysicalAddress { PhysicalAddress(base.rawValue &+ ITS.translaterOffset) }

    // Registers.
    public private(set) var enabled = false
    public private(set) var cbaser: UInt64 = 0
    public private(set) var cwriter: UInt64 = 0
    public internal(set) var creadr: UInt64 = 0
    /// GITS_CREADR.Stalled.
    public internal(set) var stalled = false
    public private(set) var baser: [UInt64]
    /// Collections held in the ITS (ICID < GITS_TYPER.HCC), as CTE words.
    var hardwareCollections: ContiguousArray<UInt64>

    // Caches.
    public internal(set) var deviceCache: ITSCache
    public internal(set) var eventCache: ITSCache
    public internal(set) var collectionCache: ITSCache

    public var counters = ITSCounters()
    /// The journal of the message being followed: every GITS_TRANSLATER write that carried a
    /// DeviceID and what became of it, and the writes dropped before translation.
    public var journal: Journal?
    /// The DeviceID every device write to GITS_TRANSLATER arrives with when the interconnect
    /// does not carry the requester's (nil: it does, from the root complex's `msi-map`). A
    /// SynQuacer-style SoC sets it to 0: the Kconfig help of Linux's
    /// `SOCIONEXT_SYNQUACER_PREITS` says the pre-ITS is "a separate h/w block to generate MSI
    /// doorbell writes with non-zero values for the device ID", so a write that bypasses it
    /// reaches the ITS as DeviceID 0. (Which DeviceID such a write carries is the SoC's
    /// choice; 0 is this model's reading of that help text.)
    public var interconnectDeviceID: DeviceID?
    /// Command errors, oldest first, at most `errorLogCapacity` (later ones are only counted).
    public internal(set) var errorLog: [ITSCommandErrorRecord] = []
    public static let errorLogCapacity = 4096
    /// The most recent command error code.
    public internal(set) var lastCommandError: ITSCommandError?

    init(gic: GICv3, bus: SystemBus, number: Int, entryStorage: (any ITSEntryStorage)? = nil) {
        self.gic = gic
        self.bus = bus
        self.number = number
        self.entryStorage = entryStorage
        let c = gic.configuration
        configuration = c
        var b = [UInt64](repeating: 0, count: 8)
        // GITS_BASER0 = device table, BASER1 = collection table, BASER2 = vPE table (GICv4),
        // all with 8-byte entries and Page_Size resetting to 64 KiB (QEMU `gicv3_its_reset`);
        // the rest are unimplemented.
        func reset(_ type: UInt64) -> UInt64 {
            UInt64(0).settingBits(58, 56, to: type).settingBits(52, 48, to: 7).settingBits(9, 8, to: 2)
        }
        b[0] = reset(GITSBaser.TableType.devices)
        b[1] = reset(GITSBaser.TableType.collections)
        if c.version >= 4 { b[2] = reset(GITSBaser.TableType.vPEs) }
        // GICv4.1: the vPE table holds this model's 32-byte entries (`VPETableEntry`).
        if c.virtualLPIs { b[2] = b[2].settingBits(52, 48, to: UInt64(ITS.vpeEntrySize - 1)) }
        baser = b
        hardwareCollections = ContiguousArray(repeating: 0, count: c.hardwareCollections)
        deviceCache = ITSCache(c.deviceCache)
        eventCache = ITSCache(c.eventCache)
        collectionCache = ITSCache(c.collectionCache)
    }

    // MARK: - Register map

    public enum Offset {
        public static let ctlr: UInt64 = 0x0000
        public static let iidr: UInt64 = 0x0004
        public static let typer: UInt64 = 0x0008
        public static let cbaser: UInt64 = 0x0080
        public static let cwriter: UInt64 = 0x0088
        public static let creadr: UInt64 = 0x0090
        public static let baser: UInt64 = 0x0100
        public static let pidr2: UInt64 = 0xFFE8
        public static let translater: UInt64 = 0x1_0040
    }

    /// GITS_TYPER (GICv3 §12.19, docs/hardware.md §ITS registers; QEMU `gicv3_arm_its_realize`): Physical[0]=1, Virtual[1]
    /// (GICv4), ITT_entry_size[7:4], IDbits[12:8], Devbits[17:13], SEIS[18]=0, PTA[19],
    /// HCC[31:24], CIDbits[35:32], CIL[36], VMOVP[37] (GICv4, as QEMU sets it), VMAPP[40]
    /// (GICv4.1 command layout, Linux `GITS_TYPER_VMAPP`; with `virtualLPIs`), SVPET[42:41] = 0
    /// (vPE tables not shared with redistributors; see `VPEMapping`).
    public var typer: UInt64 {
        let c = configuration
        return UInt64(1)
            .settingBit(1, to: c.version >= 4)
            .settingBits(7, 4, to: UInt64(c.ittEntrySize - 1))
            .settingBits(12, 8, to: UInt64(c.eventIDBits - 1))
            .settingBits(17, 13, to: UInt64(c.deviceIDBits - 1))
            .settingBit(19, to: c.physicalTargetAddresses)
            .settingBits(31, 24, to: UInt64(c.hardwareCollections))
            .settingBits(35, 32, to: c.collectionIDLimit ? UInt64(c.collectionIDBits - 1) : 0)
            .settingBit(36, to: c.collectionIDLimit)
            .settingBit(37, to: c.version >= 4)
            .settingBit(40, to: c.virtualLPIs)
    }

    /// GITS_CTLR: Enabled[0]; Quiescent[31] reads 1 when the ITS is disabled (commands complete
    /// synchronously, so a disabled ITS has nothing in flight; Linux `its_force_quiescent` polls
    /// it after clearing Enabled).
    public var ctlr: UInt32 { UInt32(enabled ? 1 : 0) | (enabled ? 0 : UInt32(1) << 31) }

    /// GITS_CBASER writable bits: Size[7:0], Shareability[11:10], PA[51:12], OuterCache[55:53],
    /// InnerCache[61:59], Valid[63].
    static let cbaserMask: UInt64 = 0xFF | UInt64(3) << 10 | UInt64(0xFF_FFFF_FFFF) << 12 | UInt64(7) << 53 | UInt64(7) << 59 | UInt64(1) << 63

    /// The command queue size in bytes: (CBASER.Size + 1) × 4 KiB.
    public var commandQueueBytes: UInt64 { (cbaser.bits(7, 0) &+ 1) &* 4096 }
    public var commandQueueBase: PhysicalAddress { PhysicalAddress(cbaser.keepingBits(51, 12)) }

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        // GITS_TRANSLATER is write-only; the translation frame reads as zero.
        guard offset < 0x1_0000, size == 4 || size == 8, offset & UInt64(size - 1) == 0 else { return 0 }
        let word: UInt64
        switch offset & ~7 {
        case 0x0000: word = UInt64(ctlr) | UInt64(configuration.iidr) << 32
        case Offset.typer: word = typer
        case Offset.cbaser: word = cbaser
        case Offset.cwriter: word = cwriter
        case Offset.creadr: word = creadr | (stalled ? 1 : 0)
        case Offset.baser..<(Offset.baser + 0x40): word = baser[Int((offset - Offset.baser) / 8)]
        case 0xFFE8: word = UInt64(GICv3.pidr2(version: configuration.version))
        default: word = 0
        }
        return size == 8 ? word : (word &>> ((offset & 4) &* 8)) & 0xFFFF_FFFF
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        if offset == Offset.translater {
            guard size == 2 || size == 4 else {
                counters.countDrop(.badAccessSize)
                journal?.append(.droppedWrite(address: translaterAddress.rawValue, size: size))
                throw .deviceError(translaterAddress, "GITS_TRANSLATER takes 16- and 32-bit writes")
            }
            counters.translaterWrites &+= 1
            guard case .device(let sideband) = requester else {
                // GICv3 §5.2: the DeviceID is supplied by the interconnect with the write, never
                // by its data. A PE store (or a hardware unit's own access) carries none here, so
                // it cannot raise any device's LPI. Real systems give such writes an
                // IMPLEMENTATION DEFINED DeviceID, which is why the doorbell page must never be
                // mapped for an untrusted agent to write.
                counters.countDrop(.noDeviceID)
                journal?.append(.droppedWrite(address: translaterAddress.rawValue, size: size))
                trace?.append(.its, "GITS_TRANSLATER write dropped", address: translaterAddress.rawValue, value: value,
                              "no DeviceID sideband (\(requester))")
                return
            }
            let deviceID = interconnectDeviceID ?? sideband
            let event = EventID(UInt32(truncatingIfNeeded: value & UInt64.lowMask(size * 8)))
            receiveTranslationRequest(deviceID: deviceID, eventID: event, counted: true)
            return
        }
        guard offset < 0x1_0000, size == 4 || size == 8, offset & UInt64(size - 1) == 0 else { return }
        switch offset {
        case Offset.ctlr:
            setEnabled(value.bit(0))
        case Offset.cbaser, Offset.cbaser + 4:
            // Writes while Enabled=1 are UNPREDICTABLE; QEMU (its_writel/its_writell, "IMPDEF
            // choice: GITS_CBASER becomes RO if ITS is already enabled") ignores them, so does
            // this model. A successful write resets GITS_CREADR to 0, and, as in QEMU, CWRITER.
            guard !enabled else { return }
            cbaser = GICv3.merge(cbaser, at: offset - Offset.cbaser, size: size, value: value) & ITS.cbaserMask
            creadr = 0
            cwriter = 0
            stalled = false
        case Offset.cwriter, Offset.cwriter + 4:
            let raw = GICv3.merge(cwriter, at: offset - Offset.cwriter, size: size, value: value)
            cwriter = raw.keepingBits(19, 5)
            if raw.bit(0), stalled {
                // GITS_CWRITER.Retry: restart a stalled queue at the failed command.
                stalled = false
            }
            processCommandQueue()
        case Offset.baser..<(Offset.baser + 0x40):
            let index = Int((offset - Offset.baser) / 8)
            let current = baser[index]
            // Unimplemented tables (Type = 0) are RAZ/WI; writes while Enabled=1 are ignored as in
            // QEMU (the architecture makes them UNPREDICTABLE).
            guard current.bits(58, 56) != GITSBaser.TableType.none, !enabled else { return }
            let merged = GICv3.merge(current, at: offset & 7, size: size, value: value)
            baser[index] = (merged & GITSBaser.writableMask) | (current & ~GITSBaser.writableMask)
            invalidateAllCaches()
        default:
            break
        }
    }

    /// GITS_CREADR written by a VMM restoring state (KVM `vgic_mmio_uaccess_write_its_creadr`;
    /// a guest cannot write it): only while the ITS is disabled (else false, KVM's EBUSY), and
    /// the offset (bits [19:5]) must lie inside the command queue (else false, KVM's EINVAL —
    /// the caller tells the two apart by `enabled`).
    public func restoreCommandReadOffset(_ value: UInt64) -> Bool {
        guard !enabled else { return false }
        let offset = value.keepingBits(19, 5)
        guard offset < commandQueueBytes else { return false }
        creadr = offset
        return true
    }

    func setEnabled(_ enable: Bool) {
        guard enable != enabled else { return }
        enabled = enable
        trace?.append(.its, "GITS_CTLR", value: enable ? 1 : 0, enable ? "ITS enabled" : "ITS disabled")
        if enable { processCommandQueue() }
    }

    /// Drops every cached DTE, ITE and CTE (table registers changed).
    public func invalidateAllCaches() {
        deviceCache.invalidateAll()
        eventCache.invalidateAll()
        collectionCache.invalidateAll()
    }

    // MARK: - Table access (shared by translation and commands)

    @inlinable
    static func eventKey(_ device: UInt32, _ event: UInt32) -> UInt64 { UInt64(device) &<< 32 | UInt64(event) }

    enum Lookup<Value> {
        case found(Value)
        case outOfRange
        case unmapped
        case fault(UInt64)
    }

    /// The device table entry address for `device` (BASER0; flat or indirect).
    func deviceEntryAddress(_ device: UInt32) -> GITSBaser.Lookup {
        guard UInt64(device) < UInt64(1) &<< UInt64(configuration.deviceIDBits) else { return .outOfRange }
        return GITSBaser(rawValue: baser[0]).entryAddress(index: UInt64(device)) { (a) throws(BusError) -> UInt64 in
            try bus.read(a, size: 8, requester: .hardware)
        }
    }

    /// DeviceID → DTE, through the device cache.
    @inline(__always)
    func lookupDevice(_ device: UInt32) -> Lookup<DeviceTableEntry> {
        if let raw = deviceCache.lookup(UInt64(device)) { return .found(DeviceTableEntry(rawValue: raw)) }
        if let entryStorage {
            guard UInt64(device) < UInt64(1) &<< UInt64(configuration.deviceIDBits) else { return .outOfRange }
            counters.tableReads &+= 1
            guard let dte = entryStorage.deviceEntry(device), dte.valid else { return .unmapped }
            deviceCache.fill(UInt64(device), dte.rawValue)
            return .found(dte)
        }
        switch deviceEntryAddress(device) {
        case .outOfRange: return .outOfRange
        case .notAllocated: return .unmapped
        case .fault(let a): return .fault(a.rawValue)
        case .entry(let address):
            counters.tableReads &+= 1
            guard let raw = try? bus.read(address, size: 8, requester: .hardware) else { return .fault(address.rawValue) }
            let dte = DeviceTableEntry(rawValue: raw)
            guard dte.valid else { return .unmapped }
            deviceCache.fill(UInt64(device), raw)
            return .found(dte)
        }
    }

    /// (DeviceID, EventID) → ITE, through the event cache, given the device's DTE.
    @inline(__always)
    func lookupEvent(_ device: UInt32, _ dte: DeviceTableEntry, _ event: UInt32) -> Lookup<InterruptTranslationEntry> {
        guard UInt64(event) < dte.eventCount else { return .outOfRange }
        let key = ITS.eventKey(device, event)
        if let raw = eventCache.lookup(key) { return .found(InterruptTranslationEntry(rawValue: raw)) }
        if let entryStorage {
            counters.tableReads &+= 1
            guard let ite = entryStorage.eventEntry(device: device, event: event), ite.valid else { return .unmapped }
            eventCache.fill(key, ite.rawValue)
            return .found(ite)
        }
        guard let address = InterruptTranslationTable.entryAddress(itt: dte.ittAddress, event: EventID(event),
                                                                  entrySize: configuration.ittEntrySize) else {
            return .fault(dte.ittAddress.rawValue)
        }
        counters.tableReads &+= 1
        guard let raw = try? bus.read(address, size: 8, requester: .hardware) else { return .fault(address.rawValue) }
        let ite = InterruptTranslationEntry(rawValue: raw)
        guard ite.valid else { return .unmapped }
        eventCache.fill(key, raw)
        return .found(ite)
    }

    /// The collection table entry address for `icid` (BASER1), for ICIDs not held in the ITS.
    func collectionEntryAddress(_ icid: UInt16) -> GITSBaser.Lookup {
        GITSBaser(rawValue: baser[1]).entryAddress(index: UInt64(icid)) { (a) throws(BusError) -> UInt64 in
            try bus.read(a, size: 8, requester: .hardware)
        }
    }

    func collectionInRange(_ icid: UInt16) -> Bool {
        UInt64(icid) < UInt64(1) &<< UInt64(configuration.collectionIDBits)
    }

    /// ICID → redistributor index, through the collection cache.
    @inline(__always)
    func lookupCollection(_ icid: UInt16) -> Lookup<Int> {
        if let index = collectionCache.lookup(UInt64(icid)) { return .found(Int(truncatingIfNeeded: index)) }
        guard collectionInRange(icid) else { return .outOfRange }
        let raw: UInt64
        if Int(icid) < hardwareCollections.count {
            raw = hardwareCollections[Int(icid)]
        } else if let entryStorage {
            counters.tableReads &+= 1
            raw = entryStorage.collectionEntry(icid)?.rawValue ?? 0
        } else {
            switch collectionEntryAddress(icid) {
            case .outOfRange: return .outOfRange
            case .notAllocated: return .unmapped
            case .fault(let a): return .fault(a.rawValue)
            case .entry(let address):
                counters.tableReads &+= 1
                guard let value = try? bus.read(address, size: 8, requester: .hardware) else { return .fault(address.rawValue) }
                raw = value
            }
        }
        let cte = CollectionTableEntry(rawValue: raw)
        guard cte.valid, let index = gic.redistributorIndex(for: cte.target) else { return .unmapped }
        collectionCache.fill(UInt64(icid), UInt64(index))
        return .found(index)
    }
}

extension ITS {
    /// Takes `other`'s registers, caches, counters and error log (a forked world's copy).
    /// Trace and journal are observers and stay detached.
    func copyState(of other: ITS) {
        base = other.base
        enabled = other.enabled
        cbaser = other.cbaser
        cwriter = other.cwriter
        creadr = other.creadr
        stalled = other.stalled
        baser = other.baser
        hardwareCollections = other.hardwareCollections
        deviceCache = other.deviceCache
        eventCache = other.eventCache
        collectionCache = other.collectionCache
        counters = other.counters
        interconnectDeviceID = other.interconnectDeviceID
        errorLog = other.errorLog
        lastCommandError = other.lastCommandError
    }
}
