import Bus
import Firmware
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
/// With `reservedMSIWindow` the tree also carries the device-tree form of the IORT RMR node
/// QEMU's accelerated SMMUv3 emits for the host's MSI window (see `reservedMSINode`), and a
/// node per passthrough function under the host bridge that points at it. QEMU's own virt tree
/// has no function nodes; without the window none are emitted, so the tree stays QEMU's.
public struct GuestDeviceTree: Hashable, Sendable {
    public var ramSize: UInt64
    public var cpuCount: Int
    /// An SMMUv3 node at the layout's SMMU window and the host bridge's `iommu-map` to it.
    public var vSMMU: Bool
    /// Where everything is (`GuestMemoryMap.virt` unless the VMM picked another map).
    public var layout: GuestMemoryMap

    /// The passthrough functions as the guest sees them (guest RID, IDs for the node name).
    public var functions: [Function]
    /// A reserved IOVA window every passthrough function must find mapped 1:1 (the RMR of
    /// strategy `rmr-identity`); nil: none.
    public var reservedMSIWindow: GuestMemoryMap.MemoryWindow?
    /// Emulated root ports on bus 0 above functions on other buses.
    public var rootPorts: [RootPort]

    /// A PCIe root port: its own RID on bus 0 and the bus behind it.
    public struct RootPort: Hashable, Sendable {
        public var requesterID: RequesterID
        public var secondaryBus: UInt8
        public init(requesterID: RequesterID, secondaryBus: UInt8) {
            self.requesterID = requesterID
            self.secondaryBus = secondaryBus
        }
    }

    /// One passthrough function.
    public struct Function: Hashable, Sendable {
        public var requesterID: RequesterID
        public var vendorID: UInt16
        public var deviceID: UInt16
        public init(requesterID: RequesterID, vendorID: UInt16 = 0xFFFF, deviceID: UInt16 = 0xFFFF) {
            self.requesterID = requesterID
            self.vendorID = vendorID
            self.deviceID = deviceID
        }
    }

    public init(ramSize: UInt64, cpuCount: Int = 1, vSMMU: Bool, layout: GuestMemoryMap = .virt,
                functions: [Function] = [], reservedMSIWindow: GuestMemoryMap.MemoryWindow? = nil,
                rootPorts: [RootPort] = []) {
        self.ramSize = ramSize
        self.cpuCount = max(cpuCount, 1)
        self.vSMMU = vSMMU
        self.layout = layout
        self.functions = functions
        self.reservedMSIWindow = reservedMSIWindow
        self.rootPorts = rootPorts
    }

    public static let gicPhandle: UInt32 = 0x8002
    public static let itsPhandle: UInt32 = 0x8003
    public static let smmuPhandle: UInt32 = 0x8004
    /// The reserved-memory node of the MSI window (after QEMU's own phandles).
    public static let reservedMSIPhandle: UInt32 = 0x8005
    /// Function node `index`'s phandle.
    public static func functionPhandle(_ index: Int) -> UInt32 { 0x8010 &+ UInt32(truncatingIfNeeded: index) }

    /// `phys.hi` of a PCI address (IEEE 1275 PCI bus binding §2.2.1.1: `npt000ss bbbbbbbb
    /// dddddfff rrrrrrrr`): configuration space (ss = 00) of `rid`, register 0 — what a
    /// function node's first `reg` entry holds, and what `of_pci_get_devfn` reads bits 15:8 of.
    public static func configPhysHi(_ rid: RequesterID) -> UInt32 {
        UInt32(rid.bus) << 16 | UInt32(rid.devfn) << 8
    }

    /// `phys.hi` of a memory-space PCI address: ss = 10 (32-bit) below 4 GiB, 11 (64-bit) above.
    static func memoryPhysHi(_ address: UInt64) -> UInt32 {
        address >> 32 == 0 ? 0x0200_0000 : 0x0300_0000
    }

    /// Root port `index`'s node, a PCI-to-PCI bridge node under the host bridge (IEEE 1275 PCI
    /// binding §2.2.1: `device_type = "pci"`, 3 address and 2 size cells, `reg` its own
    /// configuration address, `bus-range` its secondary bus; an empty `ranges` passes addresses
    /// 1:1), holding the nodes of the functions on its secondary bus.
    func rootPortNode(_ port: RootPort, children: [DeviceTreeNode]) -> DeviceTreeNode {
        typealias P = DeviceTreeProperty
        let rid = port.requesterID
        var unit = String(rid.device, radix: 16)
        if rid.function != 0 { unit += "," + String(rid.function, radix: 16) }
        return DeviceTreeNode(name: "pci@" + unit, properties: [
            P(name: "ranges"),
            P(name: "bus-range", cells: [UInt32(port.secondaryBus), UInt32(port.secondaryBus)]),
            P(name: "#size-cells", cells: [2]),
            P(name: "#address-cells", cells: [3]),
            P(name: "device_type", strings: ["pci"]),
            P(name: "reg", cells: [Self.configPhysHi(rid), 0, 0, 0, 0]),
        ], children: children)
    }

