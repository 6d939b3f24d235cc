import Bus

extension IOMMUSubsystem {
    /// `__IOMMU_DOMAIN_PAGING`: unmanaged, DMA and DMA-FQ domains have page tables the core may
    /// map into.
    static func isPagingType(_ type: IOMMUDomainType) -> Bool {
        type == .unmanaged || type == .dma || type == .dmaFQ
    }

    /// The smallest page size of a domain (`1 << __ffs(pgsize_bitmap)`), nil for none.
    static func minimumPageSize(_ domain: IOMMUDomain) -> UInt64? {
        domain.pageSizeBitmap == 0 ? nil : UInt64(1) << UInt64(domain.pageSizeBitmap.trailingZeroBitCount)
    }

    /// `iommu_map(domain, iova, paddr, size, prot, gfp)`: -EINVAL for a non-paging domain or an
    /// iova/paddr/size not aligned to the smallest page size (Linux prints "unaligned: iova …"),
    /// -ENODEV without page-table operations; the driver's `map_pages` does the rest. On a
    /// failure the driver has left nothing mapped (Linux unmaps the part it did map).
    public func map(_ domain: IOMMUDomain, iova: UInt64, physical: UInt64, size: UInt64,
                    protection: IOMMUProtection) throws(Errno) {
        guard Self.isPagingType(domain.type) else { throw .EINVAL }
        guard let ops = domain.operations, let minimum = Self.minimumPageSize(domain) else { throw .ENODEV }
        guard (iova | physical | size) & (minimum - 1) == 0, size != 0 else {
            kernel.log.log("iommu", "unaligned: iova \(Hex.format(iova)) pa \(Hex.format(physical)) size \(Hex.format(size, minDigits: 1)) min_pagesz \(Hex.format(minimum, minDigits: 1))")
            throw .EINVAL
        }
        guard iova.addingReportingOverflow(size - 1).overflow == false,
              physical.addingReportingOverflow(size - 1).overflow == false else { throw .EINVAL }
        try ops.map(iova: iova, physical: PhysicalAddress(physical), size: size, protection: protection)
    }

    /// `__iommu_unmap`: the driver's `unmap_pages` until `size` bytes are gone or it unmaps
    /// nothing more; the range goes into `gather`. Returns the bytes unmapped (0 for a
    /// non-paging domain or an unaligned request, as Linux).
    public func unmapFast(_ domain: IOMMUDomain, iova: UInt64, size: UInt64, gather: inout IOTLBGather) -> UInt64 {
        guard Self.isPagingType(domain.type), let ops = domain.operations,
              let minimum = Self.minimumPageSize(domain), (iova | size) & (minimum - 1) == 0 else { return 0 }
        var unmapped: UInt64 = 0
        while unmapped < size {
            let (at, overflow) = iova.addingReportingOverflow(unmapped)
            if overflow { break }
            let n = ops.unmap(iova: at, size: size - unmapped, gather: &gather)
            if n == 0 { break }
            unmapped &+= n
        }
        return unmapped
    }

    /// `iommu_unmap`: unmap then `iommu_iotlb_sync` (strict: the TLBI and CMD_SYNC happen now).
    @discardableResult
    public func unmap(_ domain: IOMMUDomain, iova: UInt64, size: UInt64) -> UInt64 {
        var gather = IOTLBGather()
        let unmapped = unmapFast(domain, iova: iova, size: size, gather: &gather)
        domain.operations?.iotlbSync(gather)
        return unmapped
    }

    /// `iommu_iova_to_phys`: 0 for an identity domain means "same address"; here nil.
    public func iovaToPhys(_ domain: IOMMUDomain, _ iova: UInt64) -> UInt64? {
        if domain.type == .identity { return iova }
        return domain.operations?.iovaToPhys(iova)?.rawValue
    }
}
