import Bus

/// A range of the physical address space: RAM, or a device's register frame.
public struct MemoryRange: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var base: PhysicalAddress
    public var size: UInt64

    public init(base: PhysicalAddress, size: UInt64) {
        self.base = base
        self.size = size
    }

    /// One past the last byte, or nil when the range passes 2^64.
    public var end: PhysicalAddress? { base.adding(size) }

    public func contains(_ address: PhysicalAddress) -> Bool {
        address >= base && address.rawValue - base.rawValue < size
    }

    public static func < (lhs: MemoryRange, rhs: MemoryRange) -> Bool {
        (lhs.base, lhs.size) < (rhs.base, rhs.size)
    }

    public var description: String { "\(base) size \(Hex.format(size, minDigits: 1))" }
}

/// A CPU node under `/cpus` (DT spec §3.7; Arm `cpus.yaml`: `reg` holds the MPIDR_EL1 affinity bits).
public struct CPUDescription: Hashable, Sendable {
    public var path: String
    public var mpidr: UInt64
    public var compatible: [String]
    public var enableMethod: String?
}

/// A `/reserved-memory` child (DT binding `reserved-memory.yaml`). Dynamically placed regions
/// (`size`/`alloc-ranges` without `reg`) have no ranges.
public struct ReservedMemoryRegion: Hashable, Sendable {
    public var path: String
    public var ranges: [MemoryRange]
    public var compatible: [String]
    /// `no-map`: the OS must not map it at all.
    public var noMap: Bool
    /// The node's `phandle`: what a device's `memory-region` names.
    public var phandle: UInt32? = nil
    /// `iommu-addresses` (binding `reserved-memory.yaml`, Linux v6.3+): the IOVA range each
    /// listed device must see this region at, in property order.
    public var iommuAddresses: [ReservedIOVARange] = []
}

/// What a phandle in a map or a reference list points at, in the Topology's own terms.
public enum DeviceTreeTarget: Hashable, Sendable, CustomStringConvertible {
    /// `Topology.smmus[index]`.
    case smmuV3(Int)
    /// `Topology.otherIOMMUs[index]`.
    case iommu(Int)
    /// `Topology.gic.its[index]`.
    case its(Int)
    /// `Topology.gic.v2mFrames[index]`.
    case gicV2mFrame(Int)
    /// The GIC node itself (a GICv3 acting as an MSI controller through MBIs).
    case gic
    /// A node that exists but is none of the above (a vendor MSI controller, say).
    case node(path: String)
    /// No node carries this phandle: kept as data, a DT bug the user should see.
    case unresolvedPhandle(UInt32)

    public var description: String {
        switch self {
        case .smmuV3(let i): return "smmu[\(i)]"
        case .iommu(let i): return "iommu[\(i)]"
        case .its(let i): return "its[\(i)]"
        case .gicV2mFrame(let i): return "v2m[\(i)]"
        case .gic: return "gic"
        case .node(let path): return path
        case .unresolvedPhandle(let p): return "unresolved phandle \(Hex.format(UInt64(p), minDigits: 1))"
        }
    }
}

/// One element of a phandle list such as `msi-parent` or `iommus`: the phandle, what it
/// resolves to, and the specifier cells that follow it.
public struct PhandleReference: Hashable, Sendable {
    public var phandle: UInt32
    public var target: DeviceTreeTarget
    public var arguments: [UInt32]
}

/// A GICv3 ITS (`arm,gic-v3-its`, binding `arm,gic-v3.yaml` "msi-controller" children).
public struct ITSDescription: Hashable, Sendable {
    public var path: String
    /// The ITS register frames: ITS_base (control) then the translation frame at +64 KiB
    /// (GITS_TRANSLATER at +0x1_0040), GICv3 §12.19, docs/hardware.md §ITS registers.
    public var region: MemoryRange
    public var phandle: UInt32?
    public var isMSIController: Bool
    /// `#msi-cells` (the binding requires 1: the DeviceID); nil when the node omits it, as
    /// older NXP trees do.
    public var msiCells: UInt32?
    public var enabled: Bool
    /// The MADT GIC ITS structure's "GIC ITS ID" (ACPI 6.5 §5.2.12.18), which IORT ITS group
    /// nodes name (DEN 0049E.f §3.1.1.3) and Linux registers with `iort_register_domain_token`;
    /// nil on the device-tree path.
    public var translationID: UInt32? = nil
    /// The node's `socionext,synquacer-pre-its` window (SynQuacer, TI K3), when it has one: the
    /// SoC's own doorbell whose address, not the requester, names the DeviceID.
    public var preITSWindow: PreITSWindow? = nil

