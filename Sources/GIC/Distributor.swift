import Bus

/// The GICv3 distributor (GICD): GICD_CTLR (0x0000; RWP[31] reads 0 because writes complete at
/// once), GICD_TYPER (0x0004), GICD_IIDR (0x0008), GICD_TYPER2 (0x000C, 0), GICD_PIDR2 (0xFFE8),
/// and the SPI state the CPU interfaces take SPIs from (`DistributorSPI.swift`): GICD_IGROUPR,
/// GICD_ISENABLER/ICENABLER, GICD_ISPENDR/ICPENDR (over each SPI wire's level, `setLevel`),
/// GICD_ISACTIVER/ICACTIVER, GICD_IPRIORITYR (byte-accessible), GICD_ICFGR and GICD_IROUTER.
/// The rest of the 64 KiB frame is read/write storage.
public final class Distributor: MMIODevice {
    public var mmioName: String { "gicd" }
    public let configuration: GICConfiguration
    /// GICD_CTLR as written (EnableGrp1NS[1], ARE_NS[4], …).
    public internal(set) var ctlr: UInt32 = 0
    /// The GIC this distributor belongs to (set by `GICv3.init`), so a forked world copies it
    /// with its GIC.
    unowned(safe) var owner: GICv3?
    var storage = ContiguousArray<UInt32>(repeating: 0, count: 0x1_0000 / 4)

    /// The level of each SPI input wire, one bit per INTID (word n holds INTIDs 32n…32n+31;
    /// word 0, the SGIs/PPIs, stays 0).
    var levelBits: [UInt32] = []

    /// Level-sensitive SPIs asserted by a GICD_SETSPI_NSR write and not yet cleared by
    /// GICD_CLRSPI_NSR (`DistributorMBI.swift`), one bit per INTID like `levelBits`.
    var messageLevelBits: [UInt32] = []

    init(configuration: GICConfiguration) {
        self.configuration = configuration
        levelBits = Array(repeating: 0, count: (max(configuration.spiCount, 0) + 32 + 31) / 32)
        messageLevelBits = levelBits
    }

    /// The level of each SPI's input wire (INTID 32…).
    public var spiLevels: [Bool] {
        (0..<max(configuration.spiCount, 0)).map { levelBits[(32 + $0) / 32] & (1 << UInt32((32 + $0) % 32)) != 0 }
    }

    public enum Offset {
        public static let ctlr: UInt64 = 0x0000
        public static let typer: UInt64 = 0x0004
        public static let iidr: UInt64 = 0x0008
        public static let typer2: UInt64 = 0x000C
        public static let pidr2: UInt64 = 0xFFE8
        /// GICD_IGROUPR<n> (1 = Group 1).
        public static let igroupr: UInt64 = 0x0080
        /// GICD_ISENABLER<n> / GICD_ICENABLER<n> (set-/clear-enable, one bit per INTID).
        public static let isenabler: UInt64 = 0x0100
        public static let icenabler: UInt64 = 0x0180
        /// GICD_ISPENDR<n> / GICD_ICPENDR<n>.
        public static let ispendr: UInt64 = 0x0200
        public static let icpendr: UInt64 = 0x0280
        /// GICD_ISACTIVER<n> / GICD_ICACTIVER<n>.
        public static let isactiver: UInt64 = 0x0300
        public static let icactiver: UInt64 = 0x0380
        /// GICD_IPRIORITYR<n> (one byte per INTID, byte-accessible).
        public static let ipriorityr: UInt64 = 0x0400
        /// GICD_ICFGR<n> (2 bits per INTID; bit 1 set = edge).
        public static let icfgr: UInt64 = 0x0C00
        /// GICD_IROUTER<n> (64-bit, 0x6000 + 8n).
        public static let irouter: UInt64 = 0x6000
    }

