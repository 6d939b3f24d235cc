import Bus

/// The GICv3 distributor (GICD), the registers Linux reads before it touches LPIs:
/// GICD_CTLR (0x0000; RWP[31] reads 0 because writes complete at once), GICD_TYPER (0x0004),
/// GICD_IIDR (0x0008), GICD_TYPER2 (0x000C, 0) and GICD_PIDR2 (0xFFE8). The rest of the 64 KiB
/// frame is read/write storage; SPIs are not signalled by this model.
public final class Distributor: MMIODevice {
    public var mmioName: String { "gicd" }
    public let configuration: GICConfiguration
    /// GICD_CTLR as written (EnableGrp1NS[1], ARE_NS[4], …).
    public private(set) var ctlr: UInt32 = 0
    var storage = ContiguousArray<UInt32>(repeating: 0, count: 0x1_0000 / 4)

    init(configuration: GICConfiguration) { self.configuration = configuration }

    public enum Offset {
        public static let ctlr: UInt64 = 0x0000
        public static let typer: UInt64 = 0x0004
        public static let iidr: UInt64 = 0x0008
        public static let typer2: UInt64 = 0x000C
        public static let pidr2: UInt64 = 0xFFE8
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

    public func mmioRead(offset: UInt64, size: Int, requester: Requester) throws(BusError) -> UInt64 {
        guard size == 4 || size == 8, offset & UInt64(size - 1) == 0 else { return 0 }
        func word(_ o: UInt64) -> UInt64 {
            switch o {
            case Offset.ctlr: UInt64(ctlr)
            case Offset.typer: UInt64(typer)
            case Offset.iidr: UInt64(configuration.iidr)
            case Offset.typer2: 0
            case Offset.pidr2: UInt64(GICv3.pidr2(version: configuration.version))
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
            default: if Int(o / 4) < storage.count { storage[Int(o / 4)] = v }
            }
        }
        write(offset, UInt32(truncatingIfNeeded: value))
        if size == 8 { write(offset + 4, UInt32(truncatingIfNeeded: value >> 32)) }
    }
}
