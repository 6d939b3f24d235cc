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
}