    /// The doorbell a device writes its EventID to: `GITS_TRANSLATER`, ITS base + 0x1_0040.
    public var translaterAddress: PhysicalAddress? { region.base.adding(0x1_0040) }
}

/// A GICv2m MSI frame (`arm,gic-v2m-frame`, binding `arm,gic-v2m.txt`): SPIs raised by writes
/// to MSI_SETSPI_NS at frame + 0x40.
public struct GICv2mFrame: Hashable, Sendable {
    public var path: String
    public var region: MemoryRange
    public var phandle: UInt32?
    public var isMSIController: Bool
    /// `arm,msi-base-spi` / `arm,msi-num-spis`: overrides of MSI_TYPER, when the DT gives them.
    public var baseSPI: UInt32?
    public var spiCount: UInt32?
    public var enabled: Bool
}

/// The interrupt controller.
public struct GICDescription: Hashable, Sendable {
    /// The binding family. `arm,gic-v3` describes GICv3 and GICv4 alike: the DT has no GICv4
    /// compatible (binding `arm,gic-v3.yaml`); v4 support is found at run time in GICD_TYPER2 /
    /// GITS_TYPER.VLPIS, so the Topology cannot tell them apart and does not pretend to.
    public enum Architecture: String, Hashable, Sendable {
        case v2 = "GICv2"
        case v3 = "GICv3/v4"
    }

    public var path: String
    public var compatible: [String]
    public var phandle: UInt32?
    public var architecture: Architecture
    /// GICD.
    public var distributor: MemoryRange
    /// GICR regions, `#redistributor-regions` of them (default 1), GICv3 only.
    public var redistributorRegions: [MemoryRange]
    /// `redistributor-stride`, when the DT overrides the architected 128 KiB (v3) / 256 KiB (v4).
    public var redistributorStride: UInt64?
    /// The regions after GICD (v2) or after the GICR regions (v3): GICC, GICH, GICV when present.
    public var cpuInterfaceRegions: [MemoryRange]
    /// The virtual maintenance interrupt (`interrupts` on the GIC node), present when the
    /// platform has the virtualization extensions (QEMU `virtualization=on`).
    public var maintenanceInterrupt: [UInt32]?
    /// `msi-controller` on the GIC node itself: a GICv3 that turns writes to GICD_SETSPI into
    /// SPIs (MBI, `mbi-ranges`).
    public var isMSIController: Bool
    public var mbiRanges: [UInt32]
    public var its: [ITSDescription]
    public var v2mFrames: [GICv2mFrame]
}

/// An SMMUv3 (`arm,smmu-v3`, binding `arm,smmu-v3.yaml`).
public struct SMMUv3Description: Hashable, Sendable {
    public var path: String
    public var compatible: [String]
    /// The 128 KiB of register pages 0 and 1 (SMMUv3 §6.2, docs/hardware.md §SMMUv3 registers).
    public var region: MemoryRange
    /// `#iommu-cells`: 1 (the StreamID) per the binding.
    public var iommuCells: UInt32?
    public var phandle: UInt32?
    public var dmaCoherent: Bool
    /// `interrupt-names` in order: some of "eventq", "priq", "cmdq-sync", "gerror", "combined".
    public var interruptNames: [String]
    /// `msi-parent`: the SMMU's own interrupts as MSIs to an ITS.
    public var msiParent: [PhandleReference]
    public var enabled: Bool
    /// The IORT SMMUv3 node this SMMU was read from (an index into `Topology.iort.nodes`);
    /// nil on the device-tree path.
    public var iortNode: Int? = nil
}

/// An IOMMU that is not an SMMUv3 (Arm MMU-500/SMMUv2, vendor IOMMUs), recorded by compatible
/// so maps that point at it resolve to something named.
public struct IOMMUDescription: Hashable, Sendable {
    public var path: String
    public var compatible: [String]
    public var regions: [MemoryRange]
    public var iommuCells: UInt32?
    public var phandle: UInt32?
    public var enabled: Bool
    /// `stream-match-mask` (binding `arm,smmu.yaml`): SMR mask bits `arm_smmu_of_xlate` ORs into
    /// every one-cell specifier of an SMMUv1/v2; nil when absent.
    public var streamMatchMask: UInt32? = nil
    /// `#global-interrupts` (binding `arm,smmu.yaml`): how many of `interrupts` are global fault
    /// interrupts; the rest are context (and PMU) interrupts. Nil when absent.
    public var globalInterrupts: UInt32? = nil
    /// Entries of `interrupts`, three cells each (the GIC binding's `#interrupt-cells`, which is
    /// what every Arm SMMU node's interrupt parent has); for an IORT node, the global (one:
    /// Linux ignores SMMU_NSgCfgIrpt) plus context interrupts. Nil when absent.
    public var interruptCount: Int? = nil

