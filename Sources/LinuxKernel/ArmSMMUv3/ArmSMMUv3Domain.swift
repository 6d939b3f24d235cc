import Bus
import SMMUv3

/// `struct arm_smmu_domain` for a paging domain: its stage, ASID or VMID, the io-pgtable, and
/// the `iommu_domain_ops` the core calls (map, unmap, iotlb_sync, flush_iotlb_all,
/// iova_to_phys).
public final class ArmSMMUv3Domain: IOMMUDomainOperations {
    public enum Stage: Hashable, Sendable {
        /// ARM_SMMU_DOMAIN_S1 with `cd.asid`.
        case stage1(ASID)
        /// ARM_SMMU_DOMAIN_S2 with `s2_cfg.vmid`.
        case stage2(VMID)
    }

    public let stage: Stage
    public let pageTable: IOPageTableARM
    /// `smmu_domain->nest_parent`: stage 2 allocated with IOMMU_HWPT_ALLOC_NEST_PARENT.
    public let isNestParent: Bool
    unowned(safe) let driver: ArmSMMUv3Driver
    /// `smmu_domain->devices`.
    var attachedMasters: [ArmSMMUv3Master] = []

    init(driver: ArmSMMUv3Driver, stage: Stage, pageTable: IOPageTableARM, isNestParent: Bool) {
        self.driver = driver
        self.stage = stage
        self.pageTable = pageTable
        self.isNestParent = isNestParent
        pageTable.flushWalk = { [unowned self] iova, size, granule in
            // `arm_smmu_tlb_inv_walk`: non-leaf range invalidation, synchronously.
            self.invalidateRange(iova: iova, size: size, granule: granule, leaf: false)
        }
    }

    /// `iommu_pgsize` (`IOMMUPageSize.split`) for this domain's page sizes.
    func pageSize(iova: UInt64, physical: UInt64, size: UInt64) -> (size: UInt64, count: Int)? {
        IOMMUPageSize.split(bitmap: pageTable.pageSizeBitmap, iova: iova, physical: physical, size: size)
    }

    /// `iommu_map` → `arm_smmu_map_pages` → `arm_lpae_map_pages`, split by `iommu_pgsize`.
    /// On failure the part already mapped is unmapped again (`iommu_unmap` in `iommu_map`'s
    /// error path). Sizes and addresses must be aligned to the smallest page (-EINVAL).
    public func map(iova: UInt64, physical: PhysicalAddress, size: UInt64, protection: IOMMUProtection) throws(Errno) {
        try IOMMUPageSize.map(pageTable, iova: iova, physical: physical.rawValue, size: size, protection: protection) { done in
            rollBack(iova: iova, size: done)
        }
    }

    private func rollBack(iova: UInt64, size: UInt64) {
        guard size > 0 else { return }
        var gather = IOTLBGather()
        _ = unmap(iova: iova, size: size, gather: &gather)
        iotlbSync(gather)
    }

    /// `iommu_unmap` → `arm_smmu_unmap_pages` → `arm_lpae_unmap_pages`, split by
    /// `iommu_pgsize`. Each leaf unmapped is added to `gather` by `arm_smmu_tlb_inv_page_nosync`
    /// → `iommu_iotlb_gather_add_page`, which first syncs a gather it cannot extend (a
    /// different page size or a disjoint range). A queued (lazy) gather records nothing.
    public func unmap(iova: UInt64, size: UInt64, gather: inout IOTLBGather) -> UInt64 {
        var done: UInt64 = 0
        while done < size {
            guard let (pgsize, count) = pageSize(iova: iova &+ done, physical: iova &+ done, size: size - done) else { break }
            var pending = gather
            let unmapped = pageTable.unmapPages(iova: iova &+ done, pageSize: pgsize, count: count, queued: gather.queued) { page, pageSize in
                self.gatherAddPage(&pending, iova: page, size: pageSize)
            }
            gather = pending
            if unmapped == 0 { break }
            done &+= unmapped
        }
        return done
    }

    /// `iommu_iotlb_gather_add_page`.
    func gatherAddPage(_ gather: inout IOTLBGather, iova: UInt64, size: UInt64) {
        let end = iova &+ size &- 1
        let disjoint = gather.pageSize != 0 && (iova > gather.end &+ 1 || end &+ 1 < gather.start)
        if gather.pageSize != 0 && (gather.pageSize != size || disjoint) {
            iotlbSync(gather)
            let queued = gather.queued
            gather = IOTLBGather()
            gather.queued = queued
        }
        gather.pageSize = size
        gather.add(iova: iova, size: size)
    }

