/// The Access Control Services Extended Capability (ID 0x000D, PCIe r6.0 §7.7.8): a 16-bit ACS
/// Capability register saying which controls the port implements and a 16-bit ACS Control
/// register whose bits are RW where the capability bit is set and RO zero elsewhere (§7.7.8.3).
/// Placed at 0x100, the first Extended Capability (its Next Capability Offset 0: the last).
/// QEMU's `pcie-root-port` has one (QEMU 4.0 `pcie_acs_init`, disabled by `disable-acs=on`),
/// as do most server root ports; switch downstream ports usually do too.
public struct ACSCapability: Hashable, Sendable {
    public static let extendedCapabilityID: UInt32 = 0x000D
    /// ACS Source Validation, Translation Blocking, P2P Request Redirect, P2P Completion
    /// Redirect, Upstream Forwarding, P2P Egress Control, Direct Translated P2P (bits 0–6).
    public static let sourceValidation: UInt16 = 1 << 0
    public static let translationBlocking: UInt16 = 1 << 1
    public static let requestRedirect: UInt16 = 1 << 2
    public static let completionRedirect: UInt16 = 1 << 3
    public static let upstreamForwarding: UInt16 = 1 << 4
    public static let egressControl: UInt16 = 1 << 5
    public static let directTranslatedP2P: UInt16 = 1 << 6

    public static let capabilityOffset = 4
    public static let controlOffset = 6

    public let offset: Int
    public let capability: UInt16

    /// Installs the capability at 0x100 with the ACS Capability register `capability`
    /// (bits 0–6; the Egress Control Vector Size in bits 15:8 is kept as given).
    @discardableResult
    public static func install(into config: inout ConfigurationSpace, capability: UInt16) -> ACSCapability {
        let offset = ConfigurationSpace.compatibleSize
        // Header: ID, version 1, next 0 (§7.6.3).
        config.setHardwareBits(offset: offset, size: 4, value: extendedCapabilityID | 1 << 16)
        config.setHardwareBits(offset: offset + capabilityOffset, size: 2, value: UInt32(capability))
        config.setAttributes(offset: offset + controlOffset, size: 2, writable: UInt32(capability & 0x7F))
        return ACSCapability(offset: offset, capability: capability)
    }

    /// The Extended Capability at 0x100 if it is ACS.
    public static func find(in config: ConfigurationSpace) -> ACSCapability? {
        let header = config.read(offset: ConfigurationSpace.compatibleSize, size: 4)
        guard header & 0xFFFF == extendedCapabilityID else { return nil }
        let offset = ConfigurationSpace.compatibleSize
        return ACSCapability(offset: offset, capability: UInt16(truncatingIfNeeded: config.read(offset: offset + capabilityOffset, size: 2)))
    }
}
