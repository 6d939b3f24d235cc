import Firmware
import PCI

/// PCI Access Control Services as Linux uses them for IOMMU isolation (drivers/pci/pci.c):
/// - `pci_request_acs()` sets `pci_acs_enable`: on ACPI by `iort_enable_acs` while the IORT is
///   parsed (`acpi_iort_init`, before any PCI bus is scanned) when a root complex node maps to
///   an SMMU; on a device tree by `of_iommu_configure` the first time a PCI device's IOMMU is
///   configured (drivers/iommu/of_iommu.c: "In PCI's case we need ACS").
/// - `pci_acs_init` → `pci_enable_acs` → `pci_std_enable_acs` in `pci_device_add`, for each
///   function as it is added, only if `pci_acs_enable` is set by then: Control gets
///   Capability & (SV | RR | CR | UF).
/// - `pci_acs_path_enabled(start, NULL, REQ_ACS_FLAGS)` in `pci_device_group`: every bridge
///   from `start` up must have those four enabled (`pci_acs_flags_enabled`: a control the
///   capability does not implement counts as hard-wired on).
/// So a device-tree host before v6.15, which configures IOMMUs at driver probe, enables ACS on
/// nothing it enumerated at boot (a root port and its endpoint share a group), and an ACPI host
/// enables it everywhere: seen on real Linux 6.12 arm64 boots under QEMU 7.2 (DT: root port ACS
/// Control 0x0000, one group per port and endpoint; ACPI: 0x001d, one group each). From v6.15
/// the device tree's first configure happens at the first function's `device_add`, so every
/// function added after it gets ACS (a reading of `pci_device_add`'s order, not checked on a
/// boot). Device-specific ACS quirks (`pci_dev_specific_acs_enabled`) are not modelled.
extension PCISubsystem {
    /// SV, RR, CR and UF (`REQ_ACS_FLAGS`, drivers/iommu/iommu.c).
    static let requiredACSFlags: UInt16 = ACSCapability.sourceValidation | ACSCapability.requestRedirect
        | ACSCapability.completionRedirect | ACSCapability.upstreamForwarding

    /// `iort_enable_acs`: an IORT root complex node with an ID mapping whose output is an SMMU.
    func requestACSFromIORT() {
        guard let iort = kernel.topology.iort else { return }
        for node in iort.nodes {
            guard case .rootComplex = node.kind else { continue }
            for mapping in node.mappings where iort.nodes.indices.contains(mapping.outputNode) {
                switch iort.nodes[mapping.outputNode].kind {
                case .smmuV1V2, .smmuV3: acsRequested = true; return
                default: continue
                }
            }
        }
    }

    /// `pci_acs_init` → `pci_std_enable_acs` for a function just added.
    func initACS(_ dev: PCIDevice) {
        guard let header = try? dev.readConfig32(ConfigurationSpace.compatibleSize),
              header & 0xFFFF == ACSCapability.extendedCapabilityID else { return }
        dev.acsCapability = ConfigurationSpace.compatibleSize
        guard acsRequested, let cap = try? dev.readConfig16(ConfigurationSpace.compatibleSize + ACSCapability.capabilityOffset) else { return }
        let offset = ConfigurationSpace.compatibleSize + ACSCapability.controlOffset
        let control = (try? dev.readConfig16(offset)) ?? 0
        try? dev.writeConfig16(offset, control | (cap & Self.requiredACSFlags))
    }

    /// `pci_acs_enabled(pdev, REQ_ACS_FLAGS)` for a bridge on a DMA path: root ports,
    /// downstream ports and upstream ports by their ACS registers (`pci_acs_flags_enabled`);
    /// anything without ACS, or a PCIe-to-PCI / conventional bridge, is not isolating.
    func acsEnabled(_ dev: PCIDevice) -> Bool {
        guard let position = dev.acsCapability, let type = dev.expressPortType, [0x4, 0x5, 0x6].contains(type),
              let cap = try? dev.readConfig16(position + ACSCapability.capabilityOffset),
              let control = try? dev.readConfig16(position + ACSCapability.controlOffset) else { return false }
        let flags = Self.requiredACSFlags & (cap | ACSCapability.egressControl)
        return control & flags == flags
    }
}
