import Bus
import Firmware
import PCI

extension IOMMUSubsystem {
    /// Why `of_iommu_configure` gave a device no IOMMU.
    public enum ConfigureFailure: Error, Hashable, Sendable {
        /// Not a PCI function, or its host bridge is unknown.
        case notPCI
        /// The host bridge has no `iommu-map` (`of_map_id`: no map + a target wanted → -ENODEV).
        case noMap
        /// `of_map_id` found no entry for this RID/alias: "no iommu-map translation for id",
        /// the ID bypasses, the target is NULL, and `of_iommu_xlate` fails with -ENODEV.
        case noTranslation(UInt32)
        /// The map is malformed for this ID (-EFAULT / -EINVAL from `of_map_id`).
        case badMap(UInt32)
        /// The target is not an SMMUv3 this kernel drives (another IOMMU model, a disabled node,
        /// an unresolved phandle), or its driver did not probe (-EPROBE_DEFER forever).
        case noDriver(String)
        /// Aliases mapped to two different IOMMU instances (`iommu_fwspec_init` -EINVAL).
        case mixedIOMMUs
        /// ACPI: no IORT root complex node has the host bridge's PCI segment
        /// (`iort_iommu_configure_id` finds no node and returns no IOMMU).
        case noRootComplex(segment: UInt32)
    }

    /// The requester IDs whose StreamIDs the device uses: `pci_for_each_dma_alias` order (the
    /// function itself first, then aliasing bridges towards the root), as the PCI core found
    /// them in config space; the RID alone if it has not looked yet.
    func dmaAliases(of pci: PCIDevice) -> [RequesterID] {
        pci.dmaAliases.isEmpty ? [pci.requesterID] : pci.dmaAliases
    }

    /// `of_iommu_configure` for a PCI device (`of_pci_iommu_init` per DMA alias →
    /// `of_map_id(bridge, alias, "iommu-map", "iommu-map-mask")` → `of_iommu_xlate` →
    /// `arm_smmu_of_xlate`, which appends the single-cell specifier to `fwspec->ids`). The first
    /// alias that fails ends the walk and the device gets no IOMMU (the fwspec is freed); a
    /// device with no IOMMU uses dma-direct and physical MSI doorbells.
    ///
    /// On an ACPI topology (`topology.iort` set) the IORT is walked instead:
    /// `iortConfigure(_:)`, `iort_iommu_configure_id`.
    public func configure(_ device: Device) -> Result<DeviceIOMMU, ConfigureFailure> {
        if kernel.topology.iort != nil { return iortConfigure(device) }
        guard let pci = device.pci, pci.hostBridge >= 0, pci.hostBridge < kernel.topology.pcieHostBridges.count else {
            return .failure(.notPCI)
        }
        // of_iommu_configure: "In PCI's case we need ACS" — pci_request_acs() before the map.
        kernel.pci.acsRequested = true
        guard let map = kernel.topology.pcieHostBridges[pci.hostBridge].iommuMap else { return .failure(.noMap) }
        var driverIndex: Int?
        var smmuV2: Bool?
        var streamIDs: [StreamID] = []
        for alias in dmaAliases(of: pci) {
            let id = UInt32(alias.rawValue)
            switch map.lookup(id) {
            case .noMatch:
                return .failure(.noTranslation(id))
            case .maskIgnoresBase, .unsupportedMultiCellRange:
                return .failure(.badMap(id))
            case .mapped(_, .iommu(let node), let specifier):
                // arm-smmu: `arm_smmu_of_xlate` — fwid = SMR ID from the first cell, SMR MASK
                // from the second cell, else from the SMMU node's `stream-match-mask`.
                guard let sid = specifier.first, specifier.count <= 2 else { return .failure(.badMap(id)) }
                guard let index = kernel.armSMMUDrivers.firstIndex(where: { $0.nodeIndex == node }) else {
                    let path = node >= 0 && node < kernel.topology.otherIOMMUs.count ? kernel.topology.otherIOMMUs[node].path : "iommu[\(node)]"
                    return .failure(.noDriver(path))
                }
                if let existing = driverIndex, existing != index || smmuV2 != true { return .failure(.mixedIOMMUs) }
                driverIndex = index
                smmuV2 = true
                let mask = specifier.count > 1 ? specifier[1] : kernel.armSMMUDrivers[index].node.streamMatchMask ?? 0
                streamIDs.append(StreamID(sid & 0xFFFF | (mask & 0xFFFF) << 16))
            case .mapped(_, let target, let specifier):
                guard specifier.count == 1, let sid = specifier.first else { return .failure(.badMap(id)) }
                guard case .smmuV3(let node) = target, node >= 0, node < kernel.topology.smmus.count,
                      kernel.topology.smmus[node].enabled else { return .failure(.noDriver(target.description)) }
                let description = kernel.topology.smmus[node]
                guard let index = kernel.smmuDrivers.firstIndex(where: { $0.node == description }) else {
                    return .failure(.noDriver(description.path))
                }
                if let existing = driverIndex, existing != index || smmuV2 == true { return .failure(.mixedIOMMUs) }
                driverIndex = index
                smmuV2 = false
                streamIDs.append(StreamID(sid))
            }
        }
        guard let index = driverIndex else { return .failure(.noMap) }
        return .success(DeviceIOMMU(iommuIndex: index, streamIDs: streamIDs, smmuV2: smmuV2 == true))
    }
}
