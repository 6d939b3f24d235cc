import Testing
import Bus
@testable import SMMUv3

@Suite("SMMUv3 register file")
struct RegisterFileTests {
    typealias R = SMMURegisterOffset

    static let configurations: [SMMUConfiguration] = {
        var stage1Only = SMMUConfiguration()
        stage1Only.stage2 = false
        stage1Only.msi = false
        stage1Only.streamIDBits = 8
        stage1Only.commandQueueMaxLog2 = 8
        var hypNoRIL = SMMUConfiguration()
        hypNoRIL.hyp = true
        hypNoRIL.rangeInvalidation = false
        hypNoRIL.outputAddressSize = .bits44
        hypNoRIL.granule16K = false
        return [.default, stage1Only, hypNoRIL]
    }()

    @Test("IDR0–IDR5 read back the configuration's values, at their §6.3.1–6.3.6 positions",
          arguments: configurations)
    func idRegisters(configuration: SMMUConfiguration) throws {
        let h = DeviceHarness(configuration: configuration)
        let idr0 = try h.read32(R.idr0)
        let idr1 = try h.read32(R.idr1)
        let idr3 = try h.read32(R.idr3)
        let idr5 = try h.read32(R.idr5)
        #expect(idr0 == configuration.idr0)
        #expect(idr1 == configuration.idr1)
        #expect(try h.read32(R.idr2) == configuration.idr2)
        #expect(idr3 == configuration.idr3)
        #expect(try h.read32(R.idr4) == configuration.idr4)
        #expect(idr5 == configuration.idr5)
        // Independent field checks against the spec positions, not the configuration's encoder:
        // S2P[0], S1P[1], HYP[9], MSI[13]; SIDSIZE[5:0], CMDQS[25:21]; RIL[10]; OAS[2:0], GRAN16K[5].
        #expect(idr0 & 1 == (configuration.stage2 ? 1 : 0))
        #expect(idr0 >> 1 & 1 == (configuration.stage1 ? 1 : 0))
        #expect(idr0 >> 9 & 1 == (configuration.hyp ? 1 : 0))
        #expect(idr0 >> 13 & 1 == (configuration.msi ? 1 : 0))
        #expect(Int(idr1 & 0x3F) == configuration.streamIDBits)
        #expect(Int(idr1 >> 21 & 0x1F) == configuration.commandQueueMaxLog2)
        #expect(idr3 >> 10 & 1 == (configuration.rangeInvalidation ? 1 : 0))
        #expect(idr5 & 7 == configuration.outputAddressSize.rawValue)
        #expect(idr5 >> 5 & 1 == (configuration.granule16K ? 1 : 0))
        // AIDR: v3.2 (minor 2) exactly when RIL, mandatory from v3.2, is advertised.
        #expect(try h.read32(R.aidr) == (configuration.rangeInvalidation ? 2 : 1))
    }

    @Test("reset values: control and error registers 0, GBPA = SHCFG 'use incoming' with ABORT=0")
    func resetValues() throws {
        let h = DeviceHarness()
        for offset in [R.cr0, R.cr0ack, R.cr1, R.cr2, R.statusr, R.irqCtrl, R.irqCtrlAck, R.gerror, R.gerrorn,
                       R.cmdqProd, R.cmdqCons, R.eventqProd, R.eventqCons] {
            #expect(try h.read32(offset) == 0, "offset \(Hex.format(offset, minDigits: 3))")
        }
        // 0x1000: SHCFG[13:12] = 0b01 (QEMU's reset value); ABORT[20] = 0, UPDATE[31] = 0.
        #expect(try h.read32(R.gbpa) == 0x0000_1000)
        #expect(!h.smmu.isEnabled)
    }

