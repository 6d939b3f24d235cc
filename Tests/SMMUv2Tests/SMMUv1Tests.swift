import Bus
import SMMUv3
import Testing
@testable import SMMUv2

/// SMMU architecture version 1 (IHI 0062D covers both versions): an MMU-401 as the Juno's PCIe
/// SMMU reports itself, and a generic SMMUv1 with stage 1, programmed only through registers.
/// Every context bank of a version 1 SMMU uses the AArch32 long-descriptor (VMSAv7 LPAE) formats.
@Suite("SMMUv1 registers and AArch32 long-descriptor translation (IHI 0062D, Armv7 LPAE)")
struct SMMUv1Tests {
    /// The MMU-401 in its 64 KiB window at the SMMUv2 bench's base.
    static func mmu401() throws -> SMMUv2Bench { try SMMUv2Bench(configuration: .mmu401) }

    @Test("MMU-401 ID registers: stage 2 only, 32 SMRs, 4 stage-2 banks, 40-bit IAS/OAS, AArch32 long only, no IDR2.UBS/PTFS")
    func mmu401IDRegisters() throws {
        let bench = try Self.mmu401()
        let idr0 = try bench.read32(bench.gr0(SMMUv2Register.idr0))
        #expect(idr0 >> 30 & 1 == 0)                 // S1TS
        #expect(idr0 >> 29 & 1 == 1)                 // S2TS
        #expect(idr0 >> 28 & 1 == 0)                 // NTS
        #expect(idr0 >> 27 & 1 == 1)                 // SMS
        #expect(idr0 >> 24 & 3 == 0b01)              // PTFS: AArch32 long, no short descriptor
        #expect(idr0 & 0xFF == 32)                   // NUMSMRG
        let idr1 = try bench.read32(bench.gr0(SMMUv2Register.idr1))
        #expect(idr1 >> 31 == 0)                     // PAGESIZE 4 KiB
        #expect(idr1 >> 28 & 7 == 2)                 // NUMPAGENDXB: 8 pages of global space, 64 KiB in all
        #expect(idr1 >> 16 & 0xFF == 4)              // NUMS2CB
        #expect(idr1 & 0xFF == 4)                    // NUMCB
        #expect(bench.smmu.mmioSize == 0x1_0000)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.idr2)) == 0x22)   // OAS 40, IAS 40; nothing above bit 7
        #expect(try bench.read32(bench.gr0(SMMUv2Register.idr7)) == 0)
        // Version 1 has no SMMU_CBA2Rn and no SMMU_CBn_TCR2: RAZ/WI.
        try bench.write32(bench.gr1(SMMUv2Register.cba2rBase), 1)
        #expect(try bench.read32(bench.gr1(SMMUv2Register.cba2rBase)) == 0)
        try bench.write32(bench.cb(0, SMMUv2Register.cbTCR2), 5)
        #expect(try bench.read32(bench.cb(0, SMMUv2Register.cbTCR2)) == 0)
        #expect(!bench.smmu.contextBanks[0].va64)
    }

    /// A 40-bit stage-2 table set at `root` mapping `ipa` to `pa` with S2AP read/write: two
    /// concatenated level-1 tables (8 KiB), then level 2 and level 3.
    static func mapStage2(_ bench: SMMUv2Bench, root: UInt64, ipa: UInt64, pa: UInt64) throws {
        let l2 = root + 0x2000, l3 = root + 0x3000
        try bench.bus.write64(PhysicalAddress(root + ((ipa >> 30) & 0x3FF) * 8), l2 | 3)
        try bench.bus.write64(PhysicalAddress(l2 + ((ipa >> 21) & 0x1FF) * 8), l3 | 3)
        try bench.bus.write64(PhysicalAddress(l3 + ((ipa >> 12) & 0x1FF) * 8), pa | 3 | 1 << 10 | 3 << 6)
    }

