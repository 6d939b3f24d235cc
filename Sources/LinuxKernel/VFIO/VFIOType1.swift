import Bus

/// `struct vfio_iommu` (drivers/vfio/vfio_iommu_type1.c): the IOMMU backend of a container set
/// to VFIO_TYPE1v2_IOMMU — its unmanaged domains, the groups attached to each, the user's DMA
/// mappings (`dma_list`) and the IOVA ranges a mapping may use (`iova_list`: the domains'
/// apertures less every group's reserved regions).
public final class VFIOType1 {
    /// `struct vfio_dma`: one VFIO_IOMMU_MAP_DMA.
    public struct DMA: Hashable, Sendable {
        public var iova: UInt64
        public var vaddr: UInt64
        public var size: UInt64
        public var protection: IOMMUProtection
        public var last: UInt64 { iova &+ (size &- 1) }
    }

    /// `struct vfio_domain`: one unmanaged domain and the groups attached to it.
    public final class Domain {
        public let domain: IOMMUDomain
        public internal(set) var groups: [IOMMUGroup]
        init(domain: IOMMUDomain, group: IOMMUGroup) {
            self.domain = domain
            self.groups = [group]
        }
        /// A forked domain: the copied IOMMU domain and groups.
        init(domain: IOMMUDomain, groups: [IOMMUGroup]) {
            self.domain = domain
            self.groups = groups
        }
    }

    unowned(safe) let kernel: LinuxKernel
    unowned(safe) let process: UserProcess
    /// `iommu->v2` (TYPE1v2: unmaps must not bisect a mapping).
    public let isV2: Bool
    public internal(set) var domains: [Domain] = []
    /// Sorted by IOVA.
    public internal(set) var dmaList: [DMA] = []
    /// `iommu->iova_list`: allowed IOVA ranges, sorted. Empty until the first group attaches.
    public internal(set) var iovaList: [ClosedRange<UInt64>] = []
    /// `iommu->pgsize_bitmap`: PAGE_MASK at open (`vfio_iommu_type1_open`), then the domains'
    /// page sizes.
    public internal(set) var pageSizeBitmap: UInt64
    /// `iommu->dma_avail`: `dma_entry_limit`, the module parameter's default U16_MAX.
    public internal(set) var dmaAvailable = 65535

    // `struct vfio_iommu_type1_dma_map` / `_unmap` flags (include/uapi/linux/vfio.h).
    public static let mapFlagRead: UInt32 = 1 << 0
    public static let mapFlagWrite: UInt32 = 1 << 1
    public static let mapFlagVAddr: UInt32 = 1 << 2
    public static let unmapFlagGetDirtyBitmap: UInt32 = 1 << 0
    public static let unmapFlagAll: UInt32 = 1 << 1
    public static let unmapFlagVAddr: UInt32 = 1 << 2

    init(kernel: LinuxKernel, process: UserProcess, v2: Bool) {
        self.kernel = kernel
        self.process = process
        self.isV2 = v2
        self.pageSizeBitmap = ~(kernel.pageSize &- 1)
    }

    /// `vfio_find_dma(iommu, start, size)`: a mapping overlapping [start, start+size).
    func findDMA(_ start: UInt64, _ size: UInt64) -> Int? {
        guard size > 0 else {
            return dmaList.firstIndex { $0.iova <= start && start <= $0.last }
        }
        let last = start &+ (size - 1)
        return dmaList.firstIndex { $0.iova <= last && start <= $0.last }
    }

    func minimumPageSize() -> UInt64 {
        pageSizeBitmap == 0 ? kernel.pageSize : UInt64(1) << UInt64(pageSizeBitmap.trailingZeroBitCount)
    }

    // MARK: attach (vfio_iommu_type1_attach_group)

