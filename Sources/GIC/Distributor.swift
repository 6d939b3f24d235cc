import Bus

/// The GICv3 distributor (GICD), the registers Linux reads before it touches LPIs:
/// GICD_CTLR (0x0000; RWP[31] reads 0 because writes complete at once), GICD_TYPER (0x0004),
/// GICD_IIDR (0x0008), GICD_TYPER2 (0x000C, 0) and GICD_PIDR2 (0xFFE8). The rest of the 64 KiB
/// frame is read/write storage, with GICD_ISENABLER/ICENABLER as one enable state and
/// GICD_ISPENDR showing each SPI wire's level (`setLevel`); SPIs are not signalled to a CPU.
public final class Distributor: MMIODevice {
    public var mmioName: String { "gicd" }
    public let configuration: GICConfiguration
    /// GICD_CTLR as written (EnableGrp1NS[1], ARE_NS[4], …).
    public private(set) var ctlr: UInt32 = 0
    var storage = ContiguousArray<UInt32>(repeating: 0, count: 0x1_0000 / 4)

    /// The level of each SPI's input wire (INTID 32…), as a level-sensitive source drives it.
    public private(set) var spiLevels: [Bool] = []

    init(configuration: GICConfiguration) {
        self.configuration = configuration
        spiLevels = Array(repeating: false, count: max(configuration.spiCount, 0))
    }

    /// Drives SPI `intid`'s input (GICv3 §4.1.2: a level-sensitive interrupt is pending while
    /// its input is asserted). The pending state reads back in GICD_ISPENDR<n>. Not modelled
    /// beyond that: a CPU interface acknowledging an SPI (GICD_ISENABLER, GICD_IPRIORITYR and
    /// GICD_IROUTER are stored but do not signal). Returns false for an INTID that is not an
    /// implemented SPI.
    @discardableResult
    public func setLevel(intid: UInt32, asserted: Bool) -> Bool {
        guard intid >= 32 else { return false }
        let index = Int(intid) - 32
        guard index < spiLevels.count else { return false }
        spiLevels[index] = asserted
        return true
    }

    /// Whether SPI `intid` is pending: its wire asserted, or a GICD_ISPENDR write latched it.
    public func isPending(intid: UInt32) -> Bool {
        guard intid >= 32, Int(intid) - 32 < spiLevels.count else { return false }
        let latched = Int(Offset.ispendr / 4) + Int(intid / 32)
        return spiLevels[Int(intid) - 32] || (latched < storage.count && storage[latched] & (1 << (intid % 32)) != 0)
    }

    /// Whether GICD_ISENABLER<n> has SPI `intid` enabled.
    public func isEnabled(intid: UInt32) -> Bool {
        let word = Int(Offset.isenabler / 4) + Int(intid / 32)
        return word < storage.count && storage[word] & (1 << (intid % 32)) != 0
    }

    public enum Offset {
        public static let ctlr: UInt64 = 0x0000
        public static let typer: UInt64 = 0x0004
        public static let iidr: UInt64 = 0x0008
        public static let typer2: UInt64 = 0x000C
        public static let pidr2: UInt64 = 0xFFE8
        /// GICD_ISENABLER<n> / GICD_ICENABLER<n> (set-/clear-enable, one bit per INTID).
        public static let isenabler: UInt64 = 0x0100
        public static let icenabler: UInt64 = 0x0180
        /// GICD_ISPENDR<n>.
        public static let ispendr: UInt64 = 0x0200
        /// GICD_ICFGR<n> (2 bits per INTID; bit 1 set = edge).
        public static let icfgr: UInt64 = 0x0C00
        /// GICD_IROUTER<n> (64-bit, 0x6000 + 8n).
        public static let irouter: UInt64 = 0x6000
    }

    /// GICD_TYPER (Linux arm-gic-v3.h): ITLinesNumber[4:0] = (SPIs + 32) / 32 − 1, CPUNumber[7:5]
    /// (PEs − 1, capped at 7; affinity routing makes it informational), LPIS[17]=1,
    /// DVIS[18] (GICv4 direct vLPI injection), IDbits[23:19] = INTID bits − 1.
    public var typer: UInt32 {
        UInt32(0)
            .settingBits(4, 0, to: UInt32((configuration.spiCount + 32) / 32 - 1))
            .settingBits(7, 5, to: UInt32(min(configuration.cpuCount - 1, 7)))
            .settingBit(17, to: true)
            .settingBit(18, to: configuration.version >= 4)
            .settingBits(23, 19, to: UInt32(configuration.lpiIDBits - 1))
    }

    /// The wire levels of the 32 INTIDs of GICD_ISPENDR<word>.
    func levelWord(_ word: Int) -> UInt32 {
        var bits: UInt32 = 0
        for bit in 0..<32 {
            let index = word * 32 + bit - 32
            if index >= 0, index < spiLevels.count, spiLevels[index] { bits |= 1 << UInt32(bit) }
        }
        return bits
    }

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        guard size == 4 || size == 8, offset & UInt64(size - 1) == 0 else { return 0 }
        func word(_ o: UInt64) -> UInt64 {
            switch o {
            case Offset.ctlr: UInt64(ctlr)
            case Offset.typer: UInt64(typer)
            case Offset.iidr: UInt64(configuration.iidr)
            case Offset.typer2: 0
            case Offset.pidr2: UInt64(GICv3.pidr2(version: configuration.version))
            case Offset.ispendr..<(Offset.ispendr + 0x80):
                UInt64(storage[Int(o / 4)] | levelWord(Int((o - Offset.ispendr) / 4)))
            case Offset.icenabler..<(Offset.icenabler + 0x80):
                UInt64(storage[Int((o - Offset.icenabler + Offset.isenabler) / 4)])
            default: Int(o / 4) < storage.count ? UInt64(storage[Int(o / 4)]) : 0
            }
        }
        return size == 8 ? word(offset) | word(offset + 4) << 32 : word(offset)
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        guard size == 4 || size == 8, offset & UInt64(size - 1) == 0 else { return }
        func write(_ o: UInt64, _ v: UInt32) {
            switch o {
            case Offset.ctlr: ctlr = v & ~(UInt32(1) << 31)
            case Offset.typer, Offset.iidr, Offset.typer2, Offset.pidr2: break
            // Set-enable and clear-enable are write-1 registers over one enable state.
            case Offset.isenabler..<(Offset.isenabler + 0x80): storage[Int(o / 4)] |= v
            case Offset.icenabler..<(Offset.icenabler + 0x80): storage[Int((o - Offset.icenabler + Offset.isenabler) / 4)] &= ~v
            case Offset.ispendr..<(Offset.ispendr + 0x80): storage[Int(o / 4)] |= v
            default: if Int(o / 4) < storage.count { storage[Int(o / 4)] = v }
            }
        }
        write(offset, UInt32(truncatingIfNeeded: value))
        if size == 8 { write(offset + 4, UInt32(truncatingIfNeeded: value >> 32)) }
    }
}