    @Test("ID registers are read-only")
    func idRegistersReadOnly() throws {
        let h = DeviceHarness()
        for offset in [R.idr0, R.idr1, R.idr5, R.iidr, R.aidr, R.cr0ack, R.irqCtrlAck, R.gerror, R.statusr] {
            let before = try h.read32(offset)
            try h.write32(offset, ~before)
            #expect(try h.read32(offset) == before, "offset \(Hex.format(offset, minDigits: 3))")
        }
    }

    @Test("CR0ACK mirrors the implemented CR0 bits as soon as CR0 is written")
    func cr0Acknowledge() throws {
        let h = DeviceHarness()
        try h.write32(R.cr0, 0xFFFF_FFFF)
        // SMMUEN[0], EVENTQEN[2], CMDQEN[3]; PRIQEN[1], ATSCHK[4] and VMW[8:6] are RES0 because
        // IDR0.PRI, IDR0.ATS and IDR0.VMW are 0 (§6.3.9).
        #expect(try h.read32(R.cr0) == 0b1101)
        #expect(try h.read32(R.cr0ack) == 0b1101)
        try h.write32(R.cr0, 0)
        #expect(try h.read32(R.cr0ack) == 0)
    }

    @Test("IRQ_CTRLACK mirrors IRQ_CTRL; PRIQ_IRQEN is RES0 without PRI")
    func irqControlAcknowledge() throws {
        let h = DeviceHarness()
        try h.write32(R.irqCtrl, 0b111)
        #expect(try h.read32(R.irqCtrl) == 0b101)
        #expect(try h.read32(R.irqCtrlAck) == 0b101)
    }

    @Test("GBPA: a write without UPDATE is ignored; with UPDATE it applies and UPDATE reads 0 (§6.3.14.1)")
    func gbpaUpdateProtocol() throws {
        let h = DeviceHarness()
        try h.write32(R.gbpa, 0x0010_0000)          // ABORT, UPDATE = 0: IGNORED in v3.2+
        #expect(try h.read32(R.gbpa) == 0x0000_1000)
        try h.write32(R.gbpa, 0x8010_0000)          // ABORT with UPDATE
        #expect(try h.read32(R.gbpa) == 0x0010_0000)
        // Reserved bits [30:21], [15:14], [7:5] do not stick.
        try h.write32(R.gbpa, 0xFFFF_FFFF)
        #expect(try h.read32(R.gbpa) == 0x001F_3F1F)
    }

    @Test("SMMUEN=0: GBPA.ABORT=0 bypasses with output = input; ABORT=1 aborts")
    func disabledBypassOrAbort() throws {
        let h = DeviceHarness()
        let t = DeviceHarness.write(0x0809_0040, sid: 0x42, data: 7)
        guard case .translated(let result) = h.smmu.handle(t) else {
            Issue.record("expected bypass")
            return
        }
        #expect(result.output == PhysicalAddress(0x0809_0040))
        try h.write32(R.gbpa, 0x8010_0000)
        #expect(h.smmu.handle(t) == .terminated(nil, abort: true))
        // Nothing is recorded for GBPA aborts.
        #expect(h.smmu.translator.counters.eventsRecorded == 0)
    }

    @Test("a 64-bit register written as two 32-bit halves equals one 64-bit write (§6.2)")
    func sixtyFourBitHalves() throws {
        let a = DeviceHarness()
        let b = DeviceHarness()
        let value: UInt64 = 0x4000_0000_0012_3440
        try a.write64(R.strtabBase, value)
        try b.write32(R.strtabBase, UInt32(truncatingIfNeeded: value))
        try b.write32(R.strtabBase + 4, UInt32(truncatingIfNeeded: value >> 32))
        #expect(try a.read64(R.strtabBase) == value)
        #expect(try b.read64(R.strtabBase) == value)
        #expect(try b.read32(R.strtabBase + 4) == 0x4000_0000)
    }