    /// The compatibles Linux's arm-smmu driver binds as SMMU architecture version 2
    /// (`arm_smmu_of_match` entries whose match data has ARM_SMMU_V2: `smmu_generic_v2`,
    /// `arm_mmu500`, `cavium_smmuv2`, `qcom_smmuv2`; drivers/iommu/arm/arm-smmu/arm-smmu.c,
    /// v6.14-v7.0).
    public static let armSMMUv2Compatibles = ["arm,smmu-v2", "arm,mmu-500", "cavium,smmu-v2", "nvidia,smmu-500", "qcom,smmu-v2"]
    /// The compatibles it binds as version 1: "arm,smmu-v1" (`smmu_generic_v1`) and "arm,mmu-400"
    /// (`arm_mmu400`) as ARM_SMMU_V1, "arm,mmu-401" (`arm_mmu401`) as ARM_SMMU_V1_64K.
    public static let armSMMUv1Compatibles = ["arm,smmu-v1", "arm,mmu-400", "arm,mmu-401"]

    /// The `struct arm_smmu_match_data` version Linux binds this node with: the first of the
    /// node's compatibles that `arm_smmu_of_match` lists (`of_match_device` prefers the node's
    /// earlier, more specific strings: Juno's "arm,mmu-401", "arm,smmu-v1" is ARM_SMMU_V1_64K);
    /// nil when it lists none. An IORT SMMUv1/v2 node (no compatible) carries its model instead.
    public var armSMMUVersion: ArmSMMUVersion? {
        if let iortModel { return ArmSMMUVersion(iortModel: iortModel) }
        for name in compatible {
            if Self.armSMMUv2Compatibles.contains(name) { return .v2 }
            if name == "arm,mmu-401" { return .v1With64KGranule }
            if Self.armSMMUv1Compatibles.contains(name) { return .v1 }
        }
        return nil
    }

    /// Whether this is an Arm SMMU that Linux's arm-smmu drives as version 2 (MMU-500 and
    /// generic SMMUv2).
    public var isArmSMMUv2: Bool { armSMMUVersion == .v2 }
    /// Whether Linux's arm-smmu drives it at all (version 1 or 2), which the SMMUv2 model (in its
    /// version 1 or 2 configuration) and the arm-smmu driver model take.
    public var isArmSMMU: Bool { armSMMUVersion != nil }
    /// The IORT SMMUv1/v2 node's Model field (DEN 0049 Table 14) when read from an IORT.
    public var iortModel: UInt32? = nil

    /// DEN 0049 Table 14's names for the SMMUv1/v2 Model values (ACPICA ACPI_IORT_SMMU_*).
    public static func iortModelName(_ model: UInt32) -> String {
        switch model {
        case 0: "generic SMMUv1"
        case 1: "generic SMMUv2"
        case 2: "Arm CoreLink MMU-400"
        case 3: "Arm CoreLink MMU-500"
        case 4: "Arm CoreLink MMU-401"
        case 5: "Cavium ThunderX SMMUv2"
        default: "unknown model"
        }
    }
    /// The IORT node this IOMMU was read from (an index into `Topology.iort.nodes`); nil on the
    /// device-tree path.
    public var iortNode: Int? = nil
}

/// A `ranges` entry of a PCI host bridge (IEEE 1275 PCI bus binding: phys.hi is
/// `npt000ss bbbbbbbb dddddfff rrrrrrrr`).
public struct PCIRange: Hashable, Sendable {
    public enum Space: UInt32, Hashable, Sendable {
        case configuration = 0, io = 1, memory32 = 2, memory64 = 3
    }
    public var space: Space
    /// `p`, bit 30.
    public var prefetchable: Bool
    /// `n`, bit 31: the address is not relocatable.
    public var nonRelocatable: Bool
    /// `t`, bit 29: aliased (I/O) or below 1 MiB (memory).
    public var aliased: Bool
    public var pciAddress: UInt64
    public var cpuAddress: PhysicalAddress
    public var size: UInt64

