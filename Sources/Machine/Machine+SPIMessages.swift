import Bus
import Firmware
import GIC
import PCI

/// The SPI-based MSI controllers a description can have besides the GICv3 ITS: GICv2m frames
/// (`arm,gic-v2m-frame`, on a GICv2 or a GICv3) and a GICv3's own MBIs (`msi-controller` +
/// `mbi-ranges` on the GIC node).
extension Machine {
    /// MSI_TYPER of a v2m frame the description does not override. QEMU `virt`'s one frame
    /// (hw/arm/virt.c: `base_memmap[VIRT_GIC_V2M]` = 0x08020000, `a15irqmap[VIRT_GIC_V2M]` = 48,
    /// i.e. INTID 80, and `NUM_GICV2M_SPIS` = 64) is known. For any other frame the register's
    /// value is not in the description, so the model assumes 64 SPIs per frame in consecutive
    /// blocks from INTID 80 (`assumed` says so, and reports print it).
    public struct V2mSPIRange: Hashable, Sendable {
        public var baseSPI: UInt32
        public var spiCount: UInt32
        /// Where the values come from: "arm,msi-base-spi/arm,msi-num-spis", "QEMU virt" or
        /// "assumed".
        public var source: String
    }

    static let qemuVirtV2mBase = PhysicalAddress(0x0802_0000)

    /// The SPIs frame `index` of `frames` raises: the `arm,msi-base-spi` / `arm,msi-num-spis`
    /// pair when the node has both (Linux `gicv2m_of_init` takes the override only then; the
    /// MADT's GIC MSI Frame "SPI Count/Base Select" flag likewise), QEMU `virt`'s values for its
    /// frame, else the assumed block.
    static func v2mSPIRange(_ frames: [Firmware.GICv2mFrame], index: Int, topology: Topology) -> V2mSPIRange {
        let frame = frames[index]
        if let base = frame.baseSPI, let count = frame.spiCount, base != 0, count != 0 {
            return V2mSPIRange(baseSPI: base, spiCount: count, source: "arm,msi-base-spi/arm,msi-num-spis")
        }
        if frame.region.base == qemuVirtV2mBase, topology.compatible.contains("linux,dummy-virt") {
            return V2mSPIRange(baseSPI: 80, spiCount: 64, source: "QEMU virt")
        }
        let (base, overflow) = UInt32(80).addingReportingOverflow(UInt32(clamping: index).multipliedReportingOverflow(by: 64).partialValue)
        return V2mSPIRange(baseSPI: overflow ? 80 : min(base, 1019 - 64), spiCount: 64, source: "assumed")
    }

    /// The SPI count a GIC needs so that every v2m frame's and MBI range's SPIs are implemented
    /// (GICD_TYPER.ITLinesNumber), at least `minimum`, at most 988 (INTID 1019).
    static func spiCount(covering ranges: [(base: UInt32, count: UInt32)], minimum: Int) -> Int {
        var top = minimum + 32
        for range in ranges {
            top = max(top, Int(range.base) + Int(range.count))
        }
        return min((top - 32 + 31) / 32 * 32, 988)
    }

    /// The MBI ranges of `gic`'s `mbi-ranges` (pairs of first SPI INTID and count, binding
    /// `arm,gic-v3.yaml`), when the GIC node is an `msi-controller`. Linux's `mbi_init` rejects
    /// an odd or empty list; so does this (nil).
    public static func mbiRanges(_ gic: GICDescription) -> [(base: UInt32, count: UInt32)]? {
        guard gic.architecture == .v3, gic.isMSIController, !gic.mbiRanges.isEmpty, gic.mbiRanges.count % 2 == 0 else { return nil }
        return stride(from: 0, to: gic.mbiRanges.count, by: 2).map { (gic.mbiRanges[$0], gic.mbiRanges[$0 + 1]) }
    }

    /// Builds a GICv2 (`GICConfiguration.version` 2): the distributor at GICD, the CPU interface
    /// at the first region after it (GICC, binding `arm,gic.yaml`), and its enabled v2m frames.
    static func buildGICv2(_ description: GICDescription, topology: Topology, options: MachineOptions,
                           bus: SystemBus) throws(MachineError) -> GICv3 {
        var configuration = options.gic
        configuration.version = 2
        configuration.cpuCount = max(1, topology.cpus.count)
        let frames = description.v2mFrames.filter(\.enabled)
        let ranges = frames.indices.map { v2mSPIRange(frames, index: $0, topology: topology) }
        configuration.spiCount = spiCount(covering: ranges.map { ($0.baseSPI, $0.spiCount) }, minimum: configuration.spiCount)
        guard let gicc = description.cpuInterfaceRegions.first else {
            throw .unsupported("\(description.path) has no CPU interface (GICC) region after the distributor")
        }
        let controller = GICv3(configuration: configuration)
        do {
            try controller.attachDistributor(to: bus, base: description.distributor.base)
            try controller.addGICv2CPUInterface(base: gicc.base)
            try addV2mFrames(frames, ranges: ranges, to: controller)
        } catch { throw .bus(error) }
        return controller
    }

