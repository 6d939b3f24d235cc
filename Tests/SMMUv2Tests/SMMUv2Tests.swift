import Bus
import SMMUv3
import Testing
@testable import SMMUv2

/// A bus with 16 MiB of RAM at 0x8000_0000 and an MMU-500-like SMMUv2 at 0x0500_0000 (the NXP
/// window: 8 MiB, 64 KiB register pages), programmed only through its registers.
final class SMMUv2Bench {
    let bus = SystemBus()
    let smmu: SMMUv2
    static let base: UInt64 = 0x0500_0000
    static let ram: UInt64 = 0x8000_0000

    init(configuration: SMMUv2Configuration = .fitting(windowSize: 0x80_0000)) throws {
        smmu = SMMUv2(configuration: configuration, bus: bus)
        try bus.addRAM(base: PhysicalAddress(Self.ram), size: 0x100_0000, name: "ram")
        try bus.addDevice(smmu, base: PhysicalAddress(Self.base), size: smmu.mmioSize, name: "smmu")
    }

    func gr0(_ r: UInt64) -> UInt64 { Self.base + r }
    func gr1(_ r: UInt64) -> UInt64 { Self.base + smmu.configuration.pageSize + r }
    func cb(_ n: Int, _ r: UInt64) -> UInt64 { Self.base + (smmu.configuration.globalPages + UInt64(n)) * smmu.configuration.pageSize + r }

    func write32(_ address: UInt64, _ value: UInt32) throws { try bus.write(PhysicalAddress(address), size: 4, value: UInt64(value)) }
    func write64(_ address: UInt64, _ value: UInt64) throws { try bus.write(PhysicalAddress(address), size: 8, value: value) }
    func read32(_ address: UInt64) throws -> UInt32 { UInt32(try bus.read(PhysicalAddress(address), size: 4)) }
    func read64(_ address: UInt64) throws -> UInt64 { try bus.read(PhysicalAddress(address), size: 8) }

    func write(_ sid: UInt32, _ address: UInt64) -> SMMUv2Response {
        smmu.handle(DeviceTransaction(kind: .write, address: IOVA(address), size: 4, data: 0, streamID: StreamID(sid), deviceID: DeviceID(sid)))
    }

    /// sCR0 as Linux's `arm_smmu_device_reset` leaves it: CLIENTPD clear, GFRE/GFIE/GCFGFRE/GCFGFIE
    /// set, USFCFG as asked.
    func enable(usfcfg: Bool) throws {
        try write32(gr0(SMMUv2Register.sCR0), 0x36 | (usfcfg ? 1 << 10 : 0))
    }

    /// A 4 KiB stage-1 table set (T0SZ = 16, 4 levels) at `root` mapping one page.
    func mapStage1(root: UInt64, va: UInt64, pa: UInt64, readOnly: Bool = false) throws {
        var table = root
        var next = root + 0x1000
        for level in 0..<3 {
            let index = (va >> UInt64(39 - 9 * level)) & 0x1FF
            let entry = table + index * 8
            let existing = try bus.read64(PhysicalAddress(entry))
            if existing & 3 == 3 { table = existing & 0xFFFF_FFFF_F000; continue }
            while try bus.read64(PhysicalAddress(next)) != 0 { next += 0x1000 }
            try bus.write64(PhysicalAddress(entry), next | 3)
            table = next
            next += 0x1000
        }
        // Page: AF, AP[1] (EL0), AP[2] for read-only, SH inner, AttrIndx 0.
        var page = (pa & ~0xFFF) | 3 | 1 << 10 | 1 << 6 | 3 << 8
        if readOnly { page |= 1 << 7 }
        try bus.write64(PhysicalAddress(table + ((va >> 12) & 0x1FF) * 8), page)
    }

