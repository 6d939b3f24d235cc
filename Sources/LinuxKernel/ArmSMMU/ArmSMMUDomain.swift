import Bus
import SMMUv2

/// `struct arm_smmu_domain` with its context bank (`struct arm_smmu_cfg`): stage, bank, ASID or
/// VMID, the io-pgtable, and the `iommu_domain_ops` (map, unmap, iotlb_sync, flush_iotlb_all,
/// iova_to_phys) with the TLB operations of `arm_smmu_s1_tlb_ops` / `arm_smmu_s2_tlb_ops_v2`.
public final class ArmSMMUDomain: IOMMUDomainOperations {
    public enum Stage: Hashable, Sendable {
        /// ARM_SMMU_DOMAIN_S1, `cfg->asid` = the bank index.
        case stage1(asid: UInt16)
        /// ARM_SMMU_DOMAIN_S2, `cfg->vmid` = the bank index + 1.
        case stage2(vmid: UInt16)
    }

    public let stage: Stage
    /// `cfg->cbndx`.
    public let contextBank: Int
    /// `cfg->fmt`.
    public let format: ArmSMMUContextFormat
    /// `cfg->irptndx`: the bank's own index on version 2, the round-robin pick on version 1.
    public let interruptIndex: Int
    public let pageTable: IOPageTableARM
    unowned(safe) let driver: ArmSMMUDriver

    init(driver: ArmSMMUDriver, stage: Stage, contextBank: Int, format: ArmSMMUContextFormat = .aarch64,
         interruptIndex: Int = 0, pageTable: IOPageTableARM) {
        self.driver = driver
        self.stage = stage
        self.contextBank = contextBank
        self.format = format
        self.interruptIndex = interruptIndex
        self.pageTable = pageTable
        pageTable.flushWalk = { [unowned self] iova, size, granule in
            if self.usesVersion1Stage2Operations {
                self.flushIOTLBAll()
            } else {
                self.invalidateRange(iova: iova, size: size, granule: granule, leaf: false)
            }
        }
    }

    /// `arm_smmu_s2_tlb_ops_v1` (a stage-2 domain on a version 1 SMMU): every flush is
    /// TLBIVMID. Its `tlb_flush_walk` (`arm_smmu_tlb_inv_walk_s2_v1`) is
    /// `arm_smmu_tlb_inv_context_s2` and its `tlb_add_page` (`arm_smmu_tlb_add_page_s2_v1`)
    /// writes TLBIVMID alone, leaving the sync to `arm_smmu_iotlb_sync`, which syncs globally
    /// for it ("On MMU-401 at least, the cost of firing off multiple TLBIVMIDs appears almost
    /// negligible").
    var usesVersion1Stage2Operations: Bool {
        guard driver.version.isVersion1, case .stage2 = stage else { return false }
        return true
    }

    /// `iommu_map` → `arm_smmu_map_pages` → `arm_lpae_map_pages`, split by `iommu_pgsize`; what
    /// was mapped is unmapped again on failure.
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

    /// `iommu_unmap` → `arm_smmu_unmap_pages` → `arm_lpae_unmap_pages`; each leaf is added to
    /// `gather` (`arm_smmu_tlb_add_page`, which for stage 1 queues a TLBIVAL at once —
    /// `arm_smmu_tlb_add_page_s1` — and leaves the sync to `iotlb_sync`).
    public func unmap(iova: UInt64, size: UInt64, gather: inout IOTLBGather) -> UInt64 {
        var done: UInt64 = 0
        while done < size {
            guard let (pgsize, count) = IOMMUPageSize.split(bitmap: pageTable.pageSizeBitmap, iova: iova &+ done,
                                                           physical: iova &+ done, size: size - done) else { break }
            var pending = gather
            let unmapped = pageTable.unmapPages(iova: iova &+ done, pageSize: pgsize, count: count, queued: gather.queued) { page, pageSize in
                pending.pageSize = pageSize
                pending.add(iova: page, size: pageSize)
            }
            gather = pending
            if unmapped == 0 { break }
            done &+= unmapped
        }
        return done
    }

    /// `arm_smmu_iotlb_sync`: the gathered range, by page (leaf), then the context sync; for a
    /// version 1 stage-2 domain the TLBIVMID its `tlb_add_page` wrote, then the global sync
    /// (`smmu->version == ARM_SMMU_V2 || stage == S1` picks the context sync, else global).
    public func iotlbSync(_ gather: IOTLBGather) {
        guard gather.pageSize != 0, gather.end >= gather.start else { return }
        if usesVersion1Stage2Operations {
            flushIOTLBAll()
            return
        }
        invalidateRange(iova: gather.start, size: gather.end - gather.start + 1, granule: gather.pageSize, leaf: true)
    }