    @Test("MMU-401 stage-2 bank: the AArch32 VTCR (T0SZ −8, S, SL0 1) walks two concatenated level-1 tables to a 40-bit PA")
    func mmu401Stage2() throws {
        let bench = try Self.mmu401()
        try bench.enable(usfcfg: true)
        let root = SMMUv2Bench.ram + 0x10_0000
        let ipa: UInt64 = 0x80_4000_2000            // above 2^39: the second concatenated table
        try Self.mapStage2(bench, root: root, ipa: ipa, pa: 0x2C1C_0000)
        try bench.write32(bench.gr1(SMMUv2Register.cbarBase), 0 << 16 | 1)   // TYPE S2, VMID 1
        // What Linux writes for ARM_64_LPAE_S2 (ias 40): RES1[31], PS 40 bits, SH0/ORGN0/IRGN0,
        // SL0 1, T0SZ 24 — which AArch32 reads as T0SZ[3:0] = −8 with S[4] = 1.
        try bench.write32(bench.cb(0, SMMUv2Register.cbTCR), 1 << 31 | 2 << 16 | 3 << 12 | 1 << 10 | 1 << 8 | 1 << 6 | 24)
        try bench.write64(bench.cb(0, SMMUv2Register.cbTTBR0), root)
        try bench.write32(bench.cb(0, SMMUv2Register.cbSCTLR), 1 | 1 << 5 | 1 << 6)
        try bench.write32(bench.gr0(SMMUv2Register.s2crBase), 0)             // translate, bank 0
        try bench.write32(bench.gr0(SMMUv2Register.smrBase), 1 << 31)        // StreamID 0
        #expect(bench.write(0, ipa + 0x40) == .translated(output: PhysicalAddress(0x2C1C_0040), contextBank: 0))
        #expect(bench.smmu.tlbCount == 1)
        try bench.write32(bench.gr0(SMMUv2Register.tlbiVMID), 1)
        #expect(bench.smmu.tlbCount == 0)
        // Beyond 40 bits: translation fault in CB0, FAR the input.
        guard case .terminated(true, _) = bench.write(0, 1 << 40) else { Issue.record("a 41-bit IPA translated"); return }
        #expect(try bench.read32(bench.cb(0, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrTF)
        #expect(try bench.read64(bench.cb(0, SMMUv2Register.cbFAR)) == 1 << 40)
        try bench.write32(bench.cb(0, SMMUv2Register.cbFSR), 0xFFFF_FFFF)
        // S must repeat T0SZ[3]: clearing it is a translation fault (UNPREDICTABLE in Armv7).
        try bench.write32(bench.cb(0, SMMUv2Register.cbTCR), 1 << 31 | 1 << 6 | 8)
        try bench.write32(bench.gr0(SMMUv2Register.tlbiAllNSNH), 0)
        _ = bench.write(0, ipa)
        #expect(try bench.read32(bench.cb(0, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrTF)
    }