    /// `arm_smmu_iotlb_sync`: nothing if the gather is empty, else
    /// `arm_smmu_tlb_inv_range_domain(start, end − start + 1, pgsize, leaf)`.
    public func iotlbSync(_ gather: IOTLBGather) {
        guard gather.pageSize != 0, gather.end >= gather.start else { return }
        invalidateRange(iova: gather.start, size: gather.end - gather.start + 1, granule: gather.pageSize, leaf: true)
    }

    /// `arm_smmu_flush_iotlb_all` → `arm_smmu_tlb_inv_context`: TLBI_NH_ASID (stage 1) or
    /// TLBI_S12_VMALL (stage 2), then CMD_SYNC.
    public func flushIOTLBAll() {
        let command: Command
        switch stage {
        case .stage1(let asid): command = .tlbiNHASID(VMID(0), asid)
        case .stage2(let vmid): command = .tlbiS12VMAll(vmid)
        }
        do { try driver.issueWithSync([command]) } catch { driver.log("TLB flush failed: \(error)") }
    }

    public func iovaToPhys(_ iova: UInt64) -> PhysicalAddress? {
        pageTable.iovaToPhys(iova).map(PhysicalAddress.init)
    }

    /// `arm_smmu_tlb_inv_range_domain` → `__arm_smmu_tlb_inv_range`: TLBI_NH_VA (ASID, VMID 0)
    /// for stage 1 or TLBI_S2_IPA (VMID) for stage 2, over [iova, iova + size):
    /// - with IDR3.RIL, range commands: TG = the smallest page size (4K → 1), TTL for leaf
    ///   invalidations = 4 − (log2(granule) − 3) / (tg − 3); each command covers
    ///   NUM+1 (≤ 32) × 2^SCALE pages, SCALE = the lowest set bit of the pages left;
    ///   a non-leaf invalidation of exactly one page in the low five bits takes two (the
    ///   "SVA corner case" where NUM and SCALE would both be 0);
    /// - without RIL, one command per `granule`;
    /// then CMD_SYNC, and for a nesting parent TLBI_NH_ALL(VMID) + SYNC, because nested
    /// entries are tagged by VA.
    func invalidateRange(iova start: UInt64, size: UInt64, granule: UInt64, leaf: Bool) {
        guard size > 0, granule > 0 else { return }
        var commands: [Command] = []
        let (end, overflow) = start.addingReportingOverflow(size)
        let limit = overflow ? UInt64.max : end
        var iova = start
        if driver.features.rangeInvalidation {
            // The leaf page size, 12/14/16 → TG 1/2/3; checked in Int so an odd granule from a
            // caller-made gather cannot trap.
            let tg = min(pageTable.pageSizeBitmap.trailingZeroBitCount, 16)
            var pages = size >> UInt64(tg)
            let tgField = UInt8(truncatingIfNeeded: max(tg - 10, 0) / 2)
            var ttl: UInt8 = 0
            if leaf {
                let granuleLog = 63 - granule.leadingZeroBitCount
                let level = 4 - (granuleLog - 3) / max(tg - 3, 1)
                ttl = UInt8(truncatingIfNeeded: min(max(level, 0), 3))
            } else if pages & 31 == 1 {
                pages += 1
            }
            while iova < limit && pages > 0 {
                let scale = UInt64(pages.trailingZeroBitCount)
                let num = (pages >> scale) & 31
                let range = TLBIRangeFields(num: UInt8(truncatingIfNeeded: num &- 1), scale: UInt8(truncatingIfNeeded: scale), ttl: ttl, tg: tgField)
                commands.append(command(iova: iova, leaf: leaf, range: range))
                let covered = num << (scale + UInt64(tg))
                pages -= num << scale
                let (next, o) = iova.addingReportingOverflow(covered)
                if o { break }
                iova = next
            }
        } else {
            while iova < limit {
                commands.append(command(iova: iova, leaf: leaf, range: .none))
                let (next, o) = iova.addingReportingOverflow(granule)
                if o { break }
                iova = next
            }
        }
        do {
            try driver.issueWithSync(commands)
            if isNestParent, case .stage2(let vmid) = stage {
                try driver.issueWithSync([.tlbiNHAll(vmid)])
            }
        } catch {
            driver.log("TLB invalidation failed: \(error)")
        }
    }

