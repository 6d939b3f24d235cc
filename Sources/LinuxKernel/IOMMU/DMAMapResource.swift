import Bus

/// `dma_map_resource` / `dma_unmap_resource` (kernel/dma/mapping.c): the DMA API's way for a
/// driver to give its device an address for a physical range that is NOT RAM (another
/// device's BAR, a doorbell). Through dma-iommu this is `iommu_dma_map_resource` →
/// `__iommu_dma_map(dev, phys, size, dma_info_to_prot(dir, false, attrs) | IOMMU_MMIO,
/// dma_get_mask(dev))`: an IOVA from the domain's allocator and an `iommu_map` — no check
/// that the address is, or is not, RAM (v6.10–v6.16: only `WARN_ON_ONCE(!dev->dma_mask)`;
/// the `pfn_valid` refusal exists only with CONFIG_DMA_API_DEBUG in the v6.17+ form, which
/// routes through `dma_map_phys(…, DMA_ATTR_MMIO)`). So a guest driver can point a stage-1
/// IOVA at any IPA, inside its RAM or not; containment is the host's stage 2.
extension DMAMapping {
    /// `dma_map_resource(dev, phys, size, dir, 0)`. Through dma-iommu: the physical address's
    /// offset in its granule is kept, the granule span gets an IOVA under the DMA mask and is
    /// mapped `dma_info_to_prot(dir, coherent: false) | IOMMU_MMIO`. Without dma-iommu
    /// (`dma_direct_map_resource`): the address itself, if the device can reach it
    /// (`dma_capable`), else the mapping fails. Failure is DMA_MAPPING_ERROR, reported as
    /// ENOMEM, or the map's errno.
    public func mapResource(device: Device, physical: UInt64, size: UInt64, direction: Direction) throws(Errno) -> IOVA {
        guard size > 0 else { throw .EINVAL }
        guard let (domain, cookie) = dmaIOMMUDomain(device) else {
            let (last, overflow) = physical.addingReportingOverflow(size - 1)
            guard !overflow, last <= device.dmaMask else { throw .ENOMEM }
            return IOVA(physical)
        }
        let iovad = cookie.iovad
        let offset = iovad.offset(physical)
        guard let total = iovad.align(size &+ offset), total >= size else { throw .ENOMEM }
        let iova = kernel.iommu.allocateIOVA(domain, size: total, dmaLimit: device.dmaMask, device: device)
        guard iova != 0 else { throw .ENOMEM }
        do {
            try kernel.iommu.map(domain, iova: iova, physical: physical &- offset, size: total,
                                 protection: Self.protection(direction, coherent: false).union(.mmio))
        } catch {
            kernel.iommu.freeIOVA(domain, iova: iova, size: total, queued: false)
            throw error
        }
        return IOVA(iova &+ offset)
    }

    /// `dma_unmap_resource` → `iommu_dma_unmap_resource` → `__iommu_dma_unmap`, as
    /// `unmap(device:iova:size:)`.
    @discardableResult
    public func unmapResource(device: Device, iova: IOVA, size: UInt64, direction: Direction) -> UInt64 {
        unmap(device: device, iova: iova, size: size, direction: direction)
    }
}
