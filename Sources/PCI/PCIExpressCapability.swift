/// Device/Port Type of the PCI Express Capabilities register (PCIe r6.0 §7.5.3.2, bits 7:4;
/// Linux `PCI_EXP_FLAGS_TYPE` = 0x00f0 and `PCI_EXP_TYPE_*`, checked in `pci_regs.h`).
///
/// Linux reads it with `pci_pcie_type()` and `pci_for_each_dma_alias` branches on it: a
/// `pcieToPCIBridge` re-tags requests from its secondary bus, ports do not.
public enum PCIExpressPortType: UInt8, Hashable, Sendable, CaseIterable {
    case endpoint = 0x0               // PCI_EXP_TYPE_ENDPOINT
    case legacyEndpoint = 0x1         // PCI_EXP_TYPE_LEG_END
    case rootPort = 0x4               // PCI_EXP_TYPE_ROOT_PORT
    case upstreamPort = 0x5           // PCI_EXP_TYPE_UPSTREAM
    case downstreamPort = 0x6         // PCI_EXP_TYPE_DOWNSTREAM
    /// A PCI Express to PCI/PCI-X bridge.
    case pcieToPCIBridge = 0x7        // PCI_EXP_TYPE_PCI_BRIDGE
    /// A PCI/PCI-X to PCI Express bridge.
    case pciToPCIeBridge = 0x8        // PCI_EXP_TYPE_PCIE_BRIDGE
    case rootComplexIntegratedEndpoint = 0x9 // PCI_EXP_TYPE_RC_END
    case rootComplexEventCollector = 0xA     // PCI_EXP_TYPE_RC_EC
}

/// The PCI Express Capability (Cap ID 0x10, PCIe r6.0 §7.5.3), version 2.
///
/// Only the PCI Express Capabilities register carries meaning here (version and Device/Port
/// Type, so software can tell a PCIe-to-PCI bridge from a port). The rest of the 0x3C-byte
/// structure (Linux `PCI_CAP_EXP_ENDPOINT_SIZEOF_V2`) reads as zero — no link, no slot, no
/// optional features — except Device Control (+0x08), which is RW storage so drivers that
/// set Max_Payload_Size or Relaxed Ordering see their writes stick, and, when the function
/// supports it, Function Level Reset: Device Capabilities (+0x04) bit 28 "Function Level Reset
/// Capability" (`PCI_EXP_DEVCAP_FLR`) and Device Control bit 15 "Initiate Function Level
/// Reset" (`PCI_EXP_DEVCTL_BCR_FLR`), PCIe r6.0 §7.5.3.3/§7.5.3.4 and §6.6.2. The Initiate bit
/// always reads 0 (the function clears it as it acts on it; see `PCIFunction`).
public struct PCIExpressCapability: Hashable, Sendable {
    public static let length = 0x3C
    /// Offset of the PCI Express Capabilities register in the capability (`PCI_EXP_FLAGS`).
    public static let flagsOffset = 0x2
    public static let deviceCapabilitiesOffset = 0x4  // PCI_EXP_DEVCAP
    public static let deviceControlOffset = 0x8  // PCI_EXP_DEVCTL
    public static let deviceStatusOffset = 0xA   // PCI_EXP_DEVSTA
    /// `PCI_EXP_DEVCAP_FLR`.
    public static let functionLevelResetCapable: UInt32 = 1 << 28
    /// `PCI_EXP_DEVCTL_BCR_FLR`.
    public static let initiateFunctionLevelReset: UInt16 = 1 << 15

    public let offset: Int
    public let portType: PCIExpressPortType
    /// Device Capabilities.Function Level Reset Capability.
    public let supportsFunctionLevelReset: Bool

    public init(offset: Int, portType: PCIExpressPortType, supportsFunctionLevelReset: Bool = false) {
        self.offset = offset
        self.portType = portType
        self.supportsFunctionLevelReset = supportsFunctionLevelReset
    }

    /// Adds the capability to `config`. `functionLevelReset` sets Device Capabilities.FLR
    /// (the spec allows it for Endpoints only; it is the caller's choice here).
    public static func install(into config: inout ConfigurationSpace, portType: PCIExpressPortType,
                               functionLevelReset: Bool = false) throws(PCIConfigurationError) -> PCIExpressCapability {
        let offset = try config.addCapability(id: CapabilityID.pciExpress, length: length)
        let flags = UInt32(portType.rawValue) << 4 | 0x2   // version 2
        config.setHardwareBits(offset: offset + flagsOffset, size: 2, value: flags)
        if functionLevelReset {
            config.setHardwareBits(offset: offset + deviceCapabilitiesOffset, size: 4, value: functionLevelResetCapable)
        }
        config.setAttributes(offset: offset + deviceControlOffset, size: 2, writable: 0xFFFF)
        return PCIExpressCapability(offset: offset, portType: portType, supportsFunctionLevelReset: functionLevelReset)
    }

    /// Device Control as software last wrote it.
    public func deviceControl(in config: ConfigurationSpace) -> UInt16 {
        UInt16(truncatingIfNeeded: config.read(offset: offset + Self.deviceControlOffset, size: 2))
    }

    /// The Device/Port Type software reads from `config` (what Linux `pci_pcie_type` returns),
    /// nil if the field holds a reserved encoding.
    public static func portType(in config: ConfigurationSpace) -> PCIExpressPortType? {
        guard let offset = config.findCapability(CapabilityID.pciExpress) else { return nil }
        let flags = config.read(offset: offset + flagsOffset, size: 2)
        return PCIExpressPortType(rawValue: UInt8(truncatingIfNeeded: (flags >> 4) & 0xF))
    }
}