    private func command(iova: UInt64, leaf: Bool, range: TLBIRangeFields) -> Command {
        switch stage {
        case .stage1(let asid): .tlbiNHVA(VMID(0), asid, address: iova, leaf: leaf, range: range)
        case .stage2(let vmid): .tlbiS2IPA(vmid, ipa: iova, leaf: leaf, range: range)
        }
    }
}

extension ArmSMMUv3Driver {
    /// `arm_smmu_domain_alloc_paging_flags` + `arm_smmu_domain_finalise`:
    /// - `.nestParent` → stage 2 (needs both stages: -EOPNOTSUPP otherwise);
    /// - else stage 1 when the SMMU has it, else stage 2;
    /// - stage 1: ASID from the lowest free in [1, 2^asid_bits − 1] (`arm_smmu_asid_xa`),
    ///   io-pgtable ARM_64_LPAE_S1 with ias = 48 (52 with IDR5.VAX, capped at VA_BITS 48),
    ///   oas = smmu->ias;
    /// - stage 2: VMID from [1, 2^vmid_bits − 1] (`ida_alloc_range`), ARM_64_LPAE_S2 with
    ///   ias = smmu->ias, oas = smmu->oas;
    /// - pgsize_bitmap from io-pgtable, aperture [0, 2^ias − 1].
    /// The core sets the domain's final type (DMA, DMA-FQ, unmanaged); it starts unmanaged.
    public func allocatePagingDomain(for device: Device, flags: DomainAllocationFlags) throws(Errno) -> IOMMUDomain {
        let useStage2: Bool
        if flags.contains(.nestParent) {
            guard features.nesting else { throw .EOPNOTSUPP }
            useStage2 = true
        } else {
            useStage2 = !features.stage1
        }
        let stage: ArmSMMUv3Domain.Stage
        let table: IOPageTableARM
        if useStage2 {
            guard let vmid = vmidAllocator.allocate(limit: (1 << features.vmidBits) - 1) else { throw .ENOSPC }
            do {
                table = try IOPageTableARM(kernel: kernel, format: .stage2, inputBits: features.inputAddressBits,
                                           outputBits: features.outputAddressBits, smmuPageSizes: features.pageSizeBitmap)
            } catch {
                vmidAllocator.free(vmid)
                throw error
            }
            stage = .stage2(VMID(UInt16(vmid)))
        } else {
            guard let asid = asidAllocator.allocate(limit: (1 << features.asidBits) - 1) else { throw .ENOSPC }
            do {
                table = try IOPageTableARM(kernel: kernel, format: .stage1, inputBits: min(features.vax52 ? 52 : 48, 48),
                                           outputBits: features.inputAddressBits, smmuPageSizes: features.pageSizeBitmap)
            } catch {
                asidAllocator.free(asid)
                throw error
            }
            stage = .stage1(ASID(UInt16(asid)))
        }
        let smmuDomain = ArmSMMUv3Domain(driver: self, stage: stage, pageTable: table, isNestParent: flags.contains(.nestParent))
        let domain = IOMMUDomain(type: .unmanaged, driver: self, operations: smmuDomain, pageSizeBitmap: table.pageSizeBitmap,
                                 apertureStart: 0, apertureEnd: (UInt64(1) << UInt64(table.inputBits)) &- 1, id: kernel.makeObjectID())
        domain.isNestParent = flags.contains(.nestParent)
        domain.driverData = smmuDomain
        return domain
    }

    /// `arm_smmu_domain_free_paging`: the ASID or VMID is released (after TLBI_NH_ASID /
    /// TLBI_S12_VMALL, as `arm_smmu_domain_free_paging` does for S1 via the ASID's last user).
    public func freePagingDomain(_ domain: IOMMUDomain) {
        guard let smmuDomain = domain.driverData as? ArmSMMUv3Domain, smmuDomain.driver === self else { return }
        smmuDomain.flushIOTLBAll()
        switch smmuDomain.stage {
        case .stage1(let asid): asidAllocator.free(Int(asid.rawValue))
        case .stage2(let vmid): vmidAllocator.free(Int(vmid.rawValue))
        }
    }
}
