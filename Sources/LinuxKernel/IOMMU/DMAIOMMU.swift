import Bus

/// The dma-iommu layer (drivers/iommu/dma-iommu.c): cookies, the domain's IOVA space, and the
/// MSI doorbell pages.
extension IOMMUSubsystem {
    /// `iommu_get_dma_cookie(domain)`: -EEXIST when the domain already has a cookie of any
    /// kind. The IOVA domain itself is set up by the first device's `iommu_dma_init_domain`.
    func getDMACookie(_ domain: IOMMUDomain) throws(Errno) {
        guard case .none = domain.cookie else { throw .EEXIST }
        let order = domain.pageSizeBitmap == 0 ? kernel.pageShift : domain.pageSizeBitmap.trailingZeroBitCount
        // start_pfn 0 marks "not initialised" (iommu_dma_init_domain tests iovad->start_pfn).
        domain.cookie = .dmaIOVA(IOMMUDMACookie(iovad: IOVADomain(granule: UInt64(1) << UInt64(order), startPFN: 0)))
    }

    /// `iommu_get_msi_cookie(domain, base)`: give an UNMANAGED domain (VFIO type1's) an MSI
    /// cookie whose doorbell pages are handed out upwards from `base` (the SW_MSI window).
    /// -EINVAL for any other domain type, -EEXIST if the domain already has a cookie.
    public func getMSICookie(_ domain: IOMMUDomain, base: UInt64) throws(Errno) {
        guard domain.type == .unmanaged else { throw .EINVAL }
        guard case .none = domain.cookie else { throw .EEXIST }
        domain.cookie = .dmaMSI(IOMMUDMAMSICookie(base: base, pageSize: kernel.pageSize))
    }

    /// `iommu_put_dma_cookie` / `iommu_put_msi_cookie`: drop the cookie (the domain is being
    /// freed; its mappings go with its page tables).
    public func putCookie(_ domain: IOMMUDomain) {
        switch domain.cookie {
        case .dmaIOVA, .dmaMSI: domain.cookie = .none
        case .none, .iommufd: break
        }
    }

    /// `iommu_dma_init_domain(domain, dev)`: the first device of a DMA domain sets the IOVA
    /// space up — granule = smallest page size, `base_pfn` = max(1, aperture start), the flush
    /// queue for DMA-FQ, then `iova_reserve_iommu_regions`. Later devices only check that they
    /// agree ("Incompatible range for DMA domain", -EFAULT).
    func initDMADomain(_ domain: IOMMUDomain, device: Device) throws(Errno) {
        guard case .dmaIOVA(var cookie) = domain.cookie else { throw .EINVAL }
        let order = domain.pageSizeBitmap == 0 ? kernel.pageShift : domain.pageSizeBitmap.trailingZeroBitCount
        let granule = UInt64(1) << UInt64(order)
        // The device's DMA window is base 0 … limit ~0 (no dma-ranges on the host bridges we
        // model); force_aperture is set by arm-smmu-v3, so the window must meet the aperture.
        let base: UInt64 = 0, limit = UInt64.max
        guard base <= domain.apertureEnd, limit >= domain.apertureStart else {
            kernel.log.log("iommu", "specified DMA range outside IOMMU capability")
            throw .EFAULT
        }
        let basePFN = max(1, domain.apertureStart >> UInt64(order))
        if cookie.iovad.startPFN != 0 {
            guard cookie.iovad.granule == granule, cookie.iovad.startPFN == basePFN else {
                kernel.log.log("iommu", "Incompatible range for DMA domain")
                throw .EFAULT
            }
            return
        }
        cookie = IOMMUDMACookie(iovad: IOVADomain(granule: granule, startPFN: basePFN))
        domain.cookie = .dmaIOVA(cookie)
        if domain.type == .dmaFQ, let ops = domain.operations {
            // iommu_dma_init_fq; arm-smmu-v3 reports IOMMU_CAP_DEFERRED_FLUSH.
            cookie.flushQueue = DMAFlushQueue(iovad: cookie.iovad) { ops.flushIOTLBAll() }
        }
        try reserveIOMMURegions(cookie: cookie, device: device)
    }