    public init(space: Space, prefetchable: Bool, nonRelocatable: Bool, aliased: Bool, pciAddress: UInt64,
                cpuAddress: PhysicalAddress, size: UInt64) {
        self.space = space
        self.prefetchable = prefetchable
        self.nonRelocatable = nonRelocatable
        self.aliased = aliased
        self.pciAddress = pciAddress
        self.cpuAddress = cpuAddress
        self.size = size
    }
}

/// `enum arm_smmu_arch_version` (drivers/iommu/arm/arm-smmu/arm-smmu.h): ARM_SMMU_V1,
/// ARM_SMMU_V1_64K (an SMMUv1 with the 64KB Translation Granule Supplement: `arm_mmu401`, IORT
/// model ACPI_IORT_SMMU_CORELINK_MMU401) and ARM_SMMU_V2.
public enum ArmSMMUVersion: Hashable, Sendable {
    case v1, v1With64KGranule, v2

    /// `arm_smmu_device_acpi_probe` → `acpi_smmu_get_data` (arm-smmu.c, v6.14-v7.0): model 0
    /// (SMMUv1) and 2 (CoreLink MMU-400) are ARM_SMMU_V1, 4 (MMU-401) ARM_SMMU_V1_64K, 1 (SMMUv2),
    /// 3 (MMU-500) and 5 (Cavium ThunderX) ARM_SMMU_V2; any other model fails the probe
    /// (-ENODEV), nil here.
    public init?(iortModel: UInt32) {
        switch iortModel {
        case 0, 2: self = .v1
        case 4: self = .v1With64KGranule
        case 1, 3, 5: self = .v2
        default: return nil
        }
    }

    public var isVersion1: Bool { self != .v2 }
}

/// A PCIe host bridge (`device_type = "pci"` whose parent is not itself a PCI bus).
public struct PCIeHostBridge: Hashable, Sendable {
    public var path: String
    public var compatible: [String]
    public var enabled: Bool
    public var regions: [MemoryRange]
    public var regionNames: [String]
    /// The ECAM window: reg-names "config"/"ecam"/"cfg", else `reg[0]` for an ECAM compatible
    /// (`pci-host-ecam-generic`, `*-ecam`), else nil.
    public var configSpace: MemoryRange?
    /// How configuration space is reached: through `configSpace`, or the controller's own
    /// layout (`HostBridgeKind`).
    public var kind: HostBridgeKind = .generic
    /// `bus-range`, 0…255 when absent (binding `pci-bus-common.yaml`).
    public var busRange: ClosedRange<UInt32>
    public var busRangeIsDefault: Bool
    /// `linux,pci-domain`.
    public var domain: UInt32?
    public var ranges: [PCIRange]
    public var iommuMap: IDMap?
    public var msiMap: IDMap?
    public var msiParent: [PhandleReference]
    public var iommus: [PhandleReference]
    public var dmaCoherent: Bool
    /// Child nodes describing functions on the root bus (IEEE 1275 PCI binding §4.1.1:
    /// `reg` phys.hi carries the function's bus/device/function), with those under a
    /// `multifunc-device` child, in blob order. Linux gives a function the node whose devfn
    /// matches (`pci_set_of_node` → `of_pci_find_child_device`).
    public var functionNodes: [PCIFunctionNode] = []
    /// The IORT root complex node this bridge was read from (an index into
    /// `Topology.iort.nodes`); nil on the device-tree path.
    public var iortNode: Int? = nil
    /// `pci_host_bridge.preserve_config`: firmware asked the OS to keep its PCI resource
    /// assignment (ACPI `_DSM` function 5 of the PCI firmware spec, "Ignore PCI Boot
    /// Configuration" returning 0). Linux `iort_rmr_has_dev` gives a PCI device the IORT RMRs of
    /// its StreamIDs only when it is set. The DSDT is not read, so this is false unless the VMM
    /// that writes the tables sets it (QEMU sets it for an accelerated SMMUv3: "hw/arm/virt: Set
    /// PCI preserve_config for accel SMMUv3").
    public var preserveBootConfiguration: Bool = false
    /// `interrupt-map` / `interrupt-map-mask`: where the INTx pins of root-bus slots go
    /// (`of_irq_parse_and_map_pci`); nil when absent (ACPI's _PRT is not read).
    public var interruptMap: InterruptMap? = nil

    /// Whether software can reach the bridge's configuration space: an ECAM-style window, or a
    /// controller layout the model knows (`kind`).
    public var hasConfigurationAccess: Bool {
        switch kind {
        case .generic: configSpace != nil
        case .rockchipRK3399: true
        }
    }
}
