import Bus
import Firmware
import PCI

/// `struct pci_dev`: one PCI function the kernel enumerated, reached only through its host
/// bridge's ECAM window (config space) and its BARs (memory space).
public final class PCIDevice {
    public let device: Device
    public let requesterID: RequesterID
    /// Index of the host bridge (`topology.pcieHostBridges`) the function sits under.
    public let hostBridge: Int

    /// How this function's config space is reached (`PCIConfigAccess`): its ECAM address, or
    /// the RK3399 host bridge's accessors.
    public internal(set) var configAccess = PCIConfigAccess.ecam(PhysicalAddress(0))
    /// The ECAM address of this function's config space (bus offset from the bridge's first bus,
    /// PCIe r6.0 §7.2.2: (bus − first) << 20 | devfn << 12); on an RK3399 the address its
    /// register 0 is reached at.
    public var configBase: PhysicalAddress {
        switch configAccess {
        case .ecam(let base): base
        case .rockchipRK3399(let controller, let rootBus, let parentIsRoot):
            switch RockchipPCIeHost.target(controller, bus: requesterID.bus, devfn: requesterID.devfn, register: 0, size: 4,
                                           rootBus: rootBus, parentIsRoot: parentIsRoot) {
            case .ownConfiguration(let a), .otherConfiguration(let a, _): a
            case .deviceNotFound, .badRegister: PhysicalAddress(0)
            }
        }
    }
    weak var kernel: LinuxKernel?

    /// Identity read at `pci_setup_device`.
    public internal(set) var vendorID: UInt16 = 0xFFFF
    public internal(set) var pciDeviceID: UInt16 = 0xFFFF
    /// 24-bit class code (`dev->class`).
    public internal(set) var classCode: UInt32 = 0
    /// PCI_HEADER_TYPE bits 6:0 (`dev->hdr_type`): 0 endpoint, 1 bridge.
    public internal(set) var headerType: UInt8 = 0
    /// PCI_HEADER_TYPE bit 7.
    public internal(set) var isMultifunction = false

    /// The bridge whose secondary bus this function is on (`pdev->bus->self`); nil on the root bus.
    public internal(set) weak var upstreamBridge: PCIDevice?
    /// For bridges: the secondary and subordinate bus numbers (`dev->subordinate->number`).
    public internal(set) var secondaryBus: UInt8?
    public internal(set) var subordinateBus: UInt8?

    /// Capability offsets (`pci_find_capability`): `dev->msi_cap`, `dev->msix_cap`,
    /// `dev->pcie_cap`.
    public internal(set) var msiCapability: Int?
    public internal(set) var msixCapability: Int?
    public internal(set) var expressCapability: Int?
    /// `pci_pcie_type(dev)`: PCI Express Capabilities register bits 7:4.
    public internal(set) var expressPortType: UInt8?
    /// `pdev->acs_cap`: the ACS Extended Capability's offset, if any.
    public internal(set) var acsCapability: Int?

    /// `dev->resource[]`: the memory BARs, sized and assigned.
    public internal(set) var resources: [PCIResource] = []

    /// The Requester IDs `pci_for_each_dma_alias` reports, in its order: the function's own
    /// RID first, then each aliasing bridge walking towards the root (drivers/pci/search.c).
    public internal(set) var dmaAliases: [RequesterID] = []

    /// `dev->is_enabled` / `current_state == PCI_D0` (set by `pci_enable_device`).
    public internal(set) var isEnabled = false
    /// `dev->is_busmaster`.
    public internal(set) var isBusMaster = false

    /// `dev->irq`: the INTx interrupt `pci_assign_irq` mapped at driver probe (0: none).
    public internal(set) var irq = 0
    /// INTx enabled by `pci_alloc_irq_vectors`' fallback (`pci_intx(dev, 1)`).
    public internal(set) var intxEnabled = false
    /// The host bridge's (root-bus devfn, pin) and SPI INTID `of_irq_parse_pci` found.
    public internal(set) var intxRoute: (rootDevfn: UInt8, pin: UInt8, intid: UInt32)?