    /// Stream `sid` (SMR group `group`) → context bank `bank`, a stage-1 AArch64 bank on `root`.
    func stage1Bank(group: Int, sid: UInt32, mask: UInt32 = 0, bank: Int, root: UInt64, asid: UInt16 = 1) throws {
        try write32(gr1(SMMUv2Register.cbarBase + UInt64(bank) * 4), 1 << 16 | 3 << 8)   // TYPE = S1 trans, S2 bypass
        try write32(gr1(SMMUv2Register.cba2rBase + UInt64(bank) * 4), 1)                   // VA64
        try write32(cb(bank, SMMUv2Register.cbTCR), 16 | 1 << 23)                            // T0SZ 16, EPD1
        try write32(cb(bank, SMMUv2Register.cbTCR2), 5)                                     // PASIZE 48 bits
        try write64(cb(bank, SMMUv2Register.cbTTBR0), root | UInt64(asid) << 48)
        try write32(cb(bank, SMMUv2Register.cbSCTLR), 1 | 1 << 5 | 1 << 6)                  // M, CFRE, CFIE
        try write32(gr0(SMMUv2Register.s2crBase + UInt64(group) * 4), UInt32(bank))          // TYPE translate
        try write32(gr0(SMMUv2Register.smrBase + UInt64(group) * 4), 1 << 31 | mask << 16 | sid)
    }
}

@Suite("SMMUv2 registers and translation (IHI 0062D)")
struct SMMUv2Tests {
    @Test("IDR0-2 report NUMSMRG, NUMCB, SMS, S1TS/S2TS/NTS, page layout and IAS/OAS (§10.6.2-4)")
    func idRegisters() throws {
        let bench = try SMMUv2Bench()
        let idr0 = try bench.read32(bench.gr0(SMMUv2Register.idr0))
        #expect(idr0 & 0xFF == 64)
        #expect(idr0 >> 30 & 1 == 1 && idr0 >> 29 & 1 == 1 && idr0 >> 28 & 1 == 1 && idr0 >> 27 & 1 == 1)
        let idr1 = try bench.read32(bench.gr0(SMMUv2Register.idr1))
        #expect(idr1 >> 31 == 1)                 // 64 KiB pages for an 8 MiB window
        #expect((idr1 >> 28) & 7 == 5)           // NUMPAGE = 64
        #expect(idr1 & 0xFF == 64)
        let idr2 = try bench.read32(bench.gr0(SMMUv2Register.idr2))
        #expect(idr2 & 0xF == 5 && (idr2 >> 4) & 0xF == 5)
        #expect(idr2 >> 12 & 1 == 1)
        // Linux's size check: 2 × NUMPAGE × PAGESIZE equals the DT window.
        #expect(bench.smmu.mmioSize == 0x80_0000)
        // A 4 KiB-page layout for a 64 KiB window (NUMPAGE 8).
        #expect(SMMUv2Configuration.fitting(windowSize: 0x1_0000).pageShift == 12)
        #expect(SMMUv2Configuration.fitting(windowSize: 0x1_0000).globalPages == 8)
    }

