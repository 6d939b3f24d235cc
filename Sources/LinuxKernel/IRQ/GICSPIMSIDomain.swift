import Bus
import Firmware

/// The MSI parents whose interrupts are SPIs: irq-gic-v2m.c (GICv2m frames) and
/// irq-gic-v3-mbi.c (a GICv3's message-based SPIs). Function names are Linux v6.14's; the
/// message each composes (address, data) is the same through v7.0, where only the way the
/// IOMMU's IOVA is applied changes (`KernelBehaviour.nativeSWMSI`: `iommu_dma_compose_msi_msg`
/// before v6.15, `msi_msg_set_addr` from v6.15).
///
/// One `Range` is a `struct v2m_data` or a `struct mbi_range`: the SPIs it hands out
/// (`spi_start`, `nr_spis`), a bitmap of those in use, and the doorbell its messages write.
/// Allocation is `bitmap_find_free_region(bm, nr_spis, get_count_order(nr_irqs))` over the
/// ranges in order (`gicv2m_irq_domain_alloc` walks `v2m_nodes`, `mbi_irq_domain_alloc`
/// `mbi_ranges`): the first naturally aligned run of 2^order free SPIs; -ENOSPC when no range
/// has one.
public final class GICSPIMSIDomain {
    public enum Kind: String, Hashable, Sendable {
        /// `gicv2m_irq_chip` "GICv2m".
        case v2m = "GICv2m"
        /// `mbi_irq_chip` "MBI".
        case mbi = "MBI"
    }

    public final class Range {
        public let kind: Kind
        /// The frame's node path (v2m) or the GIC's (MBI).
        public let path: String
        /// `gicv2m_get_msi_addr`: frame base + V2M_MSI_SETSPI_NS (0x40); or `mbi_phys_base` +
        /// GICD_SETSPI_NSR (0x40).
        public let doorbell: PhysicalAddress
        public let spiStart: UInt32
        public let spiCount: UInt32
        /// `v2m->spi_offset` when `GICV2M_NEEDS_SPI_OFFSET` is set (X-Gene: spi_start; Broadcom
        /// NS2: 32), subtracted from the data; nil otherwise.
        public let spiOffset: UInt32?
        var inUse: [Bool]

        init(kind: Kind, path: String, doorbell: PhysicalAddress, spiStart: UInt32, spiCount: UInt32, spiOffset: UInt32?) {
            self.kind = kind
            self.path = path
            self.doorbell = doorbell
            self.spiStart = spiStart
            self.spiCount = spiCount
            self.spiOffset = spiOffset
            inUse = Array(repeating: false, count: Int(min(spiCount, 1024)))
        }

        /// `bitmap_find_free_region`: the first free, 2^order-aligned run; marks it used.
        func findFreeRegion(order: Int) -> Int? {
            let size = 1 << order
            var start = 0
            while start + size <= inUse.count {
                if !inUse[start..<(start + size)].contains(true) {
                    for i in start..<(start + size) { inUse[i] = true }
                    return start
                }
                start += size
            }
            return nil
        }

        /// `bitmap_release_region`.
        func releaseRegion(offset: Int, order: Int) {
            let end = min(offset + (1 << order), inUse.count)
            guard offset >= 0, offset < end else { return }
            for i in offset..<end { inUse[i] = false }
        }

        /// SPIs in use (for reports and tests).
        public var allocated: [UInt32] { inUse.indices.filter { inUse[$0] }.map { spiStart + UInt32($0) } }

        /// `gicv2m_compose_msi_msg` / `mbi_compose_msi_msg` before the IOMMU step: address = the
        /// doorbell, data = hwirq (the SPI INTID), less `spi_offset` under the erratum.
        public func composePhysical(hwirq: UInt32) -> MSIMessage {
            MSIMessage(address: doorbell.rawValue, data: hwirq &- (spiOffset ?? 0))
        }
    }

    public let kind: Kind
    public private(set) var ranges: [Range]

    init(kind: Kind, ranges: [Range]) {
        self.kind = kind
        self.ranges = ranges
    }

    /// `get_count_order(n)`: ceil(log2 n).
    static func countOrder(_ n: Int) -> Int {
        var order = 0
        while (1 << order) < n && order < 20 { order += 1 }
        return order
    }

    /// The `.alloc` step: the range and first hwirq of `count` consecutive SPIs.
    func allocate(count: Int) throws(Errno) -> (range: Range, hwirq: UInt32) {
        let order = Self.countOrder(max(count, 1))
        for range in ranges {
            if let offset = range.findFreeRegion(order: order) {
                return (range, range.spiStart + UInt32(offset))
            }
        }
        throw .ENOSPC
    }

    /// The `.free` step (`gicv2m_unalloc_msi` / `mbi_free_msi`).
    func free(range: Range, hwirq: UInt32, count: Int) {
        guard hwirq >= range.spiStart else { return }
        range.releaseRegion(offset: Int(hwirq - range.spiStart), order: Self.countOrder(max(count, 1)))
    }

    /// The range whose SPIs include `hwirq`.
    public func range(containing hwirq: UInt32) -> Range? {
        ranges.first { hwirq >= $0.spiStart && UInt64(hwirq) < UInt64($0.spiStart) + UInt64($0.spiCount) }
    }

    // MARK: Probe

    /// `V2M_MIN_SPI` / `V2M_MAX_SPI`.
    static let v2mMinSPI: UInt32 = 32
    static let v2mMaxSPI: UInt32 = 1019
    /// MSI_IIDR values `gicv2m_init_one` recognises.
    public static let xgeneIIDR: UInt32 = 0x0600_0170
    public static let broadcomNS2IIDR: UInt32 = 0x0000_013F