    /// GICD_TYPER (Linux arm-gic-v3.h): ITLinesNumber[4:0] = (SPIs + 32) / 32 − 1, CPUNumber[7:5]
    /// (PEs − 1, capped at 7; affinity routing makes it informational), MBIS[16] (GICD_SETSPI_NSR
    /// and GICD_CLRSPI_NSR implemented, `GICConfiguration.messageBasedSPIs`), LPIS[17]=1,
    /// DVIS[18] (GICv4 direct vLPI injection), IDbits[23:19] = INTID bits − 1.
    public var typer: UInt32 {
        if configuration.version == 2 { return gicv2Typer }
        return UInt32(0)
            .settingBits(4, 0, to: UInt32((configuration.spiCount + 32) / 32 - 1))
            .settingBits(7, 5, to: UInt32(min(configuration.cpuCount - 1, 7)))
            .settingBit(16, to: configuration.messageBasedSPIs)
            .settingBit(17, to: true)
            .settingBit(18, to: configuration.version >= 4)
            .settingBits(23, 19, to: UInt32(configuration.lpiIDBits - 1))
    }

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        if size == 1, (Offset.ipriorityr..<(Offset.ipriorityr + 0x400)).contains(offset) {
            return UInt64(priorityByte(Int(offset - Offset.ipriorityr)))
        }
        if configuration.version == 2, let value = gicv2Read(offset: offset, size: size) { return value }
        if Distributor.isMBIRegister(offset) { return 0 }
        guard size == 4 || size == 8, offset & UInt64(size - 1) == 0 else { return 0 }
        func word(_ o: UInt64) -> UInt64 {
            switch o {
            case Offset.ctlr: UInt64(ctlr)
            case Offset.typer: UInt64(typer)
            case Offset.iidr: UInt64(configuration.iidr)
            case Offset.typer2: UInt64(typer2)
            case Offset.pidr2: UInt64(GICv3.pidr2(version: configuration.version))
            // Set-/clear- pairs read the same state: the pending state (latch or wire), enable,
            // active.
            case Offset.ispendr..<(Offset.ispendr + 0x80): UInt64(pendingWord(Int((o - Offset.ispendr) / 4)))
            case Offset.icpendr..<(Offset.icpendr + 0x80): UInt64(pendingWord(Int((o - Offset.icpendr) / 4)))
            case Offset.icenabler..<(Offset.icenabler + 0x80):
                UInt64(storage[Int((o - Offset.icenabler + Offset.isenabler) / 4)])
            case Offset.icactiver..<(Offset.icactiver + 0x80):
                UInt64(storage[Int((o - Offset.icactiver + Offset.isactiver) / 4)])
            default: Int(o / 4) < storage.count ? UInt64(storage[Int(o / 4)]) : 0
            }
        }
        return size == 8 ? word(offset) | word(offset + 4) << 32 : word(offset)
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        if size == 1, (Offset.ipriorityr..<(Offset.ipriorityr + 0x400)).contains(offset) {
            setPriorityByte(Int(offset - Offset.ipriorityr), UInt8(truncatingIfNeeded: value))
            return
        }
        if configuration.version == 2, gicv2Write(offset: offset, size: size, value: value) { return }
        if Distributor.isMBIRegister(offset) {
            messageWrite(offset: offset, size: size, value: value)
            return
        }
        guard size == 4 || size == 8, offset & UInt64(size - 1) == 0 else { return }
        func write(_ o: UInt64, _ v: UInt32) {
            switch o {
            case Offset.ctlr: ctlr = v & ~(UInt32(1) << 31)
            case Offset.typer, Offset.iidr, Offset.typer2, Offset.pidr2: break
            // Set-enable and clear-enable are write-1 registers over one enable state.
            case Offset.isenabler..<(Offset.isenabler + 0x80): storage[Int(o / 4)] |= v
            case Offset.icenabler..<(Offset.icenabler + 0x80): storage[Int((o - Offset.icenabler + Offset.isenabler) / 4)] &= ~v
            case Offset.ispendr..<(Offset.ispendr + 0x80): storage[Int(o / 4)] |= v
            // GICD_ICPENDR clears the latch; a level-sensitive SPI whose wire is asserted stays
            // pending (GICv3 §4.1.2).
            case Offset.icpendr..<(Offset.icpendr + 0x80): storage[Int((o - Offset.icpendr + Offset.ispendr) / 4)] &= ~v
            case Offset.isactiver..<(Offset.isactiver + 0x80): storage[Int(o / 4)] |= v
            case Offset.icactiver..<(Offset.icactiver + 0x80): storage[Int((o - Offset.icactiver + Offset.isactiver) / 4)] &= ~v
            default: if Int(o / 4) < storage.count { storage[Int(o / 4)] = v }
            }
        }
        write(offset, UInt32(truncatingIfNeeded: value))
        if size == 8 { write(offset + 4, UInt32(truncatingIfNeeded: value >> 32)) }
    }
}

extension Distributor {
    /// Takes `other`'s register state (a forked world's copy).
    func copyState(of other: Distributor) {
        ctlr = other.ctlr
        storage = other.storage
        levelBits = other.levelBits
        messageLevelBits = other.messageLevelBits
    }
}