    /// The node of passthrough function `index` under its bus's node: `reg` = its
    /// configuration-space address with size 0 (the binding's first entry; Linux only reads the
    /// devfn from it), `memory-region` = the MSI window's reserved-memory node. Name: the
    /// binding's generic `pci<vendor>,<device>` with unit address `<dev>[,<fn>]` in hex.
    func functionNode(_ index: Int, _ function: Function) -> DeviceTreeNode {
        typealias P = DeviceTreeProperty
        let rid = function.requesterID
        var unit = String(rid.device, radix: 16)
        if rid.function != 0 { unit += "," + String(rid.function, radix: 16) }
        return DeviceTreeNode(name: "pci\(String(function.vendorID, radix: 16)),\(String(function.deviceID, radix: 16))@\(unit)", properties: [
            P(name: "phandle", cells: [Self.functionPhandle(index)]),
            P(name: "memory-region", cells: [Self.reservedMSIPhandle]),
            P(name: "reg", cells: [Self.configPhysHi(rid), 0, 0, 0, 0]),
        ])
    }

    /// The device-tree equivalent of the IORT RMR node (IORT node type 6,
    /// `ACPI_IORT_NODE_RMR`; Linux `iort_node_get_rmr_info` turns each of its memory-range
    /// descriptors into an IOMMU_RESV_DIRECT region for the StreamIDs it maps) that
    /// STRATEGIES.md (`rmr-identity`) says QEMU's accelerated SMMUv3 emits for the host's MSI
    /// window — QEMU's side is not verified here. The node: a /reserved-memory child (binding
    /// `reserved-memory.yaml`) with
    /// - `reg` = the window (physical = guest IPA range),
    /// - `no-map` (the OS must not use or map it as memory),
    /// - `iommu-addresses` = one `<&function phys.hi phys.mid phys.lo size.hi size.lo>` per
    ///   passthrough function at the same address and size. The specifier takes the cell counts
    ///   of the device's bus (the PCI host bridge: 3 address, 2 size), as Linux reads it with
    ///   `of_translate_dma_region`; phys.hi says memory space (ss = 10/11), and with no
    ///   `dma-ranges` on the host bridge the address translates 1:1.
    /// The binding: "When used in combination with a "reg" property, an IOVA mapping is to be
    /// established for this memory region", and Linux's `of_iommu_get_resv_regions` turns an
    /// IOVA range equal to the `reg` range into IOMMU_RESV_DIRECT (`iommu_resv_region_get_type`),
    /// which the guest's IOMMU core maps 1:1 in the device's default domain
    /// (`iommu_create_device_direct_mappings`) — what the RMR does through IORT.
    func reservedMSINode(_ window: GuestMemoryMap.MemoryWindow) -> DeviceTreeNode {
        typealias P = DeviceTreeProperty
        var cells: [UInt32] = []
        for index in functions.indices {
            cells += [Self.functionPhandle(index), Self.memoryPhysHi(window.base)] + Self.pair(window.base) + Self.pair(window.size)
        }
        return DeviceTreeNode(name: Self.hexName("msi-window", window.base), properties: [
            P(name: "phandle", cells: [Self.reservedMSIPhandle]),
            P(name: "iommu-addresses", cells: cells),
            P(name: "no-map"),
            P(name: "reg", cells: Self.reg([(window.base, window.size)])),
        ])
    }

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
        var functionNodes: [DeviceTreeNode] = []
        if let window = reservedMSIWindow {
            children.insert(DeviceTreeNode(name: "reserved-memory", properties: [
                P(name: "ranges"),
                P(name: "#size-cells", cells: [2]),
                P(name: "#address-cells", cells: [2]),
            ], children: [reservedMSINode(window)]), at: 0)
            // Functions on bus 0 are host-bridge children; the others sit under the root port
            // whose secondary bus they are on (`of_pci_find_child_device` looks in the bus's
            // bridge node).
            var byBus: [UInt8: [DeviceTreeNode]] = [:]
            for (index, function) in functions.enumerated() {
                byBus[function.requesterID.bus, default: []].append(functionNode(index, function))
            }
            functionNodes = byBus[0] ?? []
            for port in rootPorts {
                functionNodes.append(rootPortNode(port, children: byBus[port.secondaryBus] ?? []))
            }
        }
        // `create_pcie` names the node after the 32-bit MMIO window's base.
        children.append(DeviceTreeNode(name: Self.hexName("pcie", M.pcieMMIO32.base), properties: pcieProperties,
                                       children: functionNodes))
        children.append(gic)
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
    /// A host uAPI call failed: the call and Linux's errno name.
    case hostCall(String, String)
    case bus(String)
    case unsupported(String)

    public var description: String {
        switch self {
        case .deviceTree(let s): "guest device tree: \(s)"
        case .hostCall(let call, let errno): "\(call): \(errno)"
        case .bus(let s): "guest bus: \(s)"
        case .unsupported(let s): "unsupported: \(s)"
        }
    }
}
