import Bus

/// `struct iommu_dma_msi_page` (drivers/iommu/dma-iommu.c): one doorbell page mapped into a
/// domain. A class because the v6.14 `msi_desc->iommu_cookie` points at it.
public final class IOMMUDMAMSIPage: CustomStringConvertible {
    /// `iova`: where devices of the domain write to reach `physical`.
    public let iova: UInt64
    /// `phys`: the doorbell page (the ITS translation page), granule aligned.
    public let physical: UInt64

    init(iova: UInt64, physical: UInt64) {
        self.iova = iova
        self.physical = physical
    }

    public var description: String { "msi page iova \(Hex.format(iova)) -> pa \(Hex.format(physical))" }
}

/// `struct iommu_dma_cookie` (dma-iommu.c): what a DMA or DMA-FQ domain carries for the DMA API
/// — the IOVA allocator, the doorbell pages already mapped, and in lazy mode the flush queue.
public final class IOMMUDMACookie {
    /// `cookie->iovad`.
    public let iovad: IOVADomain
    /// `cookie->msi_page_list`. Linux adds at the head (`list_add`) and searches from the head,
    /// so the newest page is first; kept in that order here.
    public internal(set) var msiPages: [IOMMUDMAMSIPage] = []
    /// `cookie->fq_domain` with its flush queue: non-nil in DMA-FQ (lazy) mode.
    public internal(set) var flushQueue: DMAFlushQueue?

    init(iovad: IOVADomain) { self.iovad = iovad }

    /// `cookie_msi_granule` for an IOVA cookie: the allocator's granule.
    public var msiGranule: UInt64 { iovad.granule }
}

/// `struct iommu_dma_msi_cookie` (dma-iommu.c, v6.15; `IOMMU_DMA_MSI_COOKIE` before): the
/// cookie `iommu_get_msi_cookie` puts on an UNMANAGED domain (VFIO type1) so that doorbells get
/// IOVAs from the reserved SW_MSI window: a bump allocator starting at the window base.
public final class IOMMUDMAMSICookie {
    /// `msi_iova`: the next IOVA to hand out.
    public internal(set) var nextIOVA: UInt64
    /// `msi_page_list`, newest first.
    public internal(set) var msiPages: [IOMMUDMAMSIPage] = []
    /// The base the cookie was created with (for reports).
    public let base: UInt64
    /// `cookie_msi_granule` for an MSI cookie: the kernel's `PAGE_SIZE` (not the domain's
    /// smallest page: an MSI cookie has no IOVA allocator to take a granule from).
    public let msiGranule: UInt64

    init(base: UInt64, pageSize: UInt64) {
        self.base = base
        self.nextIOVA = base
        self.msiGranule = pageSize
    }
}

/// A forked world's MSI page: its IOVA and doorbell are values.
extension IOMMUDMAMSIPage: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOMMUDMAMSIPage {
        IOMMUDMAMSIPage(iova: iova, physical: physical)
    }
}

/// A forked world's MSI cookie hands out the IOVA the original would next; its pages are copied
/// through the map (a page is shared by nothing else, but one copy each keeps identity checks
/// honest).
extension IOMMUDMAMSICookie: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOMMUDMAMSICookie {
        let copy = IOMMUDMAMSICookie(base: base, pageSize: msiGranule)
        copy.nextIOVA = nextIOVA
        copy.msiPages = map.clone(msiPages)
        return copy
    }
}

/// A forked world's DMA cookie: its own IOVA allocator (copied through the map, which the flush
/// queue's back-reference resolves to), doorbell pages and flush queue.
extension IOMMUDMACookie: WorldCloneable {
    public func clone(into map: inout CloneMap) -> IOMMUDMACookie {
        let copy = IOMMUDMACookie(iovad: map.clone(iovad))
        copy.msiPages = map.clone(msiPages)
        copy.flushQueue = map.clone(flushQueue)
        return copy
    }
}