    /// `arm_smmu_flush_iotlb_all` → `tlb_flush_all`: `arm_smmu_tlb_inv_context_s1` (CB_TLBIASID
    /// with the ASID, then the bank's TLBSYNC) or `arm_smmu_tlb_inv_context_s2` (TLBIVMID, then
    /// the global sync).
    public func flushIOTLBAll() {
        do {
            switch stage {
            case .stage1(let asid):
                try driver.write32(driver.cb(contextBank, SMMUv2Register.cbTLBIASID), UInt32(asid))
                try driver.syncContext(contextBank)
            case .stage2(let vmid):
                try driver.write32(driver.gr0(SMMUv2Register.tlbiVMID), UInt32(vmid))
                try driver.syncGlobal()
            }
        } catch {
            driver.log("TLB flush failed: \(error)")
        }
    }

    public func iovaToPhys(_ iova: UInt64) -> PhysicalAddress? {
        pageTable.iovaToPhys(iova).map(PhysicalAddress.init)
    }

    /// `arm_smmu_tlb_inv_range_s1` (AArch64: `(iova >> 12) | asid << 48` to CB_TLBIVAL for
    /// leaves, CB_TLBIVA otherwise, one 64-bit write per granule; AArch32: `(iova >> 12) << 12 |
    /// asid`, a 32-bit write) or `arm_smmu_tlb_inv_range_s2` (`iova >> 12` to CB_TLBIIPAS2L /
    /// CB_TLBIIPAS2, 64-bit for AArch64, else 32-bit), then `arm_smmu_tlb_sync_context`.
    func invalidateRange(iova start: UInt64, size: UInt64, granule: UInt64, leaf: Bool) {
        guard size > 0, granule > 0 else { return }
        let (end, overflow) = start.addingReportingOverflow(size)
        let limit = overflow ? UInt64.max : end
        do {
            var iova = start
            while iova < limit {
                switch stage {
                case .stage1(let asid):
                    let register = leaf ? SMMUv2Register.cbTLBIVAL : SMMUv2Register.cbTLBIVA
                    if format == .aarch64 {
                        try driver.write64(driver.cb(contextBank, register), iova >> 12 | UInt64(asid) << 48)
                    } else {
                        try driver.write32(driver.cb(contextBank, register), UInt32(truncatingIfNeeded: iova & ~0xFFF) | UInt32(asid & 0xFF))
                    }
                case .stage2:
                    let register = leaf ? SMMUv2Register.cbTLBIIPAS2L : SMMUv2Register.cbTLBIIPAS2
                    if format == .aarch64 {
                        try driver.write64(driver.cb(contextBank, register), iova >> 12)
                    } else {
                        try driver.write32(driver.cb(contextBank, register), UInt32(truncatingIfNeeded: iova >> 12))
                    }
                }
                let (next, o) = iova.addingReportingOverflow(granule)
                if o { break }
                iova = next
            }
            try driver.syncContext(contextBank)
        } catch {
            driver.log("TLB invalidation failed: \(error)")
        }
    }
}