    /// `iova_reserve_iommu_regions`: the host bridge's memory windows for a PCI device
    /// (`iova_reserve_pci_windows`), then every reserved region of the device except SW_MSI
    /// ("We ARE the software that manages these!"); a hardware MSI region also becomes identity
    /// MSI pages (`cookie_init_hw_msi_region`).
    func reserveIOMMURegions(cookie: IOMMUDMACookie, device: Device) throws(Errno) {
        let iovad = cookie.iovad
        if let pci = device.pci {
            reservePCIWindows(hostBridge: pci.hostBridge, iovad: iovad)
        }
        for region in reservedRegions(for: device) where region.type != .swMSI {
            guard region.length > 0 else { continue }
            iovad.reserve(pfnLo: iovad.pfn(region.start), pfnHi: iovad.pfn(region.end))
            if region.type == .msi {
                initHardwareMSIRegion(cookie: cookie, start: region.start, end: region.start &+ region.length)
            }
        }
    }

    /// `iova_reserve_pci_windows`: every IORESOURCE_MEM window of the host bridge, as a bus
    /// address (CPU address − offset = the window's PCI address), is kept out of the IOVA space,
    /// because a peer-to-peer-looking write there would go to the BAR, not to the IOMMU.
    ///
    /// The second half of the Linux function reserves the gaps between `dma-ranges`; the
    /// host bridges we model have no `dma-ranges` (the topology does not carry them), so
    /// there is nothing to reserve there. Not modelled: stated here so nobody assumes it is.
    func reservePCIWindows(hostBridge: Int, iovad: IOVADomain) {
        guard hostBridge >= 0, hostBridge < kernel.topology.pcieHostBridges.count else { return }
        for window in kernel.topology.pcieHostBridges[hostBridge].ranges
        where window.space == .memory32 || window.space == .memory64 {
            guard window.size > 0 else { continue }
            let (end, overflow) = window.pciAddress.addingReportingOverflow(window.size - 1)
            iovad.reserve(pfnLo: iovad.pfn(window.pciAddress), pfnHi: iovad.pfn(overflow ? .max : end))
        }
    }

    /// `cookie_init_hw_msi_region(cookie, start, end)`: one identity MSI page (iova == phys)
    /// per granule of a hardware MSI region, added at the head of the list, so
    /// `iommu_dma_get_msi_page` finds them and maps nothing.
    func initHardwareMSIRegion(cookie: IOMMUDMACookie, start: UInt64, end: UInt64) {
        let iovad = cookie.iovad
        var address = start &- iovad.offset(start)
        guard let span = iovad.align(end &- address) else { return }
        var pages = span >> iovad.shift
        while pages > 0 {
            cookie.msiPages.insert(IOMMUDMAMSIPage(iova: address, physical: address), at: 0)
            address &+= iovad.granule
            pages -= 1
        }
    }

    /// `iommu_dma_alloc_iova(domain, size, dma_limit, dev)`: an IOVA for `size` bytes (a
    /// multiple of the granule) at or below `dmaLimit`, 0 when none.
    ///
    /// An MSI cookie is a bump allocator. For an IOVA cookie: the limit is also bounded by the
    /// aperture end (force_aperture); a PCI device with a limit above 4 GiB first tries below
    /// 4 GiB (`dev->iommu->pci_32bit_workaround`, on unless `iommu.forcedac`), and when that
    /// fails it stops trying for good and logs "Using %d-bit DMA addresses"; then the whole
    /// range, flushing the range caches if needed.
    func allocateIOVA(_ domain: IOMMUDomain, size: UInt64, dmaLimit: UInt64, device: Device) -> UInt64 {
        switch domain.cookie {
        case .dmaMSI(let cookie):
            let iova = cookie.nextIOVA
            cookie.nextIOVA &+= size
            return iova
        case .dmaIOVA(let cookie):
            let iovad = cookie.iovad
            let pages = size >> iovad.shift
            guard pages > 0 else { return 0 }
            var limit = dmaLimit
            if Self.isPagingType(domain.type) { limit = min(limit, domain.apertureEnd) }
            var pfn: UInt64?
            if limit > dmaBitMask(32), usesSAC(device) {
                pfn = iovad.allocateFast(size: pages, limitPFN: dmaBitMask(32) >> iovad.shift, flushCache: false)
                if pfn == nil {
                    state(of: device)?.pci32BitWorkaround = false
                    kernel.log.log(device.name, "Using \(64 - limit.leadingZeroBitCount)-bit DMA addresses")
                }
            }
            if pfn == nil {
                pfn = iovad.allocateFast(size: pages, limitPFN: limit >> iovad.shift, flushCache: true)
            }
            return (pfn ?? 0) << iovad.shift
        case .none, .iommufd:
            return 0
        }
    }