    @Test("STRTAB_BASE/CFG reach the translator: effective LOG2SIZE capped at SIDSIZE, base aligned")
    func streamTableConfiguration() throws {
        var configuration = SMMUConfiguration()
        configuration.streamIDBits = 8
        let h = DeviceHarness(configuration: configuration)
        // Linear, LOG2SIZE 10 (> SIDSIZE 8): the base aligns to the literal size 2^10 × 64 =
        // 64 KiB, and lookups use min(10, 8) = 8 bits (§6.3.24–25).
        try h.write64(R.strtabBase, 0x4012_3440)
        try h.write32(R.strtabBaseCfg, 10)
        #expect(h.smmu.translator.streamTable == StreamTableConfiguration(
            base: PhysicalAddress(0x4012_0000), log2Size: 8, split: 0, twoLevel: false))
        // 2-level, LOG2SIZE 16, SPLIT 8: L1 has 2^8 8-byte descriptors = 2 KiB, so
        // ADDR[MAX(5, 16-8-1+3):0] = ADDR[10:0] = 0.
        try h.write32(R.strtabBaseCfg, 1 << 16 | 8 << 6 | 16)
        try h.write64(R.strtabBase, 0x4012_3FC0)
        #expect(h.smmu.translator.streamTable.base == PhysicalAddress(0x4012_3800))
        #expect(h.smmu.translator.streamTable.twoLevel)
        #expect(h.smmu.translator.streamTable.split == 8)
    }

    @Test("Guarded registers ignore writes while their guard is set (v3.2)")
    func guardedWrites() throws {
        let h = DeviceHarness()
        try h.write64(R.strtabBase, 0x4000_0000)
        try h.write32(R.cr2, 0b10)
        try h.write32(R.cr0, SMMUControl0.smmuEnable.rawValue)
        try h.write64(R.strtabBase, 0x5000_0000)
        try h.write32(R.strtabBaseCfg, 5)
        try h.write32(R.cr2, 0)
        #expect(try h.read64(R.strtabBase) == 0x4000_0000)
        #expect(try h.read32(R.strtabBaseCfg) == 0)
        #expect(try h.read32(R.cr2) == 0b10)
        #expect(h.smmu.translator.streamTable.base == PhysicalAddress(0x4000_0000))

        try h.enableCommandQueue(base: 0x4100_0000, log2Size: 4)
        try h.write64(R.cmdqBase, 0x4200_0000 | 3)
        try h.write32(R.cmdqCons, 5)
        #expect(try h.read64(R.cmdqBase) == 0x4100_0004)
        #expect(try h.read32(R.cmdqCons) == 0)

        try h.write32(R.irqCtrl, SMMUInterruptControl.globalError.rawValue)
        try h.write64(R.gerrorIRQCfg0, 0x0809_0040)
        #expect(try h.read64(R.gerrorIRQCfg0) == 0)
    }

    @Test("CR2.RECINVSID is passed to the translator; PTM and, without HYP, E2H are RES0")
    func cr2() throws {
        let h = DeviceHarness()
        try h.write32(R.cr2, 0b111)
        #expect(try h.read32(R.cr2) == 0b010)
        #expect(h.smmu.translator.recordInvalidStreamIDs)
        var hyp = SMMUConfiguration()
        hyp.hyp = true
        let h2 = DeviceHarness(configuration: hyp)
        try h2.write32(R.cr2, 0b111)
        #expect(try h2.read32(R.cr2) == 0b011)
    }

    @Test("CR1: TABLE_* fields frozen while SMMUEN=1, QUEUE_* fields while a queue is enabled (§6.3.11)")
    func cr1Guards() throws {
        let h = DeviceHarness()
        try h.write32(R.cr1, 0xD75)                 // Linux: ISH, WB tables and queues
        #expect(try h.read32(R.cr1) == 0xD75)
        try h.write32(R.cr0, SMMUControl0.commandQueueEnable.rawValue)
        try h.write32(R.cr1, 0)                    // QUEUE_* frozen, TABLE_* writable
        #expect(try h.read32(R.cr1) == 0x035)
    }

    @Test("EVENTQ_PROD/CONS live in page 1 and are aliased at page-0 0xA8/0xAC (§6.2.1 option)")
    func eventQueuePage0Alias() throws {
        let h = DeviceHarness()
        try h.write32(R.eventqProdPage0Alias, 3)
        #expect(try h.read32(R.eventqProd) == 3)
        try h.write32(R.eventqCons, 0x8000_0002)
        #expect(try h.read32(R.eventqConsPage0Alias) == 0x8000_0002)
        // Undefined page-1 locations are RES0, not aliases of page 0.
        #expect(try h.read32(0x1_0000) == 0)
    }

    @Test("illegal access sizes and alignments are RAZ/WI; a 64-bit access to a 32-bit pair is two accesses")
    func accessSizes() throws {
        let h = DeviceHarness()
        let idr0 = UInt64(try h.read32(R.idr0))
        #expect(try h.bus.read(PhysicalAddress(DeviceHarness.smmuBase), size: 1) == 0)
        #expect(try h.bus.read(PhysicalAddress(DeviceHarness.smmuBase + 2), size: 4) == 0)
        try h.bus.write(PhysicalAddress(DeviceHarness.smmuBase + R.cr0), size: 2, value: 1)
        #expect(try h.read32(R.cr0) == 0)
        // IDR0 and IDR1 together.
        #expect(try h.read64(R.idr0) == idr0 | UInt64(try h.read32(R.idr1)) << 32)
        // CMDQ_PROD and CMDQ_CONS written together (queue disabled, so CONS is writable).
        try h.write64(R.cmdqProd, 0x0000_0001_0000_0002)
        #expect(try h.read32(R.cmdqProd) == 2)
    }

    @Test("MSI configuration registers are RES0 without IDR0.MSI (§6.3.21)")
    func msiRegistersWithoutMSI() throws {
        var configuration = SMMUConfiguration()
        configuration.msi = false
        let h = DeviceHarness(configuration: configuration)
        try h.write64(R.gerrorIRQCfg0, 0x0809_0040)
        try h.write32(R.eventqIRQCfg1, 5)
        #expect(try h.read64(R.gerrorIRQCfg0) == 0)
        #expect(try h.read32(R.eventqIRQCfg1) == 0)
    }

    @Test("address bits above IDR5.OAS are not stored (§6.3.24)")
    func addressesTruncatedToOAS() throws {
        var configuration = SMMUConfiguration()
        configuration.outputAddressSize = .bits40
        let h = DeviceHarness(configuration: configuration)
        try h.write64(R.cmdqBase, 0x00FF_1234_5678_9000 | 4)
        #expect(try h.read64(R.cmdqBase) == 0x0000_0034_5678_9004)
    }

    @Test("PIDR/CIDR follow the CoreSight layout derived from IIDR")
    func identificationRegisters() throws {
        let bus = SystemBus()
        // Arm (JEP106 continuation 4, identity 0x3B), MMU-700 part 0x487, r1p2.
        let smmu = SMMUv3(bus: bus, iidr: 0x487 << 20 | 1 << 16 | 2 << 12 | 0x43B)
        func r(_ o: UInt64) throws -> UInt64 { try smmu.mmioRead(offset: o, size: 4, requester: .cpu(0)) }
        #expect(try r(R.iidr) == 0x4871_243B)
        #expect(try r(R.pidr0) == 0x87)
        #expect(try r(R.pidr1) == 0xB4)             // PART[11:8] = 4, DES_0 = 0xB
        #expect(try r(R.pidr2) == 0x1B)             // DES_1 = 3, JEDEC, REVISION = 1
        #expect(try r(R.pidr3) == 0x20)
        #expect(try r(R.pidr4) == 0x04)
        #expect([try r(R.cidr0), try r(R.cidr1), try r(R.cidr2), try r(R.cidr3)] == [0x0D, 0xF0, 0x05, 0xB1])
    }
}