    /// `vfio_iommu_type1_attach_group(iommu_data, iommu_group, VFIO_IOMMU)`, in the kernel's
    /// order: EINVAL for a group already in the container; an unmanaged paging domain from the
    /// group's first device (`iommu_paging_domain_alloc`) attached to the group; the aperture
    /// must not conflict with existing mappings (EINVAL); the group's reserved regions must not
    /// overlap a mapping (EINVAL) and are cut out of the IOVA list (EINVAL if nothing is left);
    /// `vfio_iommu_has_sw_msi` finds the SW_MSI base unless a hardware MSI region exists; then
    /// the isolation check: EPERM unless `iommu_group_has_isolated_msi` or
    /// `allow_unsafe_interrupts` ("No interrupt remapping support. Use the module param
    /// "allow_unsafe_interrupts" to enable VFIO IOMMU support on this platform"). An existing
    /// domain of the same IOMMU is reused (the new one is freed); otherwise the existing
    /// mappings are replayed into the new domain and, with an SW_MSI window, it gets
    /// `iommu_get_msi_cookie(domain, base)` — so its first doorbell lands at the window base.
    /// On failure the group is detached again (back to its blocking domain) and nothing else
    /// changes.
    func attachGroup(_ group: IOMMUGroup) throws(Errno) {
        guard !domains.contains(where: { $0.groups.contains { $0 === group } }) else { throw .EINVAL }
        guard let first = kernel.devices.first(where: { $0.iommu?.group === group }) else { throw .EIO }
        let domain = try kernel.iommu.allocateDomain(for: first)
        try kernel.iommu.attachGroup(domain, to: group)
        do throws(Errno) {
            // vfio_iommu_aper_conflict.
            if apertureConflicts(start: domain.apertureStart, end: domain.apertureEnd) { throw .EINVAL }
            let regions = kernel.iommu.reservedRegions(group: group)
            // vfio_iommu_resv_conflict.
            for region in regions where region.type != .directRelaxable && findDMA(region.start, region.length) != nil {
                throw .EINVAL
            }
            var copy = iovaList
            Self.apertureResize(&copy, start: domain.apertureStart, end: domain.apertureEnd)
            try Self.reservedExclude(&copy, regions: regions)
            let softwareMSIBase = Self.hasSoftwareMSI(regions)
            if !kernel.configuration.allowUnsafeInterrupts, !kernel.iommu.groupHasIsolatedMSI(group) {
                kernel.log.log("vfio", "vfio_iommu_type1_attach_group: No interrupt remapping support.  Use the module param \"allow_unsafe_interrupts\" to enable VFIO IOMMU support on this platform")
                throw .EPERM
            }
            // Try to match an existing compatible domain (same iommu_ops).
            for existing in domains where existing.domain.driver === domain.driver {
                kernel.iommu.detachGroup(domain, from: group)
                do throws(Errno) {
                    try kernel.iommu.attachGroup(existing.domain, to: group)
                    existing.groups.append(group)
                    iovaList = copy
                    return
                } catch {
                    try kernel.iommu.attachGroup(domain, to: group)
                }
            }
            try replay(into: domain)
            if let base = softwareMSIBase {
                do throws(Errno) {
                    try kernel.iommu.getMSICookie(domain, base: base)
                } catch {
                    if error != .ENODEV {
                        for dma in dmaList { kernel.iommu.unmap(domain, iova: dma.iova, size: dma.size) }
                        throw error
                    }
                }
            }
            domains.append(Domain(domain: domain, group: group))
            updatePageSizeBitmap()
            iovaList = copy
        } catch {
            kernel.iommu.detachGroup(domain, from: group)
            throw error
        }
    }

    /// `vfio_iommu_type1_detach_group`: the group leaves its domain; the last group of the last
    /// domain takes every mapping with it (`vfio_iommu_unmap_unpin_all`); the IOVA list is
    /// rebuilt from the remaining groups' regions.
    func detachGroup(_ group: IOMMUGroup) {
        guard let index = domains.firstIndex(where: { $0.groups.contains { $0 === group } }) else { return }
        let entry = domains[index]
        kernel.iommu.detachGroup(entry.domain, from: group)
        entry.groups.removeAll { $0 === group }
        if entry.groups.isEmpty {
            if domains.count == 1 {
                for dma in dmaList { kernel.iommu.unmap(entry.domain, iova: dma.iova, size: dma.size) }
                dmaList.removeAll()
                dmaAvailable = 65535
            }
            kernel.iommu.putCookie(entry.domain)
            domains.remove(at: index)
            updatePageSizeBitmap()
        }
        // vfio_iommu_aper_expand + vfio_iommu_resv_refresh.
        var start: UInt64 = 0
        var end = UInt64.max
        for d in domains {
            start = max(start, d.domain.apertureStart)
            end = min(end, d.domain.apertureEnd)
        }
        var list: [ClosedRange<UInt64>] = domains.isEmpty ? [] : [start...end]
        let regions = domains.flatMap { $0.groups.flatMap { kernel.iommu.reservedRegions(group: $0) } }
        if !list.isEmpty, (try? Self.reservedExclude(&list, regions: regions)) != nil { iovaList = list } else if domains.isEmpty { iovaList = [] }
    }

    /// `vfio_iommu_has_sw_msi`: the SW_MSI base, unless a hardware MSI region exists ("The
    /// presence of any 'real' MSI regions should take precedence over the software-managed one").
    static func hasSoftwareMSI(_ regions: [ReservedRegion]) -> UInt64? {
        var base: UInt64?
        for region in regions {
            if region.type == .msi { return nil }
            if region.type == .swMSI { base = region.start }
        }
        return base
    }

