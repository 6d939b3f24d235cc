import Bus

/// A GICv2m MSI frame: a 4 KiB page beside a GICv2 (or GICv3) distributor that turns a device's
/// write into an SPI. Specified by the Arm Server Base System Architecture (ARM-DEN-0029, the
/// GICv2m appendix; v2.2 pages 35–39 is what QEMU's `hw/intc/arm_gicv2m.c` implements), and
/// bound in device trees as `arm,gic-v2m-frame` (Linux `irq-gic-v2m.c`).
///
/// Registers (offsets from the frame base):
/// - MSI_TYPER (0x008, RO): lowest SPI of the frame in bits [25:16], number of SPIs in [9:0]
///   (Linux `V2M_MSI_TYPER_BASE_SPI` / `V2M_MSI_TYPER_NUM_SPI`).
/// - MSI_SETSPI_NS (0x040, WO): the SPI number in bits [9:0]; a number inside the frame's range
///   makes that SPI pending at the distributor (an edge: Linux configures MSI SPIs
///   edge-rising, `gicv2m_irq_gic_domain_alloc`), a number outside it has no effect (QEMU's
///   `gicv2m_write` drops it). 16- and 32-bit writes are taken, as QEMU takes them.
/// - MSI_IIDR (0xFCC, RO): the implementer/product identification Linux reads for its errata
///   (`gicv2m_init_one`: X-Gene 0x06000170 and Broadcom NS2 0x0000013F want the SPI offset in
///   the data). QEMU's frame reports ProductID 'Q' (0x51) in bits [31:20], the default here.
/// - Everything else reads 0 and ignores writes (QEMU's optional identification registers
///   read 0 too).
///
/// The frame has no state of its own: it forwards to `Distributor.setSPIPending(intid:)`, the
/// same state change GICD_SETSPI_NSR makes.
public final class GICv2mMSIFrame: MMIODevice {
    public enum Offset {
        public static let typer: UInt64 = 0x008
        public static let setspiNS: UInt64 = 0x040
        public static let iidr: UInt64 = 0xFCC
    }

    /// The frame's size: one 4 KiB page.
    public static let frameSize: UInt64 = 0x1000
    /// MSI_IIDR of QEMU's frame (`PRODUCT_ID_QEMU << 20`).
    public static let qemuIIDR: UInt32 = 0x51 << 20

    public let number: Int
    /// The first SPI INTID of the frame (MSI_TYPER[25:16]).
    public let baseSPI: UInt32
    /// How many SPIs the frame raises (MSI_TYPER[9:0]).
    public let spiCount: UInt32
    public let iidr: UInt32
    unowned(safe) let distributor: Distributor
    public internal(set) var base: PhysicalAddress?
    public var mmioName: String { "v2m\(number)" }
    /// Writes that named an SPI outside the frame's range (dropped).
    public private(set) var ignoredWrites = 0
    /// Writes that made an SPI pending.
    public private(set) var delivered = 0
    /// Trace log (nil = off).
    public var trace: TraceLog?

    init(number: Int, distributor: Distributor, baseSPI: UInt32, spiCount: UInt32, iidr: UInt32) {
        self.number = number
        self.distributor = distributor
        self.baseSPI = baseSPI & 0x3FF
        self.spiCount = spiCount & 0x3FF
        self.iidr = iidr
    }

    /// MSI_TYPER.
    public var typer: UInt32 { baseSPI << 16 | spiCount }

    /// Whether `intid` is one of the frame's SPIs.
    public func contains(intid: UInt32) -> Bool {
        intid >= baseSPI && UInt64(intid) < UInt64(baseSPI) + UInt64(spiCount)
    }

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        guard size == 4, offset & 3 == 0 else { return 0 }
        switch offset {
        case Offset.typer: return UInt64(typer)
        case Offset.iidr: return UInt64(iidr)
        default: return 0
        }
    }

    public func mmioWrite(offset: UInt64, size: Int, value: UInt64, requester: Requester) throws(BusError) {
        guard offset == Offset.setspiNS, size == 2 || size == 4 else { return }
        let intid = UInt32(truncatingIfNeeded: value & 0x3FF)
        guard contains(intid: intid) else {
            ignoredWrites &+= 1
            trace?.append(.v2m, "drop", address: base?.adding(offset)?.rawValue, value: value,
                          "MSI_SETSPI_NS: \(intid) is outside v2m\(number)'s \(spiCount) SPIs from \(baseSPI)")
            return
        }
        let changed = distributor.setSPIPending(intid: intid)
        if changed { delivered &+= 1 }
        trace?.append(.v2m, "SETSPI", address: base?.adding(offset)?.rawValue, value: value,
                      changed ? "SPI \(intid) pending" : "SPI \(intid) was already pending")
    }
}

extension GICv2mMSIFrame {
    /// Takes `other`'s base and counts (a forked world's copy).
    func copyState(of other: GICv2mMSIFrame) {
        base = other.base
        ignoredWrites = other.ignoredWrites
        delivered = other.delivered
    }
}
