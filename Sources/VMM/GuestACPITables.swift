import Bus
import Firmware

/// The guest's ACPI platform tables as QEMU 11.0 writes them for `virt` (hw/arm/virt-acpi-build.c:
/// `build_iort` with `build_iort_rmr_nodes`, `build_madt`; hw/acpi/pci.c `build_mcfg`), from the
/// same inputs as `GuestDeviceTree`: RAM, vCPUs, the layout, the vSMMU (if any), the root ports
/// and the reserved MSI window. Only IORT, MADT ("APIC") and MCFG are built: the DSDT, FADT,
/// GTDT, SPCR … are AML or carry nothing the MSI path reads. What the DSDT would say about the
/// host bridge that matters here (`_CRS` windows, `_DSM` function 5 "preserve config") is set on
/// the topology (`topology()`).
///
/// Every table carries QEMU's header identity: OEM ID "BOCHS ", OEM table ID "BXPC    ",
/// OEM revision 1, creator "BXPC" revision 1 (`acpi_table_begin` with QEMU's defaults).
public struct GuestACPITables: Hashable, Sendable {
    public var ramSize: UInt64
    public var cpuCount: Int
    public var layout: GuestMemoryMap
    /// The vSMMUs, one IORT SMMUv3 node each (`iort_smmuv3_devices` / `populate_smmuv3_legacy_dev`).
    public var smmus: [SMMU]
    /// PCIe expander host bridges (`pxb-pcie`) besides the main one: the buses each owns and
    /// whether it bypasses the vIOMMU (`bypass_iommu=on`). Only their RIDs matter to the IORT:
    /// a bypassed bridge's RIDs fall in the root complex's ITS ranges.
    public var expanderBridges: [ExpanderBridge]
    /// The range of the RMR node of each accelerated SMMUv3 (QEMU: `MSI_IOVA_BASE`,
    /// `MSI_IOVA_LENGTH` = 0x0800_0000, 1 MiB). nil: no RMR nodes (a VMM without
    /// `build_iort_rmr_nodes`, QEMU before 11.0).
    public var reservedMSIWindow: GuestMemoryMap.MemoryWindow?
    /// The vCPUs have a PMU (QEMU's default `pmu=on` for KVM): GICC performance interrupt
    /// `VIRTUAL_PMU_IRQ` (PPI 7 = GSIV 23), else 0.
    public var pmu: Bool
    /// The guest's interrupt controller: the MADT describes a GICv3 + ITS, or a GICv2 + GICv2m
    /// frame (`GuestACPITables+MADT.swift`).
    public var gic: GuestInterruptController = .gicv3

    /// A vSMMU as `build_iort` sees it (`AcpiIortSMMUv3Dev`).
    public struct SMMU: Hashable, Sendable {
        public var base: UInt64
        /// The event-queue GSIV; PRI, sync and GERROR follow at +1, +2, +3 (`irq`).
        public var firstGSIV: UInt32
        /// RID ranges that reach this SMMU (`rc_smmu_idmaps`), ascending.
        public var requesterIDs: [Range<UInt32>]
        /// `accel=on`: an RMR node is emitted for it.
        public var accelerated: Bool
        /// `ats=on` (accel only): the root complex node's ATS attribute becomes 1.
        public var ats: Bool

        public init(base: UInt64, firstGSIV: UInt32, requesterIDs: [Range<UInt32>], accelerated: Bool, ats: Bool = false) {
            self.base = base
            self.firstGSIV = firstGSIV
            self.requesterIDs = requesterIDs
            self.accelerated = accelerated
            self.ats = ats
        }
    }

    /// A `pxb-pcie` host bridge: its bus range (`bus_nr` up to its last subordinate bus).
    public struct ExpanderBridge: Hashable, Sendable {
        public var buses: ClosedRange<UInt8>
        public var bypassIOMMU: Bool
        public init(buses: ClosedRange<UInt8>, bypassIOMMU: Bool) {
            self.buses = buses
            self.bypassIOMMU = bypassIOMMU
        }
    }

    public init(ramSize: UInt64, cpuCount: Int = 1, layout: GuestMemoryMap = .virt, smmus: [SMMU] = [],
                expanderBridges: [ExpanderBridge] = [], reservedMSIWindow: GuestMemoryMap.MemoryWindow? = nil, pmu: Bool = true) {
        self.ramSize = ramSize
        self.cpuCount = max(cpuCount, 1)
        self.layout = layout
        self.smmus = smmus
        self.expanderBridges = expanderBridges
        self.reservedMSIWindow = reservedMSIWindow
        self.pmu = pmu
    }

    /// QEMU virt's SMMU interrupt base, `a15irqmap[VIRT_SMMU]` = SPI 74, as a GSIV (+ `ARM_SPI_BASE` 32).
    public static let smmuFirstGSIV: UInt32 = 74 + 32

