import Bus
import Machine
import SMMUv2
import SMMUv3

/// SMMUv2 (MMU-500) bring-up the way Linux's `arm_smmu_device_reset` orders it
/// (drivers/iommu/arm/arm-smmu/arm-smmu.c, v6.14-v7.0): clear sGFSR, every SMR invalid and S2CR
/// fault, every context bank disabled with its FSR cleared, TLBIALLH + TLBIALLNSNH, a global
/// sync, then sCR0 with CLIENTPD clear, GFRE/GFIE/GCFGFRE/GCFGFIE set and USFCFG (unmatched
/// streams fault, `disable_bypass`).
extension BareMetal {
    func smmuV2(_ index: Int) throws(Failure) -> (SMMUv2, PhysicalAddress) {
        guard index >= 0, index < machine.smmuV2s.count else { throw .noSuchComponent("SMMUv2 \(index)") }
        let description = machine.topology.otherIOMMUs[machine.smmuV2Descriptions[index]]
        guard let region = description.regions.first else { throw .noSuchComponent("SMMUv2 \(index)'s registers") }
        return (machine.smmuV2s[index], region.base)
    }

    func gr0(_ base: PhysicalAddress, _ offset: UInt64) -> PhysicalAddress { register(base, offset) }
    func gr1(_ smmu: SMMUv2, _ base: PhysicalAddress, _ offset: UInt64) -> PhysicalAddress {
        register(base, smmu.configuration.pageSize &+ offset)
    }
    func contextBank(_ smmu: SMMUv2, _ base: PhysicalAddress, _ n: Int, _ offset: UInt64) -> PhysicalAddress {
        register(base, (smmu.configuration.globalPages &+ UInt64(n)) &* smmu.configuration.pageSize &+ offset)
    }

    /// Resets SMMUv2 `index` as above.
    public func resetSMMUv2(_ index: Int = 0) throws(Failure) {
        let (smmu, base) = try smmuV2(index)
        let r = SMMUv2Register.self
        try write(gr0(base, r.sGFSR), 4, 0xFFFF_FFFF)
        for n in 0..<smmu.smr.count {
            try write(gr0(base, r.smrBase &+ UInt64(n) * 4), 4, 0)
            try write(gr0(base, r.s2crBase &+ UInt64(n) * 4), 4, UInt64(SMMUv2Field.s2crTypeFault) << 16)
        }
        for n in 0..<smmu.contextBanks.count {
            try write(contextBank(smmu, base, n, r.cbSCTLR), 4, 0)
            try write(contextBank(smmu, base, n, r.cbFSR), 4, 0xFFFF_FFFF)
        }
        try write(gr0(base, r.tlbiAllH), 4, 0)
        try write(gr0(base, r.tlbiAllNSNH), 4, 0)
        try write(gr0(base, r.sTLBGSYNC), 4, 0)
        try write(gr0(base, r.sCR0), 4, 1 << 1 | 1 << 2 | 1 << 4 | 1 << 5 | 1 << 10)
    }

    /// SMR group `group` matches `streamID` (with SMR.MASK `mask`) and its S2CR bypasses.
    public func bypassSMMUv2Stream(_ streamID: StreamID, mask: UInt32 = 0, group: Int = 0, smmu index: Int = 0) throws(Failure) {
        let (_, base) = try smmuV2(index)
        let r = SMMUv2Register.self
        try write(gr0(base, r.s2crBase &+ UInt64(group) * 4), 4, UInt64(SMMUv2Field.s2crTypeBypass) << 16)
        try write(gr0(base, r.smrBase &+ UInt64(group) * 4), 4, 1 << 31 | UInt64(mask) << 16 | UInt64(streamID.rawValue))
    }