    /// `vfio_iommu_aper_conflict`.
    func apertureConflicts(start: UInt64, end: UInt64) -> Bool {
        guard let first = iovaList.first, let last = iovaList.last else { return false }
        if start > last.upperBound || end < first.lowerBound { return true }
        if start > first.lowerBound, findDMA(first.lowerBound, start - first.lowerBound) != nil { return true }
        if end < last.upperBound, findDMA(end + 1, last.upperBound - end) != nil { return true }
        return false
    }

    /// `vfio_iommu_aper_resize`.
    static func apertureResize(_ list: inout [ClosedRange<UInt64>], start: UInt64, end: UInt64) {
        if list.isEmpty {
            list = start <= end ? [start...end] : []
            return
        }
        list = list.compactMap { node in
            let lower = max(node.lowerBound, start)
            let upper = min(node.upperBound, end)
            return lower <= upper ? lower...upper : nil
        }
    }

    /// `vfio_iommu_resv_exclude`: cut every region but DIRECT_RELAXABLE out of the list; EINVAL
    /// when nothing is left.
    static func reservedExclude(_ list: inout [ClosedRange<UInt64>], regions: [ReservedRegion]) throws(Errno) {
        for region in regions where region.type != .directRelaxable && region.length > 0 {
            let start = region.start
            let end = region.start &+ (region.length - 1)
            var next: [ClosedRange<UInt64>] = []
            for node in list {
                if start > node.upperBound || end < node.lowerBound {
                    next.append(node)
                    continue
                }
                if start > node.lowerBound { next.append(node.lowerBound...(start - 1)) }
                if end < node.upperBound { next.append((end + 1)...node.upperBound) }
            }
            list = next
        }
        if list.isEmpty { throw .EINVAL }
    }

    /// `vfio_update_pgsize_bitmap`: the intersection of the domains' page sizes, sub-PAGE_SIZE
    /// sizes hidden behind PAGE_SIZE ("Pinning code uses that granularity while iommu driver can
    /// use the sub-PAGE_SIZE size to map the buffer").
    func updatePageSizeBitmap() {
        let pageMask = ~(kernel.pageSize &- 1)
        var bitmap = UInt64.max
        for d in domains { bitmap &= d.domain.pageSizeBitmap }
        if bitmap & ~pageMask != 0 {
            bitmap &= pageMask
            bitmap |= kernel.pageSize
        }
        pageSizeBitmap = domains.isEmpty ? pageMask : bitmap
    }

    /// `vfio_iommu_replay`: every existing mapping into a new domain.
    func replay(into domain: IOMMUDomain) throws(Errno) {
        var done: [DMA] = []
        for dma in dmaList {
            do throws(Errno) {
                try mapPinned(dma, into: domain)
                done.append(dma)
            } catch {
                for d in done { kernel.iommu.unmap(domain, iova: d.iova, size: d.size) }
                throw error
            }
        }
    }

    /// Pins the mapping's user pages and maps them, contiguous runs at once, with
    /// `prot | IOMMU_CACHE` (`vfio_pin_map_dma` → `vfio_iommu_map`, in PAGE_SIZE units).
    func mapPinned(_ dma: DMA, into domain: IOMMUDomain) throws(Errno) {
        let page = kernel.pageSize
        let pages = try process.pin(vaddr: dma.vaddr, length: dma.size)
        var index = 0
        var mapped: UInt64 = 0
        while index < pages.count {
            var run = 1
            while index + run < pages.count, pages[index + run].rawValue == pages[index].rawValue &+ UInt64(run) * page { run += 1 }
            do throws(Errno) {
                try kernel.iommu.map(domain, iova: dma.iova &+ UInt64(index) * page, physical: pages[index].rawValue,
                                     size: UInt64(run) * page, protection: dma.protection.union(.cache))
            } catch {
                if mapped > 0 { kernel.iommu.unmap(domain, iova: dma.iova, size: mapped) }
                throw error
            }
            mapped &+= UInt64(run) * page
            index += run
        }
    }

    // MARK: VFIO_IOMMU_MAP_DMA / VFIO_IOMMU_UNMAP_DMA