    /// `dev->msi_enabled`, `dev->msix_enabled`.
    public internal(set) var msiEnabled = false
    public internal(set) var msixEnabled = false
    /// `dev->msix_base`: the CPU address of the MSI-X table (BAR + table offset).
    public internal(set) var msixTableAddress: PhysicalAddress?
    /// Table Size from Message Control (N).
    public internal(set) var msixTableSize = 0
    /// The ITS and DeviceID the MSI domain resolved for this function (`pci_msi_domain_get_msi_rid`
    /// through `msi-map`), once MSIs were set up.
    public internal(set) var msiDomain: (its: Int, deviceID: UInt32)?

    /// `desc->pci.msi_attrib` and `desc->pci.msi_mask` of the MSI (not MSI-X) descriptor:
    /// 64-bit layout, Multiple Message Enable (log2 of the vectors granted), whether the
    /// function has per-vector masking, and the cached mask register.
    struct MSIAttributes {
        var is64: Bool
        var multiple: Int
        var canMask: Bool
        var mask: UInt32
        var vectors: Int
    }
    var msiAttributes: MSIAttributes?
    /// The vectors MSI (not MSI-X) granted (`nvec` of `msi_capability_init`); 0 without MSI.
    public var msiVectorCount: Int { msiEnabled ? (msiAttributes?.vectors ?? 0) : 0 }
    /// `pci_save_state`'s copy (header dwords 0–15 and PCI Express Device Control).
    var savedConfig: [UInt32]?
    var savedDeviceControl: UInt16?

    init(device: Device, requesterID: RequesterID, hostBridge: Int) {
        self.device = device
        self.requesterID = requesterID
        self.hostBridge = hostBridge
    }

    /// Whether it is a type-1 (bridge) header.
    public var isBridge: Bool { headerType == 1 }

    /// The name Linux prints ("0000:00:01.0").
    public var name: String { device.name }

    // MARK: Config space (pci_read_config_* / pci_write_config_*)

    /// `pci_read_config_{byte,word,dword}`.
    public func readConfig(_ offset: Int, size: Int) throws(Errno) -> UInt32 {
        guard let kernel else { throw .EINVAL }
        return try configAccess.read(requesterID, register: offset, size: size, mmio: kernel.mmio)
    }

    /// `pci_write_config_{byte,word,dword}`.
    public func writeConfig(_ offset: Int, size: Int, _ value: UInt32) throws(Errno) {
        guard let kernel else { throw .EINVAL }
        try configAccess.write(requesterID, register: offset, size: size, value: value, mmio: kernel.mmio)
    }

    public func readConfig16(_ offset: Int) throws(Errno) -> UInt16 { UInt16(truncatingIfNeeded: try readConfig(offset, size: 2)) }
    public func readConfig32(_ offset: Int) throws(Errno) -> UInt32 { try readConfig(offset, size: 4) }
    public func writeConfig16(_ offset: Int, _ value: UInt16) throws(Errno) { try writeConfig(offset, size: 2, UInt32(value)) }
    public func writeConfig32(_ offset: Int, _ value: UInt32) throws(Errno) { try writeConfig(offset, size: 4, value) }

    /// Read-modify-write of a 16-bit register (`pci_clear_and_set_config_word`).
    func clearAndSet16(_ offset: Int, clear: UInt16, set: UInt16) throws(Errno) {
        let old = try readConfig16(offset)
        try writeConfig16(offset, (old & ~clear) | set)
    }

    /// The resource of BAR `index`, if implemented.
    public func resource(bar index: Int) -> PCIResource? { resources.first { $0.bar == index } }
}

/// A memory BAR as `__pci_read_base` sized it and `pci_assign_resource` placed it.
public struct PCIResource: Hashable, Sendable, CustomStringConvertible {
    public var bar: Int
    public var size: UInt64
    public var is64Bit: Bool
    public var prefetchable: Bool
    /// The CPU (and, with identity `ranges`, bus) address assigned; nil when no window had room.
    public var address: PhysicalAddress?

    public var description: String {
        let where_ = address.map { "\($0)" } ?? "unassigned"
        return "BAR\(bar) \(where_) size \(Hex.format(size, minDigits: 1))\(is64Bit ? " 64bit" : "")\(prefetchable ? " pref" : "")"
    }
}
