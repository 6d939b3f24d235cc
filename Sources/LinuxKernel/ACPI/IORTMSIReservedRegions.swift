import Bus
import Firmware

extension ArmSMMUv3Driver {
    /// `iort_iommu_get_resv_regions(dev, head)` (called from `iommu_dma_get_resv_regions` for a
    /// device whose IOMMU is not described by a device-tree node): the HiSilicon MSI regions,
    /// then the RMRs of the device's StreamIDs.
    func iortReservedRegions(for device: Device) -> [ReservedRegion] {
        guard let walker = kernel.iortWalker, let fwspec = device.iommu, let smmu = node.iortNode,
              walker.iort.nodes.indices.contains(smmu) else { return [] }
        let ids = fwspec.streamIDs.map(\.rawValue)
        return iortMSIReservedRegions(walker, smmu: smmu, ids: ids) + iortRMRReservedRegions(walker, smmu: smmu, device: device, ids: ids)
    }

    /// `iort_iommu_msi_get_resv_regions`: only for an SMMUv3 node of model HiSilicon Hi161x
    /// (`iort_get_msi_resv_iommu`; DEN 0049E.f §3.1.1.7 Model 1, whose ITS doorbell bypasses
    /// the SMMU). The first StreamID that `iort_node_map_id(smmu, id, IORT_MSI_TYPE)` maps to
    /// an ITS group picks the group ("relies on HW topologies where a given PCI or named
    /// component maps its IDs to only one ITS group"); each of its ITSs whose base
    /// `iort_find_its_base` knows (the ITSs the GICv3 driver registered by MADT GIC ITS ID)
    /// gets an IOMMU_RESV_MSI region [base + 64 KiB, + 64 KiB), the GITS_TRANSLATER page, prot
    /// IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO. An unknown ITS ID is skipped (Linux returns
    /// -ENODEV after adding the others, which its caller ignores).
    func iortMSIReservedRegions(_ walker: IORTWalker, smmu: Int, ids: [UInt32]) -> [ReservedRegion] {
        guard case .smmuV3(let description) = walker.iort.nodes[smmu].kind,
              description.model == IORTSMMUv3.Model.hisiliconHi161x else { return [] }
        var group: IORTITSGroup?
        for id in ids {
            let (found, _) = walker.mapID(from: smmu, id: id, typeMask: IORTWalker.msiTypeMask)
            if let node = found, case .itsGroup(let g) = walker.iort.nodes[node].kind { group = g; break }
        }
        guard let group else { return [] }
        var regions: [ReservedRegion] = []
        for identifier in group.itsIdentifiers {
            guard let its = kernel.itsDrivers.first(where: { $0.node.translationID == identifier }) else { continue }
            let (start, overflow) = its.base.rawValue.addingReportingOverflow(0x1_0000)
            guard !overflow else { continue }
            regions.append(ReservedRegion(start: start, length: 0x1_0000, protection: [.write, .noExec, .mmio], type: .msi))
        }
        return regions
    }
}