    static func addV2mFrames(_ frames: [Firmware.GICv2mFrame], ranges: [V2mSPIRange], to gic: GICv3) throws(BusError) {
        for (frame, range) in zip(frames, ranges) {
            try gic.addV2mFrame(base: frame.region.base, baseSPI: range.baseSPI, spiCount: range.spiCount)
        }
    }

    /// The v2m frame of `gic` built for description frame `index` (disabled frames are not built).
    public func v2mFrame(descriptionIndex index: Int) -> GICv2mMSIFrame? {
        guard let frames = topology.gic?.v2mFrames, frames.indices.contains(index), frames[index].enabled else { return nil }
        let built = frames[..<index].filter(\.enabled).count
        guard let gic, gic.v2mFrames.indices.contains(built) else { return nil }
        return gic.v2mFrames[built]
    }
}

/// Where a requester's MSIs go on a machine.
public enum MSIController {
    /// `Machine.its[index]`.
    case its(Int)
    /// A GICv2m frame: the message is a write of the SPI number to MSI_SETSPI_NS.
    case v2m(GICv2mMSIFrame)
    /// The GICv3 distributor's MBIs: a write of the SPI number to GICD_SETSPI_NSR; the ranges
    /// are `mbi-ranges`' (first SPI, count) pairs.
    case mbi(distributor: PhysicalAddress, ranges: [SPIRange])

    public struct SPIRange: Hashable, Sendable {
        public var base: UInt32
        public var count: UInt32
    }
}

extension Machine {
    /// The MSI controller of requester `rid` on root complex `rc`: the bridge's `msi-map` entry
    /// (else its `msi-parent`) when it names an ITS, a built v2m frame or an MBI-capable GIC;
    /// with neither, the first ITS, else the first v2m frame (what ACPI's
    /// `gicv2m_get_fwnode` hands every device), else the MBIs. Nil when none applies.
    public func msiController(rootComplex rc: Int, requesterID rid: RequesterID) -> MSIController? {
        guard hostBridgeIndices.indices.contains(rc) else { return nil }
        let bridge = topology.pcieHostBridges[hostBridgeIndices[rc]]
        var target: DeviceTreeTarget?
        if let map = bridge.msiMap {
            guard case .mapped(_, let mapped, _) = map.lookup(UInt32(rid.rawValue)) else { return nil }
            target = mapped
        } else {
            target = bridge.msiParent.first?.target
        }
        let mbi: MSIController? = {
            guard let gic, gic.configuration.messageBasedSPIs, let description = topology.gic,
                  let ranges = Machine.mbiRanges(description), let base = gic.distributorBase else { return nil }
            // `mbi-alias` (a second distributor page for MSIs) is not read by the Topology; the
            // doorbell is GICD itself, as `mbi_init` uses without it.
            return .mbi(distributor: base, ranges: ranges.map { MSIController.SPIRange(base: $0.base, count: $0.count) })
        }()
        switch target {
        case .its?:
            return itsIndex(bridge: bridge, requesterID: rid).map { .its($0) }
        case .gicV2mFrame(let i)?:
            return v2mFrame(descriptionIndex: i).map { .v2m($0) }
        case .gic?:
            return mbi
        case nil:
            if !its.isEmpty { return .its(0) }
            if let frame = gic?.v2mFrames.first { return .v2m(frame) }
            return mbi
        default:
            return nil
        }
    }
}

extension Machine {
    /// `map` without the entries whose IOMMU is `status = "disabled"`: Linux's `of_iommu_xlate`
    /// gives up on a node that is not available (`of_device_is_available`), so such requesters
    /// have no IOMMU in Linux's view. The model sends their DMA, MSIs included, straight to
    /// the bus, as if firmware left the SMMU passing traffic through (the model's choice: what a
    /// disabled SMMU does is up to firmware, and Linux never programs it). Nil when no entry
    /// remains.
    static func enabledTargets(_ map: IDMap?, topology: Topology) -> IDMap? {
        guard var map else { return nil }
        map.entries.removeAll { entry in
            switch entry.target {
            case .smmuV3(let i): return topology.smmus.indices.contains(i) && !topology.smmus[i].enabled
            case .iommu(let i): return topology.otherIOMMUs.indices.contains(i) && !topology.otherIOMMUs[i].enabled
            default: return false
            }
        }
        return map.entries.isEmpty ? nil : map
    }
}
