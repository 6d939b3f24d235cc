/// A bridge with a type-1 header: a PCIe-to-PCI/PCI-X bridge, a conventional PCI-to-PCI
/// bridge, or a PCIe root or switch port. Functions attached behind it sit on its secondary
/// bus.
///
/// What matters on the MSI path is the Requester ID the root complex sees for a function behind
/// it (its DMA alias). This follows Linux `pci_for_each_dma_alias` (drivers/pci/search.c),
/// which encodes the bridge specifications:
/// - PCIe-to-PCI/PCI-X bridge (`PCI_EXP_TYPE_PCI_BRIDGE`): requests from the secondary side
///   are re-tagged with the bridge's secondary bus number and devfn 0 —
///   `PCI_DEVID(tmp->subordinate->number, PCI_DEVFN(0, 0))`, citing the PCI Express to
///   PCI/PCI-X Bridge Spec r1.0 §2.3 (the bridge takes ownership of transactions from its
///   conventional PCI side). Note: not the bridge's own RID.
/// - PCI/PCI-X-to-PCIe bridge (`PCI_EXP_TYPE_PCIE_BRIDGE`) and a conventional (non-PCIe) PCI
///   bridge: the bridge's own RID, `PCI_DEVID(tmp->bus->number, tmp->devfn)`.
/// - Root ports and switch ports (`ROOT_PORT`, `UPSTREAM`, `DOWNSTREAM`): no aliasing.
/// With several bridges on the path, the one nearest the root complex is applied last and is
/// what the root complex sees; this is also the alias Linux keeps for MSI (`get_msi_id_cb` in
/// drivers/pci/msi/irqdomain.c: "the last one seen wins"). Linux's IOMMU side additionally
/// registers every alias (the device's own RID too) as a StreamID; on the wire only the final
/// one appears, which is what this model emits.
///
/// Only the alias-relevant behaviour is modelled: bus numbers, Bus Master Enable (which gates
/// forwarding of upstream memory requests: PCIe r6.0 §7.5.1.1.3 "controls forwarding of Memory
/// … Requests by a Port in the Upstream direction"; with it clear they are Unsupported
/// Requests) and the memory window registers as storage. Configuration routing is flat: the
/// root complex finds functions by Requester ID rather than by walking bus number ranges.
public final class PCIToPCIBridge {
    public enum Kind: Hashable, Sendable {
        /// PCIe-to-PCI/PCI-X bridge (Device/Port Type 0x7).
        case pcieToPCI
        /// PCI/PCI-X-to-PCIe bridge (Device/Port Type 0x8).
        case pciToPCIe
        /// A conventional PCI-to-PCI bridge: no PCI Express capability.
        case conventionalPCI
        /// A PCIe root port (0x4).
        case rootPort
        /// A PCIe switch upstream port (0x5).
        case switchUpstreamPort
        /// A PCIe switch downstream port (0x6).
        case switchDownstreamPort

        var expressType: PCIExpressPortType? {
            switch self {
            case .pcieToPCI: .pcieToPCIBridge
            case .pciToPCIe: .pciToPCIeBridge
            case .conventionalPCI: nil
            case .rootPort: .rootPort
            case .switchUpstreamPort: .upstreamPort
            case .switchDownstreamPort: .downstreamPort
            }
        }
    }

    public let name: String
    public let requesterID: RequesterID
    public let kind: Kind
    public private(set) var config: ConfigurationSpace
    public internal(set) weak var parentBridge: PCIToPCIBridge?
    weak var rootComplex: RootComplex?

    /// A bridge with its bus numbers already assigned (primary = its own bus).
    public init(name: String = "pci-bridge", requesterID: RequesterID, kind: Kind = .pcieToPCI,
                vendorID: UInt16 = 0x1B36, deviceID: UInt16 = 0x000E,
                secondaryBus: UInt8, subordinateBus: UInt8? = nil, acsCapability: UInt16? = nil,
                multifunction: Bool = false) throws(PCIConfigurationError) {
        self.name = name
        self.requesterID = requesterID
        self.kind = kind
        // Class 0x06_0400: bridge device, PCI-to-PCI bridge.
        var config = ConfigurationSpace(vendorID: vendorID, deviceID: deviceID, classCode: 0x06_0400, headerType: .bridge)
        if let type = kind.expressType {
            _ = try PCIExpressCapability.install(into: &config, portType: type)
        }
        config.write(offset: ConfigRegister.primaryBus, size: 1, value: UInt32(requesterID.bus))
        config.write(offset: ConfigRegister.secondaryBus, size: 1, value: UInt32(secondaryBus))
        config.write(offset: ConfigRegister.subordinateBus, size: 1, value: UInt32(subordinateBus ?? secondaryBus))
        if let acsCapability { ACSCapability.install(into: &config, capability: acsCapability) }
        // Header Type bit 7 (PCI_HEADER_TYPE_MFD): functions 1–7 of this slot exist too.
        if multifunction {
            config.setHardwareBits(offset: ConfigRegister.headerType, size: 1, value: 0x80 | UInt32(HeaderType.bridge.rawValue))
        }
        self.config = config
    }

    /// `other`'s state, attached to nothing: a forked world's copy, which its root complex's
    /// copy attaches.
    init(copying other: PCIToPCIBridge) {
        name = other.name
        requesterID = other.requesterID
        kind = other.kind
        config = other.config
    }

    public var primaryBus: UInt8 { UInt8(truncatingIfNeeded: config.read(offset: ConfigRegister.primaryBus, size: 1)) }
    /// The Secondary Bus Number register as software last programmed it; the alias uses it.
    public var secondaryBus: UInt8 { UInt8(truncatingIfNeeded: config.read(offset: ConfigRegister.secondaryBus, size: 1)) }
    public var subordinateBus: UInt8 { UInt8(truncatingIfNeeded: config.read(offset: ConfigRegister.subordinateBus, size: 1)) }
    /// Whether the bridge forwards memory requests (DMA, MSI) upstream.
    public var forwardsUpstream: Bool { config.busMasterEnabled }

    public func configRead(offset: Int, size: Int) -> UInt32 { config.read(offset: offset, size: size) }
    public func configWrite(offset: Int, size: Int, value: UInt32) { config.write(offset: offset, size: size, value: value) }

    /// The Requester ID a request forwarded upstream through this bridge carries, given the one
    /// it arrived with.
    public func alias(ofForwarded requester: RequesterID) -> RequesterID {
        switch kind {
        case .pcieToPCI: RequesterID(bus: secondaryBus, devfn: 0)
        case .pciToPCIe, .conventionalPCI: requesterID
        case .rootPort, .switchUpstreamPort, .switchDownstreamPort: requester
        }
    }
}
