import Bus

/// The DMA API (`dma_map_page_attrs`, `dma_unmap_page_attrs`, `dma_alloc_coherent`) as a
/// driver sees it: through dma-iommu (`iommu_dma_map_page` …) when the device's default domain
/// is a DMA domain, else dma-direct (bus address = physical address).
public final class DMAMapping {
    unowned(safe) let kernel: LinuxKernel
    init(kernel: LinuxKernel) { self.kernel = kernel }

    /// `enum dma_data_direction`.
    public enum Direction: String, Hashable, Sendable {
        case bidirectional, toDevice, fromDevice, none
    }

    /// `dma_info_to_prot(dir, coherent, attrs)`: IOMMU_CACHE for a coherent device, READ for
    /// to-device, WRITE for from-device, both for bidirectional, nothing for DMA_NONE.
    public static func protection(_ direction: Direction, coherent: Bool, privileged: Bool = false) -> IOMMUProtection {
        var prot: IOMMUProtection = coherent ? [.cache] : []
        if privileged { prot.insert(.priv) }
        switch direction {
        case .bidirectional: return prot.union([.read, .write])
        case .toDevice: return prot.union(.read)
        case .fromDevice: return prot.union(.write)
        case .none: return []
        }
    }

    /// `dev_is_dma_coherent`: the host bridge's `dma-coherent`.
    func isCoherent(_ device: Device) -> Bool {
        guard let pci = device.pci, pci.hostBridge >= 0, pci.hostBridge < kernel.topology.pcieHostBridges.count else { return false }
        return kernel.topology.pcieHostBridges[pci.hostBridge].dmaCoherent
    }

    /// The DMA domain whose cookie the DMA API uses, when the device goes through dma-iommu.
    func dmaIOMMUDomain(_ device: Device) -> (IOMMUDomain, IOMMUDMACookie)? {
        guard kernel.iommu.state(of: device)?.usesDMAIOMMU == true,
              let domain = kernel.iommu.dmaDomain(for: device), case .dmaIOVA(let cookie) = domain.cookie else { return nil }
        return (domain, cookie)
    }

    /// `dma_map_page_attrs` → `iommu_dma_map_page` → `__iommu_dma_map`: the buffer's offset in
    /// its granule is kept, the span rounded to granules gets an IOVA under the DMA mask and is
    /// mapped with `dma_info_to_prot`; the result is the IOVA plus the offset. Without
    /// dma-iommu, dma-direct returns the physical address if the device can reach it.
    /// Failure is `DMA_MAPPING_ERROR`, reported as ENOMEM (no IOVA, or the mask excludes the
    /// buffer) or the map's errno.
    public func map(device: Device, physical: PhysicalAddress, size: UInt64, direction: Direction) throws(Errno) -> IOVA {
        guard size > 0 else { throw .EINVAL }
        guard let (domain, cookie) = dmaIOMMUDomain(device) else {
            let (last, overflow) = physical.rawValue.addingReportingOverflow(size - 1)
            guard !overflow, last <= device.dmaMask else { throw .ENOMEM }
            return IOVA(physical.rawValue)
        }
        let iovad = cookie.iovad
        let offset = iovad.offset(physical.rawValue)
        guard let total = iovad.align(size &+ offset), total >= size else { throw .ENOMEM }
        let iova = kernel.iommu.allocateIOVA(domain, size: total, dmaLimit: device.dmaMask, device: device)
        guard iova != 0 else { throw .ENOMEM }
        do {
            try kernel.iommu.map(domain, iova: iova, physical: physical.rawValue &- offset, size: total,
                                 protection: Self.protection(direction, coherent: isCoherent(device)))
        } catch {
            kernel.iommu.freeIOVA(domain, iova: iova, size: total, queued: false)
            throw error
        }
        return IOVA(iova &+ offset)
    }

    /// `dma_unmap_page_attrs` → `iommu_dma_unmap_page` → `__iommu_dma_unmap`: unmap the granule
    /// span; strict mode syncs the IOTLB now (TLBI + CMD_SYNC) and frees the IOVA; DMA-FQ
    /// (`cookie->fq_domain` set) leaves the invalidation to the flush queue and queues the IOVA.
    /// Returns the bytes unmapped (Linux WARNs when it is not the whole span).
    @discardableResult
    public func unmap(device: Device, iova: IOVA, size: UInt64, direction: Direction = .bidirectional) -> UInt64 {
        guard let (domain, cookie) = dmaIOMMUDomain(device) else { return size }
        let iovad = cookie.iovad
        let offset = iovad.offset(iova.rawValue)
        let start = iova.rawValue &- offset
        guard let total = iovad.align(size &+ offset) else { return 0 }
        var gather = IOTLBGather()
        gather.queued = cookie.flushQueue != nil
        let unmapped = kernel.iommu.unmapFast(domain, iova: start, size: total, gather: &gather)
        if unmapped != total {
            kernel.log.log(device.name, "WARNING: unmapped \(Hex.format(unmapped, minDigits: 1)) of \(Hex.format(total, minDigits: 1)) at \(Hex.format(start))")
        }
        if !gather.queued { domain.operations?.iotlbSync(gather) }
        kernel.iommu.freeIOVA(domain, iova: start, size: total, queued: gather.queued)
        return unmapped
    }

    /// `dma_alloc_coherent` → `iommu_dma_alloc`: zeroed kernel pages (PAGE_ALIGN(size), PAGE_SIZE
    /// aligned) mapped bidirectionally under the coherent mask (the device's mask here).
    /// Returns the CPU's physical address and the device's address.
    public func allocateCoherent(device: Device, size: UInt64) throws(Errno) -> (physical: PhysicalAddress, iova: IOVA) {
        guard size > 0, let pageAligned = kernel.pageAlign(size) else { throw .EINVAL }
        let physical = try kernel.pages.allocate(bytes: pageAligned, alignment: kernel.pageSize)
        let iova = try map(device: device, physical: physical, size: pageAligned, direction: .bidirectional)
        return (physical, iova)
    }

    /// `dma_free_coherent`: unmap (the pages themselves are not reused by this kernel model).
    public func freeCoherent(device: Device, iova: IOVA, size: UInt64) {
        guard let pageAligned = kernel.pageAlign(size) else { return }
        unmap(device: device, iova: iova, size: pageAligned)
    }

    /// The flush queue's timer firing (`fq_flush_timeout`) for the device's DMA domain. There is
    /// no wall clock: tests and scenarios call this where 10 ms would have passed.
    public func flushQueueTimeout(device: Device) {
        dmaIOMMUDomain(device)?.1.flushQueue?.timeout()
    }
}