extension ArmSMMUDriver {
    /// `domain_alloc_paging` (`arm_smmu_domain_alloc_paging`) with the context set up as
    /// `arm_smmu_init_domain_context` does it at the first attach (the model does it at
    /// allocation, for the allocating device's SMMU, so the domain's operations exist from the
    /// start; with one SMMU per device the result is the same):
    /// - stage 1 unless the SMMU lacks it (stage 2 then); "you can't actually request stage-2";
    /// - a free context bank from `num_s2_context_banks` (stage 1) or 0 (stage 2) up
    ///   (`__arm_smmu_alloc_bitmap`, -ENOSPC when none is left);
    /// - the context format (`ArmSMMUFeatures.contextFormat`, -EINVAL without one);
    /// - stage 1: ASID = bank, io-pgtable ARM_64_LPAE_S1 with ias = `va_size` (capped at VA_BITS
    ///   48), oas = `ipa_size`; stage 2: VMID = bank + 1, ARM_64_LPAE_S2 with ias = `ipa_size`,
    ///   oas = `pa_size`; the AArch32 long-descriptor format takes ARM_32_LPAE_S1 (ias ≤ 32,
    ///   oas ≤ 40) or ARM_32_LPAE_S2 (both ≤ 40), which io-pgtable-arm.c builds as the 64-bit
    ///   format with the page sizes cut to SZ_4K | SZ_2M | SZ_1G (`arm_32_lpae_alloc_pgtable_s1/s2`);
    /// - version 1: `cfg->irptndx` the next of the context interrupts in turn;
    /// - aperture [0, 2^ias − 1]; then `arm_smmu_init_context_bank` + `arm_smmu_write_context_bank`.
    /// Any allocation flag (IOMMU_HWPT_ALLOC_NEST_PARENT included) is -EOPNOTSUPP: arm-smmu.c
    /// implements `domain_alloc_paging`, not `domain_alloc_paging_flags`.
    public func allocatePagingDomain(for device: Device, flags: DomainAllocationFlags) throws(Errno) -> IOMMUDomain {
        guard flags.isEmpty else {
            throw kernel.refusals.refuse(.EOPNOTSUPP, in: "__iommu_paging_domain_alloc_flags", for: device.name,
                                         because: "\(name) is an SMMUv2 driven by arm-smmu, whose ops have no domain_alloc_paging_flags: no nesting parent and no nested domain (Linux has no nested translation for SMMUv2)")
        }
        let stage1 = features.stage1
        guard let format = features.contextFormat else { throw .EINVAL }
        let start = stage1 ? features.stage2ContextBanks : 0
        guard let bank = (start..<contextMap.count).first(where: { !contextMap[$0] }) else { throw .ENOSPC }
        let table: IOPageTableARM
        let lpae32Sizes: UInt64 = 1 << 12 | 1 << 21 | 1 << 30
        switch (stage1, format) {
        case (true, .aarch64):
            table = try IOPageTableARM(kernel: kernel, format: .stage1, inputBits: min(features.vaSize, 48),
                                       outputBits: features.ipaSize, smmuPageSizes: features.pageSizeBitmap)
        case (true, .aarch32Long):
            table = try IOPageTableARM(kernel: kernel, format: .stage1, inputBits: min(features.vaSize, 32),
                                       outputBits: min(features.ipaSize, 40), smmuPageSizes: features.pageSizeBitmap & lpae32Sizes)
        case (false, .aarch64):
            table = try IOPageTableARM(kernel: kernel, format: .stage2, inputBits: features.ipaSize,
                                       outputBits: features.paSize, smmuPageSizes: features.pageSizeBitmap)
        case (false, .aarch32Long):
            table = try IOPageTableARM(kernel: kernel, format: .stage2, inputBits: min(features.ipaSize, 40),
                                       outputBits: min(features.paSize, 40), smmuPageSizes: features.pageSizeBitmap & lpae32Sizes)
        }
        contextMap[bank] = true
        var interruptIndex = bank
        if version.isVersion1 {
            irptndxCounter &+= 1
            interruptIndex = irptndxCounter % contextInterrupts
        }
        let stage: ArmSMMUDomain.Stage = stage1 ? .stage1(asid: UInt16(bank)) : .stage2(vmid: UInt16(bank + 1))
        let smmuDomain = ArmSMMUDomain(driver: self, stage: stage, contextBank: bank, format: format,
                                       interruptIndex: interruptIndex, pageTable: table)
        do { try writeContextBank(bank, context: smmuDomain) } catch {
            contextMap[bank] = false
            throw error
        }
        let domain = IOMMUDomain(type: .unmanaged, driver: self, operations: smmuDomain, pageSizeBitmap: table.pageSizeBitmap,
                                 apertureStart: 0, apertureEnd: (UInt64(1) << UInt64(table.inputBits)) &- 1, id: kernel.makeObjectID())
        domain.driverData = smmuDomain
        return domain
    }

    /// `arm_smmu_domain_free`: `arm_smmu_destroy_domain_context` — the bank's SCTLR cleared
    /// (`arm_smmu_write_context_bank` with no cfg), its TLB entries flushed, the bank freed.
    public func freePagingDomain(_ domain: IOMMUDomain) {
        guard let smmuDomain = domain.driverData as? ArmSMMUDomain, smmuDomain.driver === self else { return }
        smmuDomain.flushIOTLBAll()
        try? writeContextBank(smmuDomain.contextBank, context: nil)
        if smmuDomain.contextBank < contextMap.count { contextMap[smmuDomain.contextBank] = false }
    }