    @Test("MMU-401 has no stage 1: a stage-1 CBAR is an invalid context fault in sGFSR")
    func mmu401NoStage1() throws {
        let bench = try Self.mmu401()
        try bench.enable(usfcfg: true)
        try bench.write32(bench.gr1(SMMUv2Register.cbarBase), 1 << 16)
        try bench.write32(bench.cb(0, SMMUv2Register.cbSCTLR), 1)
        try bench.write32(bench.gr0(SMMUv2Register.s2crBase), 0)
        try bench.write32(bench.gr0(SMMUv2Register.smrBase), 1 << 31 | 7)
        guard case .terminated = bench.write(7, 0x1000) else { Issue.record("stage 1 translated on a stage-2-only SMMU"); return }
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSR)) & SMMUv2Field.gfsrICF != 0)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSYNR1)) == 7)
    }

    /// A generic SMMUv1 (stage 1 and 2) in a 64 KiB window.
    static func smmuV1() throws -> SMMUv2Bench { try SMMUv2Bench(configuration: .smmuV1(windowSize: 0x1_0000)) }

    /// A 32-bit stage-1 LPAE table set at `root` (T0SZ 0: a 4-entry level-1 table, then level 2
    /// and 3) mapping `va` to `pa`; AF, AP[1], and AP[2] for read-only.
    static func mapStage1(_ bench: SMMUv2Bench, root: UInt64, va: UInt64, pa: UInt64, readOnly: Bool = false) throws {
        let l2 = root + 0x1000, l3 = root + 0x2000
        try bench.bus.write64(PhysicalAddress(root + ((va >> 30) & 3) * 8), l2 | 3)
        try bench.bus.write64(PhysicalAddress(l2 + ((va >> 21) & 0x1FF) * 8), l3 | 3)
        var page = pa | 3 | 1 << 10 | 1 << 6
        if readOnly { page |= 1 << 7 }
        try bench.bus.write64(PhysicalAddress(l3 + ((va >> 12) & 0x1FF) * 8), page)
    }

    /// Bank `bank` as Linux programs an ARM_SMMU_CTX_FMT_AARCH32_L stage-1 context on version 1:
    /// no CBA2R or TCR2; TTBCR = EAE | EPD1 | walk attributes | T0SZ 32 (bits [2:0] = 0);
    /// TTBR0 = table | ASID << 48.
    static func aarch32Stage1Bank(_ bench: SMMUv2Bench, bank: Int, sid: UInt32, root: UInt64, asid: UInt64) throws {
        try bench.write32(bench.gr1(SMMUv2Register.cbarBase + UInt64(bank) * 4), 1 << 16 | 3 << 8 | 0xF << 12)
        try bench.write32(bench.cb(bank, SMMUv2Register.cbTCR), 1 << 31 | 1 << 23 | 3 << 12 | 1 << 10 | 1 << 8 | 32)
        try bench.write64(bench.cb(bank, SMMUv2Register.cbTTBR0), root | asid << 48)
        try bench.write64(bench.cb(bank, SMMUv2Register.cbTTBR1), asid << 48)
        try bench.write32(bench.cb(bank, SMMUv2Register.cbSCTLR), 1 | 1 << 5 | 1 << 6)
        try bench.write32(bench.gr0(SMMUv2Register.s2crBase + UInt64(bank) * 4), UInt32(bank))
        try bench.write32(bench.gr0(SMMUv2Register.smrBase + UInt64(bank) * 4), 1 << 31 | sid)
    }

    @Test("AArch32 long-descriptor stage 1: TTBR0 walk from level 1, faults in CB_FSR/CB_FAR/FSYNR0, TLBIVA's 32-bit form")
    func aarch32Stage1() throws {
        let bench = try Self.smmuV1()
        try bench.enable(usfcfg: true)
        let root = SMMUv2Bench.ram + 0x20_0000
        try Self.mapStage1(bench, root: root, va: 0xFFFF_F000, pa: 0x2C1C_0000)
        try Self.aarch32Stage1Bank(bench, bank: 1, sid: 0x21, root: root, asid: 1)
        #expect(bench.write(0x21, 0xFFFF_F040) == .translated(output: PhysicalAddress(0x2C1C_0040), contextBank: 1))
        // Unmapped: the level-2 descriptor is invalid.
        guard case .terminated(true, _) = bench.write(0x21, 0x4000_0000) else { Issue.record("unmapped VA translated"); return }
        #expect(try bench.read32(bench.cb(1, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrTF)
        #expect(try bench.read64(bench.cb(1, SMMUv2Register.cbFAR)) == 0x4000_0000)
        #expect(try bench.read32(bench.cb(1, SMMUv2Register.cbFSYNR0)) & 0x13 == 0x11)   // WNR, PLVL 1
        try bench.write32(bench.cb(1, SMMUv2Register.cbFSR), 0xFFFF_FFFF)
        // A 32-bit VA only: 4 GiB and above faults.
        _ = bench.write(0x21, 0x1_0000_0000)
        #expect(try bench.read32(bench.cb(1, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrTF)
        try bench.write32(bench.cb(1, SMMUv2Register.cbFSR), 0xFFFF_FFFF)
        // Read-only page: permission fault.
        try Self.mapStage1(bench, root: root, va: 0xFFFF_E000, pa: 0x2C1C_0000, readOnly: true)
        _ = bench.write(0x21, 0xFFFF_E000)
        #expect(try bench.read32(bench.cb(1, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrPF)
        // TLBIVA, AArch32 form: VA[31:12] | ASID[7:0]. The wrong ASID keeps the entry.
        #expect(bench.smmu.tlbCount == 1)
        try bench.write32(bench.cb(1, SMMUv2Register.cbTLBIVA), 0xFFFF_F000 | 2)
        #expect(bench.smmu.tlbCount == 1)
        try bench.write32(bench.cb(1, SMMUv2Register.cbTLBIVA), 0xFFFF_F000 | 1)
        #expect(bench.smmu.tlbCount == 0)
    }

    @Test("AArch32 stage 1: T0SZ/T1SZ split the 32-bit VA between TTBR0 and TTBR1; EPD1 faults TTBR1's region")
    func aarch32TTBRSplit() throws {
        let bench = try Self.smmuV1()
        try bench.enable(usfcfg: true)
        let root0 = SMMUv2Bench.ram + 0x20_0000, root1 = SMMUv2Bench.ram + 0x30_0000
        // T0SZ 1: TTBR0 covers [0, 2 GiB) from level 1 (2 entries); T1SZ 0: TTBR1 the rest.
        try Self.mapStage1(bench, root: root1, va: 0xFFFF_F000, pa: 0x0700_0000)
        try Self.aarch32Stage1Bank(bench, bank: 0, sid: 3, root: root0, asid: 4)
        try bench.write32(bench.cb(0, SMMUv2Register.cbTCR), 1 << 31 | 1)
        try bench.write64(bench.cb(0, SMMUv2Register.cbTTBR1), root1 | 4 << 48)
        #expect(bench.write(3, 0xFFFF_F008) == .translated(output: PhysicalAddress(0x0700_0008), contextBank: 0))
        // EPD1 set: TTBR1 walks are disabled.
        try bench.write32(bench.cb(0, SMMUv2Register.cbTCR), 1 << 31 | 1 << 23 | 1)
        try bench.write32(bench.cb(0, SMMUv2Register.cbTLBIALL), 0)
        guard case .terminated = bench.write(3, 0xFFFF_F008) else { Issue.record("EPD1 did not disable TTBR1"); return }
        #expect(try bench.read32(bench.cb(0, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrTF)
    }

    @Test("TTBCR.EAE clear (short-descriptor format) is an invalid context; an MMU-500 without AArch32 refuses VA64 = 0")
    func unsupportedFormats() throws {
        let bench = try Self.smmuV1()
        try bench.enable(usfcfg: true)
        try Self.aarch32Stage1Bank(bench, bank: 0, sid: 3, root: SMMUv2Bench.ram, asid: 1)
        try bench.write32(bench.cb(0, SMMUv2Register.cbTCR), 0)
        guard case .terminated = bench.write(3, 0x1000) else { Issue.record("short-descriptor bank translated"); return }
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSR)) & SMMUv2Field.gfsrICF != 0)
        // The MMU-500 default (IDR0.PTFS = 0b10): a stage-2 bank with VA64 clear is refused too.
        let v2 = try SMMUv2Bench()
        try v2.enable(usfcfg: true)
        #expect(try v2.read32(v2.gr0(SMMUv2Register.idr0)) >> 24 & 3 == 0b10)
        try v2.write32(v2.gr1(SMMUv2Register.cbarBase), 0)
        try v2.write32(v2.cb(0, SMMUv2Register.cbSCTLR), 1)
        try v2.write32(v2.gr0(SMMUv2Register.s2crBase), 0)
        try v2.write32(v2.gr0(SMMUv2Register.smrBase), 1 << 31 | 3)
        guard case .terminated = v2.write(3, 0x1000) else { Issue.record("AArch32 bank translated on an SMMU without AArch32"); return }
        #expect(try v2.read32(v2.gr0(SMMUv2Register.sGFSR)) & SMMUv2Field.gfsrICF != 0)
    }
}