    /// A stage-1 AArch64 context bank `bank` for `streamID` (SMR/S2CR group `group`), as Linux's
    /// `arm_smmu_init_context_bank` + `arm_smmu_write_context_bank` program one: CBAR.TYPE =
    /// stage 1 with stage 2 bypass (VMID from the bank), CBA2R.VA64, TCR with T0SZ = 64 − input
    /// size, 4 KiB TG0, inner-shareable write-back walks and EPD1, TCR2.PASIZE from IDR2.OAS,
    /// TTBR0 = table | ASID << 48, MAIR0/1 = io-pgtable's, SCTLR = M | CFRE | CFIE | AFE | TRE.
    /// Returns the page-table builder for the bank's tables.
    public func enableSMMUv2Stage1(streamID: StreamID, mask: UInt32 = 0, group: Int = 0, bank: Int = 0, asid: UInt16 = 1,
                                   inputSize: Int = 48, smmu index: Int = 0) throws(Failure) -> PageTableBuilder {
        let (smmu, base) = try smmuV2(index)
        let r = SMMUv2Register.self
        let geometry = WalkGeometry(granule: .size4K, inputSize: inputSize,
                                    startLevel: WalkGeometry.stage1StartLevel(granule: .size4K, inputSize: inputSize))
        let builder: PageTableBuilder
        do { builder = try PageTableBuilder(stage: .stage1, geometry: geometry, bus: machine.bus, allocator: allocator) } catch { throw .outOfTableMemory }
        let tcr = UInt64(64 - inputSize) | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 23
        try write(gr1(smmu, base, r.cbarBase &+ UInt64(bank) * 4), 4, UInt64(SMMUv2Field.cbarTypeS1BypassS2) << 16 | UInt64(bank & 0xFF) &+ 1)
        try write(gr1(smmu, base, r.cba2rBase &+ UInt64(bank) * 4), 4, 1)
        try write(contextBank(smmu, base, bank, r.cbTCR2), 4, UInt64(smmu.configuration.outputAddressSize))
        try write(contextBank(smmu, base, bank, r.cbTCR), 4, tcr)
        try write(contextBank(smmu, base, bank, r.cbTTBR0), 8, builder.root | UInt64(asid) << 48)
        try write(contextBank(smmu, base, bank, r.cbTTBR1), 8, UInt64(asid) << 48)
        try write(contextBank(smmu, base, bank, r.cbMAIR0), 4, 0xF404_FF44 & 0xFFFF_FFFF)
        try write(contextBank(smmu, base, bank, r.cbMAIR1), 4, 0)
        try write(contextBank(smmu, base, bank, r.cbSCTLR), 4, 1 | 1 << 1 | 1 << 2 | 1 << 5 | 1 << 6)
        try write(gr0(base, r.s2crBase &+ UInt64(group) * 4), 4, UInt64(bank & 0xFF))
        try write(gr0(base, r.smrBase &+ UInt64(group) * 4), 4, 1 << 31 | UInt64(mask) << 16 | UInt64(streamID.rawValue))
        return builder
    }

    /// A stage-2 context bank `bank` for `streamID`, as Linux's `arm_smmu_init_context_bank` +
    /// `arm_smmu_write_context_bank` program an ARM_SMMU_DOMAIN_S2 context with the AArch64
    /// format (what `arm_smmu_init_domain_context` picks on a stage-2-only SMMU such as the
    /// MMU-401, whose ARM_SMMU_V1_64K brings ARM_SMMU_FEAT_FMT_AARCH64_64K): CBA2R.VA64 on
    /// version 2 only (version 1 has no CBA2R); CBAR.TYPE = stage 2 with VMID = bank + 1
    /// (IRPTNDX 0 on version 1, the first of its context interrupts); VTCR = RES1[31] | PS |
    /// SH0 inner | ORGN0/IRGN0 WBWA | SL0 | T0SZ (`arm_smmu_lpae_vtcr`; a version 1 SMMU reads it
    /// in its AArch32 form); TTBR0 = the VTTBR; SCTLR = M | TRE | AFE | CFRE | CFIE. The tables
    /// are io-pgtable's stage-2 layout for the SMMU's IAS (`linuxStage2`).
    public func enableSMMUv2Stage2(streamID: StreamID, mask: UInt32 = 0, group: Int = 0, bank: Int = 0, smmu index: Int = 0) throws(Failure) -> PageTableBuilder {
        let (smmu, base) = try smmuV2(index)
        let r = SMMUv2Register.self
        let inputSize = SMMUv2Configuration.addressBits(smmu.configuration.inputAddressSize) ?? 40
        let outputField = UInt64(min(max(smmu.configuration.outputAddressSize, 0), 5))
        let builder: PageTableBuilder
        do { builder = try PageTableBuilder(stage2InputSize: inputSize, granule: .size4K, bus: machine.bus, allocator: allocator) } catch { throw .outOfTableMemory }
        let sl0 = UInt64(WalkGeometry.sl0(granule: .size4K, startLevel: builder.geometry.startLevel))
        let vtcr = UInt64(1) << 31 | outputField << 16 | 3 << 12 | 1 << 10 | 1 << 8 | (sl0 & 3) << 6 | UInt64(64 - inputSize)
        let vmid = UInt64(bank & 0xFF) &+ 1
        if smmu.configuration.architectureVersion >= 2 {
            try write(gr1(smmu, base, r.cba2rBase &+ UInt64(bank) * 4), 4, 1)
        }
        try write(gr1(smmu, base, r.cbarBase &+ UInt64(bank) * 4), 4, UInt64(SMMUv2Field.cbarTypeS2) << 16 | (vmid & 0xFF))
        try write(contextBank(smmu, base, bank, r.cbTCR), 4, vtcr)
        try write(contextBank(smmu, base, bank, r.cbTTBR0), 8, builder.root)
        try write(contextBank(smmu, base, bank, r.cbSCTLR), 4, 1 | 1 << 1 | 1 << 2 | 1 << 5 | 1 << 6)
        try write(gr0(base, r.s2crBase &+ UInt64(group) * 4), 4, UInt64(bank & 0xFF))
        try write(gr0(base, r.smrBase &+ UInt64(group) * 4), 4, 1 << 31 | UInt64(mask) << 16 | UInt64(streamID.rawValue))
        return builder
    }

