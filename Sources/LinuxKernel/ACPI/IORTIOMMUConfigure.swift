import Bus
import Firmware
import PCI

extension LinuxKernel {
    /// The IORT walker over the topology's IORT, logging to this kernel (nil on a device-tree
    /// topology).
    var iortWalker: IORTWalker? {
        topology.iort.map { IORTWalker(iort: $0, log: log) }
    }

    /// The IORT root complex node of a PCI function's host bridge: `iort_find_dev_node` for a
    /// PCI device, matching the bus's `pci_domain_nr` (the bridge's `domain`, 0 when unset).
    func iortRootComplex(of pci: PCIDevice) -> Int? {
        guard let walker = iortWalker, topology.pcieHostBridges.indices.contains(pci.hostBridge) else { return nil }
        return walker.rootComplex(segment: topology.pcieHostBridges[pci.hostBridge].domain ?? 0)
    }
}

extension IOMMUSubsystem {
    /// `iort_iommu_configure_id` for a PCI device (drivers/acpi/arm64/iort.c): the root complex
    /// node of the bus's segment (none → no IOMMU); for each DMA alias in
    /// `pci_for_each_dma_alias` order, stopping at the first error, `iort_pci_iommu_init`:
    /// `iort_node_map_id(rc, alias, IORT_IOMMU_TYPE)` then `iort_iommu_xlate`:
    /// - no node → -ENODEV (`.noTranslation`);
    /// - an SMMUv1/v2 node → the `ArmSMMUDriver` read from that node (`node.iortNode`), the
    ///   fwspec ID the plain StreamID (`iort_iommu_xlate` adds the mapped ID; `arm_smmu_probe_device`
    ///   reads SMR ID [15:0] and MASK [31:16] from it, so the mask is 0); one that did not probe is
    ///   -EPROBE_DEFER forever (`.noDriver`);
    /// - an SMMUv3 node → the `ArmSMMUv3Driver` read from that node (`node.iortNode`); one that
    ///   did not probe is -EPROBE_DEFER forever (`.noDriver`);
    /// - aliases reaching two SMMUs → `iommu_fwspec_init` -EINVAL (`.mixedIOMMUs`).
    ///
    /// Then the fwspec flags: `IOMMU_FWSPEC_PCI_RC_ATS` when the root complex's ATS Attribute
    /// bit 0 is set (`iort_pci_rc_supports_ats`) and `IOMMU_FWSPEC_PCI_RC_CANWBS` when its memory
    /// access flags bit 2 is (`iort_pci_rc_supports_canwbs`, `ACPI_IORT_MF_CANWBS`, DEN 0049E.f
    /// §3.1.1.2 Table 8).
    public func iortConfigure(_ device: Device) -> Result<DeviceIOMMU, ConfigureFailure> {
        guard let pci = device.pci, let walker = kernel.iortWalker,
              kernel.topology.pcieHostBridges.indices.contains(pci.hostBridge) else { return .failure(.notPCI) }
        let segment = kernel.topology.pcieHostBridges[pci.hostBridge].domain ?? 0
        guard let rc = walker.rootComplex(segment: segment) else { return .failure(.noRootComplex(segment: segment)) }
        let iort = walker.iort
        var driverIndex: Int?
        var smmuV2 = false
        var streamIDs: [StreamID] = []
        for alias in dmaAliases(of: pci) {
            let input = UInt32(alias.rawValue)
            let (found, sid) = walker.mapID(from: rc, id: input, typeMask: IORTWalker.iommuTypeMask)
            guard let node = found else { return .failure(.noTranslation(input)) }
            let name = "IORT@\(iortHex(iort.nodes[node].offset)) \(iort.nodes[node].typeName)"
            let armSMMU: Bool
            let index: Int
            switch iort.nodes[node].kind {
            case .smmuV1V2:
                guard let i = kernel.armSMMUDrivers.firstIndex(where: { $0.node.iortNode == node }) else {
                    return .failure(.noDriver(name))
                }
                armSMMU = true
                index = i
            case .smmuV3:
                guard let i = kernel.smmuDrivers.firstIndex(where: { $0.node.iortNode == node }) else {
                    return .failure(.noDriver(name))
                }
                armSMMU = false
                index = i
            default:
                return .failure(.noDriver(name))
            }
            if let existing = driverIndex, existing != index || smmuV2 != armSMMU { return .failure(.mixedIOMMUs) }
            driverIndex = index
            smmuV2 = armSMMU
            streamIDs.append(StreamID(armSMMU ? sid & 0xFFFF : sid))
        }
        guard let index = driverIndex else { return .failure(.noTranslation(UInt32(pci.requesterID.rawValue))) }
        var flags: IOMMUFWSpecFlags = []
        if case .rootComplex(let properties) = iort.nodes[rc].kind {
            if properties.atsAttribute & 1 != 0 { flags.insert(.pciRCATS) }
            if properties.memoryProperties.memoryFlags & (1 << 2) != 0 { flags.insert(.pciRCCANWBS) }
        }
        return .success(DeviceIOMMU(iommuIndex: index, streamIDs: streamIDs, flags: flags, smmuV2: smmuV2))
    }
}