    /// `vfio_iommu_type1_map_dma` + `vfio_dma_do_map`, in the kernel's order: argsz below
    /// `offsetofend(size)` (32) or a flag outside READ|WRITE|VADDR → EINVAL; neither READ nor
    /// WRITE (without VADDR) → EINVAL; zero size or size/iova/vaddr not aligned to the smallest
    /// page size → EINVAL; IOVA or vaddr wrap → EINVAL; overlap with an existing mapping →
    /// EEXIST; no entries left → ENOSPC; a range outside the IOVA list (e.g. the SW_MSI window)
    /// → EINVAL; unbacked user memory → EFAULT. VADDR (the live-update vaddr change) needs a
    /// mapping invalidated by UNMAP_FLAG_VADDR, which the model never has, so it answers as
    /// Linux does then: ENOENT without a mapping at that range, EINVAL with one.
    func mapDMA(argsz: UInt32 = 32, flags: UInt32, vaddr: UInt64, iova: UInt64, size: UInt64) throws(Errno) {
        guard argsz >= 32, flags & ~(Self.mapFlagRead | Self.mapFlagWrite | Self.mapFlagVAddr) == 0 else { throw .EINVAL }
        var protection: IOMMUProtection = []
        if flags & Self.mapFlagWrite != 0 { protection.insert(.write) }
        if flags & Self.mapFlagRead != 0 { protection.insert(.read) }
        let setVAddr = flags & Self.mapFlagVAddr != 0
        if (!protection.isEmpty && setVAddr) || (protection.isEmpty && !setVAddr) { throw .EINVAL }
        let pageSize = minimumPageSize()
        guard size != 0, (size | iova | vaddr) & (pageSize - 1) == 0 else { throw .EINVAL }
        guard !iova.addingReportingOverflow(size - 1).overflow, !vaddr.addingReportingOverflow(size - 1).overflow else { throw .EINVAL }
        let existing = findDMA(iova, size)
        if setVAddr { throw existing == nil ? .ENOENT : .EINVAL }
        if existing != nil { throw .EEXIST }
        guard dmaAvailable > 0 else { throw .ENOSPC }
        // vfio_iommu_iova_dma_valid.
        let last = iova &+ (size - 1)
        guard iovaList.isEmpty || iovaList.contains(where: { iova >= $0.lowerBound && last <= $0.upperBound }) else { throw .EINVAL }
        let dma = DMA(iova: iova, vaddr: vaddr, size: size, protection: protection)
        var done: [IOMMUDomain] = []
        for d in domains {
            do throws(Errno) {
                try mapPinned(dma, into: d.domain)
                done.append(d.domain)
            } catch {
                for domain in done { kernel.iommu.unmap(domain, iova: iova, size: size) }
                throw error
            }
        }
        dmaAvailable -= 1
        dmaList.append(dma)
        dmaList.sort { $0.iova < $1.iova }
    }

    /// `vfio_iommu_type1_unmap_dma` + `vfio_dma_do_unmap`: returns the bytes unmapped. EINVAL
    /// for an unaligned iova or size, a zero size without UNMAP_FLAG_ALL, a wrapping range, ALL
    /// with a non-zero iova or size, and (v2) a range that bisects a mapping at either end. A
    /// range holding no mapping unmaps 0 bytes successfully.
    func unmapDMA(argsz: UInt32 = 24, flags: UInt32, iova: UInt64, size: UInt64) throws(Errno) -> UInt64 {
        guard argsz >= 24, flags & ~(Self.unmapFlagGetDirtyBitmap | Self.unmapFlagAll | Self.unmapFlagVAddr) == 0 else { throw .EINVAL }
        // Dirty tracking and vaddr invalidation are not modelled.
        if flags & (Self.unmapFlagGetDirtyBitmap | Self.unmapFlagVAddr) != 0 { throw .EINVAL }
        let pageSize = minimumPageSize()
        guard iova & (pageSize - 1) == 0 else { throw .EINVAL }
        let all = flags & Self.unmapFlagAll != 0
        var span = size
        if all {
            guard iova == 0, size == 0 else { throw .EINVAL }
            span = UInt64.max
        } else {
            guard size != 0, size & (pageSize - 1) == 0, !iova.addingReportingOverflow(size - 1).overflow else { throw .EINVAL }
        }
        let last = all ? UInt64.max : iova &+ (span - 1)
        if isV2, !all {
            if let i = findDMA(iova, 1), dmaList[i].iova != iova { throw .EINVAL }
            if let i = findDMA(last, 0), dmaList[i].last != last { throw .EINVAL }
        }
        var unmapped: UInt64 = 0
        var index = 0
        while index < dmaList.count {
            let dma = dmaList[index]
            if dma.iova > last { break }
            if dma.last < iova || (!isV2 && iova > dma.iova) {
                index += 1
                continue
            }
            for d in domains { kernel.iommu.unmap(d.domain, iova: dma.iova, size: dma.size) }
            dmaList.remove(at: index)
            dmaAvailable += 1
            unmapped &+= dma.size
        }
        return unmapped
    }
}
