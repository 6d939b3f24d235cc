import Bus
import Firmware
import LinuxKernel
import PCI

/// The guest's device tree, as QEMU's `virt` board builds it (hw/arm/virt.c: `create_fdt`,
/// `fdt_add_cpu_nodes`, `create_gic` / `create_its`, `create_smmu`, `create_pcie`) for the nodes a
/// VM with one passthrough PCIe function needs: memory, CPUs, the GICv3 with its ITS, optionally
/// an SMMUv3, and the ECAM host bridge.
///
/// Phandles are QEMU's order of allocation for this machine (cpu 0x8001…, then the GIC, the ITS,
/// the SMMU), so the guest tree reads like a `-machine dumpdtb` of `virt,gic-version=3,
/// iommu=smmuv3`. The host bridge's `iommu-map` (only with a vSMMU) and `msi-map` are identity
/// over RIDs 0…0xFFFF (`create_pcie`: `<0x0 phandle 0x0 0x10000>`), so the guest's StreamID and
/// DeviceID of a function equal its guest RID.
///
/// It is QEMU's tree and nothing more: QEMU writes no IORT RMR equivalent into a device tree
/// (an accelerated SMMUv3 needs ACPI: `create_smmuv3_dev_dtb` refuses "SMMUv3 with accel=on not
/// supported for DT"), so a guest booted from this tree has no reserved MSI window; the RMR
/// travels in the IORT (`GuestACPITables`).
public struct GuestDeviceTree: Hashable, Sendable {
    public var ramSize: UInt64
    public var cpuCount: Int
    /// An SMMUv3 node at the layout's SMMU window and the host bridge's `iommu-map` to it.
    public var vSMMU: Bool
    /// Where everything is (`GuestMemoryMap.virt` unless the VMM picked another map).
    public var layout: GuestMemoryMap
    /// The interrupt controller: a GICv3 with its ITS, or (`gic-version=2`) a GICv2 with its
    /// GICv2m frame (`fdt_add_gic_node`'s "arm,cortex-a15-gic" — QEMU's name for a GICv2 —
    /// with `reg` = distributor and CPU interface at their `base_memmap` sizes, and
    /// `fdt_add_v2m_gic_node`'s child "v2m@…": compatible "arm,gic-v2m-frame", `msi-controller`,
    /// its `reg`, and the MSI phandle the host bridge's `msi-map` names; no `arm,msi-base-spi`,
    /// so the guest reads MSI_TYPER).
    public var gic: GuestInterruptController

    public init(ramSize: UInt64, cpuCount: Int = 1, vSMMU: Bool, layout: GuestMemoryMap = .virt, gic: GuestInterruptController = .gicv3) {
        self.ramSize = ramSize
        self.cpuCount = max(cpuCount, 1)
        self.vSMMU = vSMMU
        self.layout = layout
        self.gic = gic
    }

    public static let gicPhandle: UInt32 = 0x8002
    /// The MSI controller's phandle (`vms->msi_phandle`): the ITS, or a GICv2 guest's v2m frame.
    public static let itsPhandle: UInt32 = 0x8003
    public static let smmuPhandle: UInt32 = 0x8004
    /// Two-cell address, two-cell size `reg` entries (the root's #address-cells/#size-cells = 2).
    static func reg(_ windows: [(UInt64, UInt64)]) -> [UInt32] {
        windows.flatMap { [UInt32(truncatingIfNeeded: $0.0 >> 32), UInt32(truncatingIfNeeded: $0.0),
                           UInt32(truncatingIfNeeded: $0.1 >> 32), UInt32(truncatingIfNeeded: $0.1)] }
    }

    /// A 64-bit number as two cells, high first.
    static func pair(_ value: UInt64) -> [UInt32] {
        [UInt32(truncatingIfNeeded: value >> 32), UInt32(truncatingIfNeeded: value)]
    }

    static func hexName(_ name: String, _ address: UInt64) -> String {
        name + "@" + String(address, radix: 16)
    }