    /// `gicv2m_init_one` for one frame: MSI_TYPER unless the description overrides both base
    /// and count (`arm,msi-base-spi` + `arm,msi-num-spis`, or the MADT frame's SPI Count/Base
    /// Select), `is_msi_spi_valid` (base ≥ 32, count ≠ 0, base + count ≤ 1019, else -EINVAL),
    /// then MSI_IIDR for the X-Gene / NS2 erratum.
    static func v2mRange(path: String, base: PhysicalAddress, overrideBase: UInt32?, overrideCount: UInt32?,
                         mmio: MMIOAccess) throws(Errno) -> Range {
        var start = overrideBase ?? 0
        var count = overrideCount ?? 0
        if start == 0 || count == 0 {
            guard let typerAddress = base.adding(0x008) else { throw .EINVAL }
            let typer = try mmio.read32(typerAddress)
            start = (typer >> 16) & 0x3FF
            count = typer & 0x3FF
        }
        guard start >= v2mMinSPI, count != 0, UInt64(start) + UInt64(count) <= UInt64(v2mMaxSPI) else { throw .EINVAL }
        guard let iidrAddress = base.adding(0xFCC), let doorbell = base.adding(0x040) else { throw .EINVAL }
        let iidr = try mmio.read32(iidrAddress)
        let offset: UInt32? = iidr == xgeneIIDR ? start : iidr == broadcomNS2IIDR ? 32 : nil
        return Range(kind: .v2m, path: path, doorbell: doorbell, spiStart: start, spiCount: count, spiOffset: offset)
    }
}

extension IRQSubsystem {
    /// `gicv2m_of_init` / `gicv2m_acpi_init`: every enabled `arm,gic-v2m-frame` with
    /// `msi-controller` (the ACPI reader marks every MADT GIC MSI Frame so), in description order. A frame that
    /// fails `gicv2m_init_one` stops the walk and tears every frame down (`gicv2m_teardown`):
    /// no v2m domain at all. Nil when there is no frame.
    func probeV2m(_ gic: GICDescription) -> GICSPIMSIDomain? {
        var ranges: [GICSPIMSIDomain.Range] = []
        for frame in gic.v2mFrames where frame.enabled && frame.isMSIController {
            do {
                let overrides = frame.baseSPI != nil && frame.spiCount != nil
                ranges.append(try GICSPIMSIDomain.v2mRange(path: frame.path, base: frame.region.base,
                                                           overrideBase: overrides ? frame.baseSPI : nil,
                                                           overrideCount: overrides ? frame.spiCount : nil, mmio: kernel.mmio))
            } catch {
                kernel.log.log("GICv2m", "\(frame.path): gicv2m_init_one failed (\(error)); no GICv2m domain")
                return nil
            }
        }
        guard !ranges.isEmpty else { return nil }
        for r in ranges {
            kernel.log.log("GICv2m", "range[mem \(Hex.format(r.doorbell.rawValue &- 0x40))], SPI[\(r.spiStart):\(UInt64(r.spiStart) + UInt64(r.spiCount) &- 1)]")
        }
        return GICSPIMSIDomain(kind: .v2m, ranges: ranges)
    }

    /// `mbi_init`, which `gic_init_bases` calls when GICD_TYPER.MBIS is set: the GIC node must be
    /// an `msi-controller` (else no domain, no error); `mbi-ranges` must be a non-empty, even
    /// list of cells (-EINVAL); the doorbell base is `mbi-alias` when present (not read by this
    /// model's Topology) else GICD.
    func probeMBI(_ gic: GICDescription, typer: UInt32) -> GICSPIMSIDomain? {
        guard typer & (1 << 16) != 0, gic.isMSIController else { return nil }
        let cells = gic.mbiRanges
        guard !cells.isEmpty, cells.count % 2 == 0, let doorbell = gic.distributor.base.adding(0x0040) else {
            kernel.log.log("GICv3", "Failed to initialize MBIs (mbi-ranges has \(cells.count) cells)")
            return nil
        }
        let ranges = stride(from: 0, to: cells.count, by: 2).map {
            GICSPIMSIDomain.Range(kind: .mbi, path: gic.path, doorbell: doorbell, spiStart: cells[$0], spiCount: cells[$0 + 1], spiOffset: nil)
        }
        for r in ranges { kernel.log.log("GICv3", "MBI range [\(r.spiStart):\(UInt64(r.spiStart) + UInt64(r.spiCount) &- 1)]") }
        kernel.log.log("GICv3", "Using MBI frame \(Hex.format(gic.distributor.base.rawValue))")
        return GICSPIMSIDomain(kind: .mbi, ranges: ranges)
    }
}

/// A forked world's SPI MSI domain keeps which SPIs are in use, so the fork allocates the SPIs
/// the original would next.
extension GICSPIMSIDomain: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GICSPIMSIDomain {
        GICSPIMSIDomain(kind: kind, ranges: map.clone(ranges))
    }
}

extension GICSPIMSIDomain.Range: WorldCloneable {
    public func clone(into map: inout CloneMap) -> GICSPIMSIDomain.Range {
        let copy = GICSPIMSIDomain.Range(kind: kind, path: path, doorbell: doorbell, spiStart: spiStart,
                                         spiCount: spiCount, spiOffset: spiOffset)
        copy.inUse = inUse
        return copy
    }
}