    @Test("CLIENTPD bypasses; with it clear an unmatched stream bypasses (USFCFG = 0) or faults in sGFSR (USFCFG = 1)")
    func unidentifiedStreams() throws {
        let bench = try SMMUv2Bench()
        #expect(bench.write(7, 0x1234) == .translated(output: PhysicalAddress(0x1234), contextBank: nil))
        try bench.enable(usfcfg: false)
        #expect(bench.write(7, 0x1234) == .translated(output: PhysicalAddress(0x1234), contextBank: nil))
        try bench.enable(usfcfg: true)
        guard case .terminated(let abort, _) = bench.write(7, 0x1234) else { Issue.record("unmatched stream was not faulted"); return }
        #expect(abort)   // sCR0.GFRE
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSR)) == SMMUv2Field.gfsrUSF)
        #expect(try bench.read64(bench.gr0(SMMUv2Register.sGFAR)) == 0x1234)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSYNR1)) == 7)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSYNR0)) & 2 == 2)   // WNR
        // A second fault only sets MULTI; writing the bits back clears them.
        _ = bench.write(8, 0x5678)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSR)) == SMMUv2Field.gfsrUSF | SMMUv2Field.gfsrMULTI)
        #expect(try bench.read64(bench.gr0(SMMUv2Register.sGFAR)) == 0x1234)
        try bench.write32(bench.gr0(SMMUv2Register.sGFSR), SMMUv2Field.gfsrUSF | SMMUv2Field.gfsrMULTI)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSR)) == 0)
    }

    @Test("SMR matching honours MASK; two matching SMRs are a stream match conflict (§2.4)")
    func streamMatching() throws {
        let bench = try SMMUv2Bench()
        try bench.enable(usfcfg: true)
        // SMR0: ID 0x40, MASK 0x0F → StreamIDs 0x40…0x4F; S2CR0 bypass.
        try bench.write32(bench.gr0(SMMUv2Register.s2crBase), 1 << 16)
        try bench.write32(bench.gr0(SMMUv2Register.smrBase), 1 << 31 | 0x0F << 16 | 0x40)
        #expect(bench.write(0x4B, 0x1000) == .translated(output: PhysicalAddress(0x1000), contextBank: nil))
        guard case .terminated = bench.write(0x50, 0x1000) else { Issue.record("0x50 matched SMR0"); return }
        try bench.write32(bench.gr0(SMMUv2Register.sGFSR), 0xFFFF_FFFF)
        // SMR1: ID 0x4B exactly: now 0x4B matches two SMRs.
        try bench.write32(bench.gr0(SMMUv2Register.s2crBase + 4), 1 << 16)
        try bench.write32(bench.gr0(SMMUv2Register.smrBase + 4), 1 << 31 | 0x4B)
        guard case .terminated = bench.write(0x4B, 0x1000) else { Issue.record("conflict not faulted"); return }
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSR)) == SMMUv2Field.gfsrSMCF)
        // 0x4C still matches SMR0 alone.
        #expect(bench.write(0x4C, 0x1000) == .translated(output: PhysicalAddress(0x1000), contextBank: nil))
        // SMR.VALID clear: the entry takes no part.
        try bench.write32(bench.gr0(SMMUv2Register.smrBase + 4), 0x4B)
        #expect(bench.write(0x4B, 0x1000) == .translated(output: PhysicalAddress(0x1000), contextBank: nil))
    }

    @Test("S2CR TYPE fault terminates; CBNDX beyond NUMCB is an invalid context fault")
    func s2crTypes() throws {
        let bench = try SMMUv2Bench()
        try bench.enable(usfcfg: false)
        try bench.write32(bench.gr0(SMMUv2Register.s2crBase), 2 << 16)
        try bench.write32(bench.gr0(SMMUv2Register.smrBase), 1 << 31 | 5)
        guard case .terminated(true, _) = bench.write(5, 0x1000) else { Issue.record("S2CR fault type did not abort"); return }
        try bench.write32(bench.gr0(SMMUv2Register.s2crBase), 200)
        guard case .terminated = bench.write(5, 0x1000) else { Issue.record("bad CBNDX translated"); return }
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sGFSR)) & SMMUv2Field.gfsrICF != 0)
    }

    @Test("a stage-1 context bank translates through TTBR0, and faults land in its FSR/FAR/FSYNR0")
    func stage1Translation() throws {
        let bench = try SMMUv2Bench()
        try bench.enable(usfcfg: true)
        let root = SMMUv2Bench.ram
        try bench.mapStage1(root: root, va: 0xFFFF_F000, pa: 0x0602_0000)
        try bench.stage1Bank(group: 3, sid: 0x17, bank: 2, root: root)
        #expect(bench.write(0x17, 0xFFFF_F040) == .translated(output: PhysicalAddress(0x0602_0040), contextBank: 2))
        // An unmapped IOVA: translation fault, recorded in CB2.
        guard case .terminated(true, _) = bench.write(0x17, 0x1000) else { Issue.record("unmapped IOVA translated"); return }
        #expect(try bench.read32(bench.cb(2, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrTF)
        #expect(try bench.read64(bench.cb(2, SMMUv2Register.cbFAR)) == 0x1000)
        let fsynr0 = try bench.read32(bench.cb(2, SMMUv2Register.cbFSYNR0))
        #expect(fsynr0 & 0x10 != 0)       // WNR
        #expect(fsynr0 & 3 == 1)          // PLVL: the level-1 descriptor was invalid
        // An address outside TTBR0's 48-bit region with EPD1 set.
        _ = bench.write(0x17, 0xFFFF_0000_0000_0000)
        #expect(try bench.read32(bench.cb(2, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrTF | SMMUv2Field.fsrMULTI)
        try bench.write32(bench.cb(2, SMMUv2Register.cbFSR), 0xFFFF_FFFF)
        #expect(try bench.read32(bench.cb(2, SMMUv2Register.cbFSR)) == 0)
        // A read-only page refuses the write with a permission fault.
        try bench.mapStage1(root: root, va: 0x2000, pa: 0x0602_0000, readOnly: true)
        _ = bench.write(0x17, 0x2000)
        #expect(try bench.read32(bench.cb(2, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrPF)
        // SCTLR.M clear: the bank's translation is disabled, the address passes through.
        try bench.write32(bench.cb(2, SMMUv2Register.cbSCTLR), 0)
        #expect(bench.write(0x17, 0x1000) == .translated(output: PhysicalAddress(0x1000), contextBank: nil))
    }

    @Test("the TLB keeps a translation until TLBIASID, TLBIVA, TLBIALL or TLBIALLNSNH removes it")
    func tlbInvalidation() throws {
        let bench = try SMMUv2Bench()
        try bench.enable(usfcfg: true)
        let root = SMMUv2Bench.ram
        try bench.mapStage1(root: root, va: 0xFFFF_F000, pa: 0x0602_0000)
        try bench.stage1Bank(group: 0, sid: 1, bank: 0, root: root, asid: 9)
        #expect(bench.write(1, 0xFFFF_F040) == .translated(output: PhysicalAddress(0x0602_0040), contextBank: 0))
        // Remap the page in memory: the TLB still answers with the old page.
        try bench.mapStage1(root: root, va: 0xFFFF_F000, pa: 0x0603_0000)
        #expect(bench.write(1, 0xFFFF_F040) == .translated(output: PhysicalAddress(0x0602_0040), contextBank: 0))
        // TLBIASID of another ASID leaves it; of ASID 9 removes it.
        try bench.write32(bench.cb(0, SMMUv2Register.cbTLBIASID), 8)
        #expect(bench.smmu.tlbCount == 1)
        try bench.write32(bench.cb(0, SMMUv2Register.cbTLBIASID), 9)
        #expect(bench.smmu.tlbCount == 0)
        #expect(bench.write(1, 0xFFFF_F040) == .translated(output: PhysicalAddress(0x0603_0040), contextBank: 0))
        // TLBIVA: VA[55:12] in [43:0], ASID in [63:48].
        try bench.write64(bench.cb(0, SMMUv2Register.cbTLBIVA), 0xFFFF_F000 >> 12 | 9 << 48)
        #expect(bench.smmu.tlbCount == 0)
        _ = bench.write(1, 0xFFFF_F040)
        try bench.write32(bench.cb(0, SMMUv2Register.cbTLBIALL), 0)
        #expect(bench.smmu.tlbCount == 0)
        _ = bench.write(1, 0xFFFF_F040)
        try bench.write32(bench.gr0(SMMUv2Register.tlbiAllNSNH), 0)
        #expect(bench.smmu.tlbCount == 0)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.sTLBGSTATUS)) == 0)
        #expect(try bench.read32(bench.cb(0, SMMUv2Register.cbTLBSTATUS)) == 0)
    }

    @Test("a stage-2 context bank walks its VTTBR with VTCR's T0SZ/SL0/PS; S2AP grants write")
    func stage2Translation() throws {
        let bench = try SMMUv2Bench()
        try bench.enable(usfcfg: true)
        let root = SMMUv2Bench.ram + 0x10_0000
        // T0SZ 24 (40-bit IPA), SL0 1 (start level 1), PS 2 (40 bits); level-1 table at root.
        let ipa: UInt64 = 0x4000_2000
        let l2 = root + 0x1000, l3 = root + 0x2000
        try bench.bus.write64(PhysicalAddress(root + ((ipa >> 30) & 0x3FF) * 8), l2 | 3)
        try bench.bus.write64(PhysicalAddress(l2 + ((ipa >> 21) & 0x1FF) * 8), l3 | 3)
        try bench.bus.write64(PhysicalAddress(l3 + ((ipa >> 12) & 0x1FF) * 8), 0x0700_0000 | 3 | 1 << 10 | 3 << 6)
        try bench.write32(bench.gr1(SMMUv2Register.cbarBase + 4), 0 << 16 | 5)   // TYPE S2, VMID 5
        try bench.write32(bench.gr1(SMMUv2Register.cba2rBase + 4), 1)
        try bench.write32(bench.cb(1, SMMUv2Register.cbTCR), 24 | 1 << 6 | 2 << 16)
        try bench.write64(bench.cb(1, SMMUv2Register.cbTTBR0), root)
        try bench.write32(bench.cb(1, SMMUv2Register.cbSCTLR), 1 | 1 << 5)
        try bench.write32(bench.gr0(SMMUv2Register.s2crBase), 1)
        try bench.write32(bench.gr0(SMMUv2Register.smrBase), 1 << 31 | 0x30)
        #expect(bench.write(0x30, ipa + 4) == .translated(output: PhysicalAddress(0x0700_0004), contextBank: 1))
        // TLBIVMID of VMID 5 empties the TLB.
        try bench.write32(bench.gr0(SMMUv2Register.tlbiVMID), 5)
        #expect(bench.smmu.tlbCount == 0)
        // Beyond the 40-bit IPA: translation fault.
        _ = bench.write(0x30, 1 << 41)
        #expect(try bench.read32(bench.cb(1, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrTF)
    }

    @Test("bad register accesses are answered architecturally: reserved offsets RAZ/WI, odd sizes are bus errors")
    func badAccesses() throws {
        let bench = try SMMUv2Bench()
        #expect(try bench.read32(bench.gr0(0xFFC)) == 0)
        try bench.write32(bench.gr0(0x0FC), 0xFFFF_FFFF)
        #expect(try bench.read32(bench.gr0(0x0FC)) == 0)
        // SMR beyond NUMSMRG, CBAR beyond NUMCB, a page past the last bank: all RAZ/WI.
        try bench.write32(bench.gr0(SMMUv2Register.smrBase + 64 * 4), 0xFFFF_FFFF)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.smrBase + 64 * 4)) == 0)
        try bench.write32(bench.gr1(SMMUv2Register.cbarBase + 100 * 4), 0xFFFF_FFFF)
        // ID registers are read-only.
        let idr0 = try bench.read32(bench.gr0(SMMUv2Register.idr0))
        try bench.write32(bench.gr0(SMMUv2Register.idr0), 0)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.idr0)) == idr0)
        // SMR ID/MASK bits beyond NUMSIDB are RES0.
        try bench.write32(bench.gr0(SMMUv2Register.smrBase), 0xFFFF_FFFF)
        #expect(try bench.read32(bench.gr0(SMMUv2Register.smrBase)) == 0xFFFF_7FFF)
        #expect(throws: BusError.self) { try bench.bus.write(PhysicalAddress(bench.gr0(1)), size: 2, value: 0) }
        #expect(throws: BusError.self) { try bench.bus.read(PhysicalAddress(bench.gr0(2)), size: 4) }
        // A context bank whose tables point beyond RAM faults with an external fault, no trap.
        try bench.enable(usfcfg: true)
        try bench.stage1Bank(group: 0, sid: 2, bank: 0, root: 0x7_0000_0000)
        guard case .terminated = bench.write(2, 0x1000) else { Issue.record("walk of missing RAM translated"); return }
        #expect(try bench.read32(bench.cb(0, SMMUv2Register.cbFSR)) == SMMUv2Field.fsrEF)
    }
}

/// An SMMUv2 on a bus must go away with the bus: the bus holds its devices, so the SMMU's
/// reference back to the bus must not own it (LeakSanitizer found that cycle through
/// FuzzSMMUv2: one leaked bus, RAM and SMMU per machine).
@Suite("SMMUv2 lifetime") struct SMMUv2LifetimeTests {
    @Test("a dropped bus frees its SMMUv2, and the SMMU does not keep the bus alive")
    func droppedTogether() throws {
        weak var bus: SystemBus?
        weak var smmu: SMMUv2?
        do {
            let bench = try SMMUv2Bench()
            bus = bench.bus
            smmu = bench.smmu
            try bench.write32(bench.gr0(0), 0)   // sCR0: touch it through the bus
        }
        #expect(bus == nil)
        #expect(smmu == nil)
    }
}