    /// The tree.
    public var tree: DeviceTree {
        typealias P = DeviceTreeProperty
        let M = layout
        var cpus: [DeviceTreeNode] = []
        for index in 0..<cpuCount {
            // `fdt_add_cpu_nodes`: reg = the MPIDR affinity (Aff0 = index below 16 CPUs).
            cpus.append(DeviceTreeNode(name: Self.hexName("cpu", UInt64(index)), properties: [
                P(name: "phandle", cells: [0x8100 &+ UInt32(index)]),
                P(name: "reg", cells: [UInt32(index)]),
                P(name: "enable-method", strings: ["psci"]),
                P(name: "compatible", strings: ["arm,cortex-a57"]),
                P(name: "device_type", strings: ["cpu"]),
            ]))
        }
        let v2m = DeviceTreeNode(name: Self.hexName("v2m", M.v2mFrame.base), properties: [
            P(name: "phandle", cells: [Self.itsPhandle]),
            P(name: "reg", cells: Self.reg([(M.v2mFrame.base, M.v2mFrame.size)])),
            P(name: "msi-controller"),
            P(name: "compatible", strings: ["arm,gic-v2m-frame"]),
        ])
        let gicv2 = DeviceTreeNode(name: Self.hexName("intc", M.distributor.base), properties: [
            P(name: "phandle", cells: [Self.gicPhandle]),
            P(name: "reg", cells: Self.reg([(M.distributor.base, M.distributor.size),
                                            (M.cpuInterface.base, M.cpuInterface.size)])),
            P(name: "compatible", strings: ["arm,cortex-a15-gic"]),
            P(name: "ranges"),
            P(name: "#size-cells", cells: [2]),
            P(name: "#address-cells", cells: [2]),
            P(name: "interrupt-controller"),
            P(name: "#interrupt-cells", cells: [3]),
        ], children: [v2m])
        let its = DeviceTreeNode(name: Self.hexName("its", M.its.base), properties: [
            P(name: "phandle", cells: [Self.itsPhandle]),
            P(name: "reg", cells: Self.reg([(M.its.base, M.its.size)])),
            P(name: "#msi-cells", cells: [1]),
            P(name: "msi-controller"),
            P(name: "compatible", strings: ["arm,gic-v3-its"]),
        ])
        let gic = DeviceTreeNode(name: Self.hexName("intc", M.distributor.base), properties: [
            P(name: "phandle", cells: [Self.gicPhandle]),
            P(name: "reg", cells: Self.reg([(M.distributor.base, M.distributor.size),
                                            (M.redistributors.base, M.redistributors.size)])),
            P(name: "#redistributor-regions", cells: [1]),
            P(name: "compatible", strings: ["arm,gic-v3"]),
            P(name: "ranges"),
            P(name: "#size-cells", cells: [2]),
            P(name: "#address-cells", cells: [2]),
            P(name: "interrupt-controller"),
            P(name: "#interrupt-cells", cells: [3]),
        ], children: [its])
        var pcieProperties: [P] = []
        if vSMMU {
            pcieProperties.append(P(name: "iommu-map", cells: [0, Self.smmuPhandle, 0, 0x1_0000]))
        }
        pcieProperties += [
            // ranges: I/O, 32-bit MMIO and 64-bit MMIO, each 1:1 (phys.hi 0x0100_0000 I/O,
            // 0x0200_0000 MEM32, 0x0300_0000 MEM64; IEEE 1275 PCI binding).
            P(name: "ranges", cells:
                [0x0100_0000, 0, 0] + Self.pair(M.pcieIO.base) + Self.pair(M.pcieIO.size)
                + [0x0200_0000] + Self.pair(M.pcieMMIO32.base) + Self.pair(M.pcieMMIO32.base) + Self.pair(M.pcieMMIO32.size)
                + [0x0300_0000] + Self.pair(M.pcieMMIO64.base) + Self.pair(M.pcieMMIO64.base) + Self.pair(M.pcieMMIO64.size)),
            P(name: "reg", cells: Self.reg([(M.ecam.base, M.ecam.size)])),
            P(name: "msi-map", cells: [0, Self.itsPhandle, 0, 0x1_0000]),
            P(name: "dma-coherent"),
            P(name: "bus-range", cells: [0, 0xFF]),
            P(name: "linux,pci-domain", cells: [0]),
            P(name: "#size-cells", cells: [2]),
            P(name: "#address-cells", cells: [3]),
            P(name: "device_type", strings: ["pci"]),
            P(name: "compatible", strings: ["pci-host-ecam-generic"]),
        ]
        var children: [DeviceTreeNode] = [
            DeviceTreeNode(name: Self.hexName("memory", M.ramBase), properties: [
                P(name: "reg", cells: Self.reg([(M.ramBase, ramSize)])),
                P(name: "device_type", strings: ["memory"]),
            ]),
        ]
        if vSMMU {
            children.append(DeviceTreeNode(name: Self.hexName("smmuv3", M.smmu.base), properties: [
                P(name: "phandle", cells: [Self.smmuPhandle]),
                P(name: "#iommu-cells", cells: [1]),
                P(name: "dma-coherent"),
                P(name: "interrupt-names", strings: ["eventq", "priq", "cmdq-sync", "gerror"]),
                P(name: "interrupts", cells: [0, 0x4A, 1, 0, 0x4B, 1, 0, 0x4C, 1, 0, 0x4D, 1]),
                P(name: "reg", cells: Self.reg([(M.smmu.base, M.smmu.size)])),
                P(name: "compatible", strings: ["arm,smmu-v3"]),
            ]))
        }
        // `create_pcie` names the node after the 32-bit MMIO window's base.
        children.append(DeviceTreeNode(name: Self.hexName("pcie", M.pcieMMIO32.base), properties: pcieProperties))
        children.append(self.gic == .gicv2m ? gicv2 : gic)
        children.append(DeviceTreeNode(name: "cpus", properties: [
            P(name: "#size-cells", cells: [0]),
            P(name: "#address-cells", cells: [1]),
        ], children: cpus))
        let root = DeviceTreeNode(name: "", properties: [
            P(name: "interrupt-parent", cells: [Self.gicPhandle]),
            P(name: "#size-cells", cells: [2]),
            P(name: "#address-cells", cells: [2]),
            P(name: "model", strings: ["linux,dummy-virt"]),
            P(name: "compatible", strings: ["linux,dummy-virt"]),
        ], children: children)
        return DeviceTree(root: root)
    }