    /// The tables of a VMM shaped like `GuestDeviceTree`'s: one vSMMU at the layout's SMMU window
    /// with QEMU virt's GSIVs when `vSMMU`, over the main root bus's buses
    /// (`pci_bus_range(pcie.0)`: bus 0 up to the highest secondary bus of a root port); plus, for each
    /// non-bypassed expander bridge, its buses when the vSMMU is the machine-wide one
    /// (`iommu=smmuv3`, `populate_smmuv3_legacy_dev`), not when it is a `-device arm-smmuv3`
    /// tied to `primary-bus=pcie.0` (`iort_smmuv3_devices`), which `accelerated` implies.
    public init(ramSize: UInt64, cpuCount: Int, layout: GuestMemoryMap, vSMMU: Bool, accelerated: Bool,
                rootPortBuses: [UInt8], expanderBridges: [ExpanderBridge] = [],
                reservedMSIWindow: GuestMemoryMap.MemoryWindow?, gic: GuestInterruptController = .gicv3) {
        var smmus: [SMMU] = []
        if vSMMU {
            let lastBus = UInt32(rootPortBuses.max() ?? 0)
            var ranges: [Range<UInt32>] = [0..<((lastBus + 1) << 8)]
            if !accelerated {
                for bridge in expanderBridges where !bridge.bypassIOMMU {
                    ranges.append((UInt32(bridge.buses.lowerBound) << 8)..<((UInt32(bridge.buses.upperBound) + 1) << 8))
                }
                ranges.sort { $0.lowerBound < $1.lowerBound }
            }
            smmus.append(SMMU(base: layout.smmu.base, firstGSIV: Self.smmuFirstGSIV, requesterIDs: ranges, accelerated: accelerated))
        }
        self.init(ramSize: ramSize, cpuCount: cpuCount, layout: layout, smmus: smmus, expanderBridges: expanderBridges,
                  reservedMSIWindow: accelerated ? reservedMSIWindow : nil)
        self.gic = gic
    }

    /// The host bridge's windows as QEMU's DSDT `_CRS` of PCI0 gives them (`acpi_dsdt_add_pci`):
    /// the 32-bit MMIO window, the I/O window at PCI address 0 and the high MMIO window, each at
    /// its CPU address (the same windows as `GuestDeviceTree`'s `ranges`). The DSDT is AML,
    /// which neither these tables nor `Topology(acpi:memory:)` carry, so the topology gets them
    /// from here, as firmware would hand them to the kernel.
    var hostBridgeWindows: [PCIRange] {
        [PCIRange(space: .io, prefetchable: false, nonRelocatable: false, aliased: false, pciAddress: 0,
                  cpuAddress: PhysicalAddress(layout.pcieIO.base), size: layout.pcieIO.size),
         PCIRange(space: .memory32, prefetchable: false, nonRelocatable: false, aliased: false, pciAddress: layout.pcieMMIO32.base,
                  cpuAddress: PhysicalAddress(layout.pcieMMIO32.base), size: layout.pcieMMIO32.size),
         PCIRange(space: .memory64, prefetchable: false, nonRelocatable: false, aliased: false, pciAddress: layout.pcieMMIO64.base,
                  cpuAddress: PhysicalAddress(layout.pcieMMIO64.base), size: layout.pcieMMIO64.size)]
    }

    /// QEMU's table header for `signature` at `revision`.
    static func header(_ signature: String, revision: UInt8) -> ACPITableHeader {
        ACPITableHeader(signature: signature, revision: revision, oemID: Array("BOCHS ".utf8), oemTableID: Array("BXPC    ".utf8),
                        oemRevision: 1, creatorID: Array("BXPC".utf8), creatorRevision: 1)
    }

    /// IORT, MADT and MCFG.
    public var tableSet: ACPITableSet {
        ACPITableSet(iort: iort, madt: madt, mcfg: mcfg)
    }

    /// The guest's platform description, read back from the tables' bytes by the same path a
    /// host's ACPI tables go through (`ACPITableSet.add`, `Topology(acpi:memory:)`), with guest
    /// RAM from the layout (ACPI leaves memory to the UEFI memory map). With an accelerated
    /// vSMMU the host bridge preserves the boot configuration: QEMU "hw/arm/virt: Set PCI
    /// preserve_config for accel SMMUv3" (`vms->pci_preserve_config`, written as the DSDT
    /// `_DSM` function 5 of the host bridge, which these tables do not include).
    public func topology() throws(GuestError) -> Topology {
        var set = ACPITableSet()
        do {
            for (name, bytes) in [("IORT", try iort.bytes()), ("APIC", try madt.bytes()), ("MCFG", try mcfg.bytes())] {
                try set.add(bytes, name: name)
            }
        } catch { throw .firmwareTables("\(error)") }
        guard let ram = layout.ramWindow(size: ramSize) else {
            throw .firmwareTables("\(Hex.format(ramSize, minDigits: 1)) of RAM does not fit layout \(layout.name)")
        }
        var topology: Topology
        do {
            topology = try Topology(acpi: set, memory: [MemoryRange(base: PhysicalAddress(ram.base), size: ram.size)])
        } catch { throw .firmwareTables("\(error)") }
        let preserve = smmus.contains(where: \.accelerated)
        for index in topology.pcieHostBridges.indices {
            topology.pcieHostBridges[index].ranges = hostBridgeWindows
            topology.pcieHostBridges[index].preserveBootConfiguration = preserve
        }
        return topology
    }
}