    /// `dev_use_sac`: a PCI device tries a single-address-cycle (32-bit) IOVA first while its
    /// `pci_32bit_workaround` holds (set at `iommu_setup_dma_ops` to `!iommu_dma_forcedac`).
    func usesSAC(_ device: Device) -> Bool {
        guard device.pci != nil, let state = state(of: device) else { return false }
        return state.pci32BitWorkaround
    }

    /// `iommu_dma_free_iova(domain, iova, size, gather)`: an MSI cookie only ever frees its
    /// last allocation; a queued (lazy) unmap goes to the flush queue; else `free_iova_fast`.
    func freeIOVA(_ domain: IOMMUDomain, iova: UInt64, size: UInt64, queued: Bool) {
        switch domain.cookie {
        case .dmaMSI(let cookie):
            cookie.nextIOVA &-= size
        case .dmaIOVA(let cookie):
            let iovad = cookie.iovad
            if queued, let fq = cookie.flushQueue {
                fq.queue(pfn: iovad.pfn(iova), pages: size >> iovad.shift)
            } else {
                iovad.freeFast(pfn: iovad.pfn(iova), size: size >> iovad.shift)
            }
        case .none, .iommufd:
            break
        }
    }

    /// `iommu_dma_get_msi_page(dev, msi_addr, domain)`: the doorbell page aligned down to the
    /// cookie's granule; an existing page with that physical address is reused (every device
    /// of the domain shares it); else an IOVA is allocated under the device's DMA mask and
    /// mapped IOMMU_WRITE | IOMMU_NOEXEC | IOMMU_MMIO, and the page added at the list head.
    func msiPage(domain: IOMMUDomain, device: Device, msiAddress: UInt64) throws(Errno) -> IOMMUDMAMSIPage {
        guard let granule = domain.cookie.msiGranule else { throw .EINVAL }
        let physical = msiAddress & ~(granule &- 1)
        let existing: [IOMMUDMAMSIPage]
        switch domain.cookie {
        case .dmaIOVA(let c): existing = c.msiPages
        case .dmaMSI(let c): existing = c.msiPages
        case .none, .iommufd: throw .EINVAL
        }
        if let page = existing.first(where: { $0.physical == physical }) { return page }
        let iova = allocateIOVA(domain, size: granule, dmaLimit: device.dmaMask, device: device)
        guard iova != 0 else { throw .ENOMEM }
        do {
            try map(domain, iova: iova, physical: physical, size: granule, protection: [.write, .noExec, .mmio])
        } catch {
            freeIOVA(domain, iova: iova, size: granule, queued: false)
            throw .ENOMEM
        }
        let page = IOMMUDMAMSIPage(iova: iova, physical: physical)
        switch domain.cookie {
        case .dmaIOVA(let c): c.msiPages.insert(page, at: 0)
        case .dmaMSI(let c): c.msiPages.insert(page, at: 0)
        case .none, .iommufd: break
        }
        return page
    }

    /// `iommu_dma_sw_msi(domain, desc, msi_addr)` (v6.15): without an IOVA or MSI cookie the
    /// descriptor gets no override (shift 0); else the doorbell's MSI page and
    /// `msi_desc_set_iommu_msi_iova(desc, page->iova, ilog2(granule))`; -ENOMEM when no page.
    func swMSI(domain: IOMMUDomain, descriptor: MSIDescriptor, device: Device, msiAddress: UInt64) throws(Errno) {
        guard let granule = domain.cookie.msiGranule else {
            descriptor.setIOMMUMSIIOVA(0, shift: 0)
            return
        }
        let page: IOMMUDMAMSIPage
        do { page = try msiPage(domain: domain, device: device, msiAddress: msiAddress) } catch { throw .ENOMEM }
        descriptor.setIOMMUMSIIOVA(page.iova, shift: granule.trailingZeroBitCount)
    }
}