    /// The DTB the guest boots with.
    public func blob() throws(DeviceTreeWriter.WriteError) -> [UInt8] {
        try DeviceTreeWriter.write(tree)
    }

    /// The guest's platform description, read back from the blob by the same reader a host DTB
    /// goes through (so the guest kernel sees exactly what the DTB says).
    public func topology() throws(GuestError) -> Topology {
        let bytes: [UInt8]
        do { bytes = try blob() } catch { throw .deviceTree("\(error)") }
        do { return try Topology(dtb: bytes) } catch { throw .deviceTree(error.description) }
    }
}

/// Why the VMM could not build or run a guest.
public enum GuestError: Error, Hashable, Sendable, CustomStringConvertible {
    case deviceTree(String)
    /// The guest's ACPI tables could not be written or read back.
    case firmwareTables(String)
    /// A host uAPI call failed: the call and Linux's errno (the host kernel's `refusals` name
    /// the function that decided it).
    case hostCall(String, Errno)
    /// A host call the VMM could not make at all: the call and why (no vGIC to ask).
    case hostState(String, String)
    case bus(String)
    case unsupported(String)
    /// QEMU refused the accelerated vSMMU or a device behind it (its error message).
    case vsmmu(AcceleratedSMMUv3Error)

    public var description: String {
        switch self {
        case .deviceTree(let s): "guest device tree: \(s)"
        case .firmwareTables(let s): "guest ACPI tables: \(s)"
        case .hostCall(let call, let errno): "\(call): \(errno)"
        case .hostState(let call, let why): "\(call): \(why)"
        case .bus(let s): "guest bus: \(s)"
        case .unsupported(let s): "unsupported: \(s)"
        case .vsmmu(let e): "arm-smmuv3 accel: \(e) (\(e.check))"
        }
    }
}