    /// A stage-1 AArch32 long-descriptor context bank `bank` for `streamID`, as Linux programs
    /// an ARM_SMMU_CTX_FMT_AARCH32_L stage-1 context (io-pgtable ARM_32_LPAE_S1, ias 32):
    /// CBA2R = 0 on version 2 (VA64 clear; version 1 has no CBA2R), CBAR.TYPE = stage 1 with
    /// stage 2 bypass, BPSHCFG NSH, MEMATTR WB; TTBCR = EAE[31] | EPD1 | SH0 inner | ORGN0/IRGN0
    /// WBWA | T0SZ 32 (64 − ias, of which the AArch32 form reads T0SZ[2:0] = 0: the whole 32-bit
    /// VA); TTBR0 = table | ASID << 48, TTBR1 = ASID << 48; MAIR0/1 = io-pgtable's; SCTLR =
    /// M | TRE | AFE | CFRE | CFIE | ASIDPNE. The tables start at level 1 (four entries).
    public func enableSMMUv2Stage1AArch32(streamID: StreamID, mask: UInt32 = 0, group: Int = 0, bank: Int = 0, asid: UInt16 = 1,
                                          smmu index: Int = 0) throws(Failure) -> PageTableBuilder {
        let (smmu, base) = try smmuV2(index)
        let r = SMMUv2Register.self
        let geometry = WalkGeometry(granule: .size4K, inputSize: 32, startLevel: 1)
        let builder: PageTableBuilder
        do { builder = try PageTableBuilder(stage: .stage1, geometry: geometry, bus: machine.bus, allocator: allocator) } catch { throw .outOfTableMemory }
        if smmu.configuration.architectureVersion >= 2 {
            try write(gr1(smmu, base, r.cba2rBase &+ UInt64(bank) * 4), 4, 0)
        }
        try write(gr1(smmu, base, r.cbarBase &+ UInt64(bank) * 4), 4, UInt64(SMMUv2Field.cbarTypeS1BypassS2) << 16 | 3 << 8 | 0xF << 12)
        try write(contextBank(smmu, base, bank, r.cbTCR), 4, 1 << 31 | 1 << 23 | 3 << 12 | 1 << 10 | 1 << 8 | 32)
        try write(contextBank(smmu, base, bank, r.cbTTBR0), 8, builder.root | UInt64(asid & 0xFF) << 48)
        try write(contextBank(smmu, base, bank, r.cbTTBR1), 8, UInt64(asid & 0xFF) << 48)
        try write(contextBank(smmu, base, bank, r.cbMAIR0), 4, 0xF404_FF44 & 0xFFFF_FFFF)
        try write(contextBank(smmu, base, bank, r.cbMAIR1), 4, 0)
        try write(contextBank(smmu, base, bank, r.cbSCTLR), 4, 1 | 1 << 1 | 1 << 2 | 1 << 5 | 1 << 6 | 1 << 12)
        try write(gr0(base, r.s2crBase &+ UInt64(group) * 4), 4, UInt64(bank & 0xFF))
        try write(gr0(base, r.smrBase &+ UInt64(group) * 4), 4, 1 << 31 | UInt64(mask) << 16 | UInt64(streamID.rawValue))
        return builder
    }
}