    /// `arm_smmu_init_context_bank` + `arm_smmu_write_context_bank`: an unassigned bank only
    /// gets SCTLR = 0; otherwise CBA2R (version 2 only: VA64 for the AArch64 format, VMID16),
    /// CBAR (TYPE; version 1: IRPTNDX[31:24]; stage 1: BPSHCFG[9:8] = ARM_SMMU_CBAR_S1_BPSHCFG_NSH
    /// (3), MEMATTR[15:12] = WB (0xF); stage 2: VMID[7:0] without VMID16), TCR2 (stage 1 on
    /// version 2: PASIZE = io-pgtable's IPS, SEP_UPSTREAM[17:15] = 7, AS[4] for AArch64), TCR
    /// (stage 1: TG0 4K, SH0 inner, ORGN0/IRGN0 WBWA, T0SZ, EPD1, and EAE[31] for AArch32 long;
    /// stage 2: VTCR with RES1[31], PS, SL0), TTBR0 (| ASID << 48) and TTBR1 (ASID only),
    /// MAIR0/1 (stage 1), then SCTLR = CFIE | CFRE | AFE | TRE | M (| S1_ASIDPNE for stage 1).
    func writeContextBank(_ n: Int, context: ArmSMMUDomain?) throws(Errno) {
        guard let context else {
            try write32(cb(n, SMMUv2Register.cbSCTLR), 0)
            return
        }
        let table = context.pageTable
        let stage1: Bool
        let vmid: UInt16
        let asid: UInt16
        switch context.stage {
        case .stage1(let a): stage1 = true; asid = a; vmid = 0
        case .stage2(let v): stage1 = false; asid = 0; vmid = v
        }
        if !version.isVersion1 {
            var cba2r: UInt32 = context.format == .aarch64 ? 1 : 0   // VA64: ARM_SMMU_CTX_FMT_AARCH64
            if features.vmid16 { cba2r |= UInt32(vmid) << 16 }
            try write32(gr1(SMMUv2Register.cba2rBase &+ UInt64(n) * 4), cba2r)
        }
        var cbar: UInt32 = (stage1 ? SMMUv2Field.cbarTypeS1BypassS2 : SMMUv2Field.cbarTypeS2) << 16
        if version.isVersion1 { cbar |= UInt32(truncatingIfNeeded: context.interruptIndex & 0xFF) << 24 }
        if stage1 {
            cbar |= 3 << 8 | 0xF << 12
        } else if !features.vmid16 {
            cbar |= UInt32(vmid & 0xFF)
        }
        try write32(gr1(SMMUv2Register.cbarBase &+ UInt64(n) * 4), cbar)
        let walkAttributes: UInt32 = 3 << 12 | 1 << 10 | 1 << 8   // SH0 inner, ORGN0/IRGN0 WBWA
        let t0sz = UInt32(truncatingIfNeeded: table.tableSize) & 0x3F
        if stage1 {
            let aarch64 = context.format == .aarch64
            if !version.isVersion1 {
                let tcr2 = UInt32(truncatingIfNeeded: table.physicalSizeField) & 7 | 7 << 15 | (aarch64 ? 1 << 4 : 0)
                try write32(cb(n, SMMUv2Register.cbTCR2), tcr2)
            }
            try write32(cb(n, SMMUv2Register.cbTCR), walkAttributes | t0sz | 1 << 23 | (aarch64 ? 0 : 1 << 31))
            try write64(cb(n, SMMUv2Register.cbTTBR0), table.root.rawValue | UInt64(asid) << 48)
            try write64(cb(n, SMMUv2Register.cbTTBR1), UInt64(asid) << 48)
            try write32(cb(n, SMMUv2Register.cbMAIR0), UInt32(truncatingIfNeeded: IOPageTableARM.mair))
            try write32(cb(n, SMMUv2Register.cbMAIR1), UInt32(truncatingIfNeeded: IOPageTableARM.mair >> 32))
        } else {
            let vtcr = 1 << 31 | (UInt32(truncatingIfNeeded: table.physicalSizeField) & 7) << 16 | walkAttributes
                | (UInt32(truncatingIfNeeded: table.startLevelField) & 3) << 6 | t0sz
            try write32(cb(n, SMMUv2Register.cbTCR), vtcr)
            try write64(cb(n, SMMUv2Register.cbTTBR0), table.root.rawValue)
        }
        var sctlr: UInt32 = 1 << 6 | 1 << 5 | 1 << 2 | 1 << 1 | 1
        if stage1 { sctlr |= 1 << 12 }
        try write32(cb(n, SMMUv2Register.cbSCTLR), sctlr)
    }
}
