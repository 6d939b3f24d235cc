import Testing
import Bus
import Machine
import SMMUv3
@testable import LinuxKernel

@Suite("arm-smmu-v3: probe and reset")
struct ArmSMMUv3ProbeTests {
    @Test("hw_probe on qemu-virt's SMMU (QEMU 11.0, stage=nested): 16-bit SIDs → 2-level stream table, both stages, no MSI (so no MSI polling), no CD2L, no SSIDs, RIL, 44-bit OAS, 4K|2M|1G")
    func probesQEMUVirtIDRegisters() throws {
        let f = try SMMUFixture.make()
        let features = f.driver.features
        // SMMUConfiguration.qemuVirt: SIDSIZE 16 > STRTAB_SPLIT 8, ST_LEVEL = 2-level.
        #expect(features.streamIDBits == 16)
        #expect(features.twoLevelStreamTable)
        #expect(features.stage1 && features.stage2 && features.nesting)
        // ASID16 / VMID16 set.
        #expect(features.asidBits == 16 && features.vmidBits == 16)
        // QEMU sets neither IDR0.MSI nor CD2L, and SSIDSIZE is 0: no ARM_SMMU_OPT_MSIPOLL
        // (CMD_SYNC by SEV, completion seen in CMDQ_CONS), linear CD tables, no PASIDs.
        #expect(!features.msi && !features.msiPolling)
        #expect(!features.twoLevelCDTable && features.substreamIDBits == 0)
        #expect(features.rangeInvalidation)
        // Terminate-only stall model: no ARM_SMMU_FEAT_STALLS, so no S1STALLD in STEs.
        #expect(!features.stalls)
        // IDR5.OAS = 0b100 (QEMU's SMMU_IDR5_OAS_44), TTF AArch64 only → ias = max(0, 44).
        #expect(features.outputAddressBits == 44 && features.inputAddressBits == 44)
        // GRAN4K/16K/64K all set; the 4K kernel keeps SZ_4K | SZ_2M | SZ_1G.
        #expect(f.driver.pageSizeBitmap == (1 << 12) | (1 << 21) | (1 << 30))
        // IDR1.CMDQS = EVENTQS = 19, capped by Q_MAX_SZ_SHIFT (20) − entry shift.
        #expect(features.commandQueueShift == 16)
        #expect(features.eventQueueShift == 15)
    }

    @Test("2-level stream table: 256 L1 descriptors, STRTAB_BASE_CFG FMT=1 SPLIT=8 LOG2SIZE=16 as read back from the SMMU")
    func twoLevelStreamTableRegisters() throws {
        let f = try SMMUFixture.make()
        let base = f.driver.node.region.base.rawValue
        let cfg = UInt32(truncatingIfNeeded: try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.strtabBaseCfg), size: 4))
        // (2^16 − 1) >> 8 + 1 = 256 L1 entries; LOG2SIZE = log2(256) + 8.
        #expect(SMMURegisterField.streamTableFormat(cfg) == 1)
        #expect(SMMURegisterField.streamTableSplit(cfg) == 8)
        #expect(SMMURegisterField.streamTableLog2Size(cfg) == 16)
        let strtab = try #require(f.driver.streamTable)
        #expect(strtab.entries == 256)
        let strtabBase = try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.strtabBase), size: 8)
        #expect(SMMURegisterField.streamTableAddress(strtabBase) == strtab.base.rawValue)
        // No L2 table until a master uses a SID: every L1 descriptor is invalid (Span 0).
        #expect(try f.ram(strtab.base.rawValue + 8 * 0) == 0)
    }

    @Test("arm_smmu_init_l2_strtab: probing SID 0x108 allocates L2 table 1 (Span 9) full of abort STEs")
    func levelTwoTableAllocatedPerMaster() throws {
        let f = try SMMUFixture.make()
        _ = try f.device("dev", sids: [0x108])
        let strtab = try #require(f.driver.streamTable)
        let l1 = LevelOneStreamTableDescriptor(rawValue: try f.ram(strtab.base.rawValue + 8 * 1))
        #expect(l1.span == 9)   // STRTAB_SPLIT + 1: 2^(9−1) = 256 STEs
        #expect(l1.l2Ptr % (256 * 64) == 0)
        // L1 entry 0 stays invalid: its SIDs have no master.
        #expect(try f.ram(strtab.base.rawValue) == 0)
        // Every STE of the new table is V=1, Config=abort (disable_bypass).
        for sid: UInt32 in [0x100, 0x108, 0x1FF] {
            let ste = try #require(try f.driver.streamTableEntry(for: StreamID(sid)))
            #expect(ste.valid && ste.config == .abort)
        }
        // The SMMU really finds that STE through the L1 descriptor: a DMA from an unknown
        // StreamID in that range would abort silently; the table address is what STE lookup uses.
        #expect(try f.driver.streamTableEntry(for: StreamID(0x208)) == nil)
    }

    @Test("a linear stream table when SIDSIZE ≤ 8: 2^SIDSIZE abort STEs, FMT=0, LOG2SIZE=SIDSIZE")
    func linearStreamTableForSmallSIDSpace() throws {
        var smmu = SMMUConfiguration()
        smmu.streamIDBits = 8
        let f = try SMMUFixture.make(smmu: smmu)
        let strtab = try #require(f.driver.streamTable)
        #expect(!strtab.twoLevel)
        #expect(strtab.baseConfigRegister == 8)
        #expect(strtab.entries == 256)
        let ste = try #require(try f.driver.streamTableEntry(for: StreamID(255)))
        #expect(ste.valid && ste.config == .abort)
    }

    @Test("arm_smmu_device_reset writes the registers in Linux's order and ends with CMDQEN|EVTQEN|SMMUEN acknowledged")
    func resetOrder() throws {
        let trace = TraceLog()
        let f = try SMMUFixture.make(trace: trace)
        let base = f.driver.node.region.base.rawValue
        let R = SMMURegisterOffset.self
        let writes: [(UInt64, UInt64)] = trace.records.compactMap { record in
            guard record.layer == .bus, record.step.hasPrefix("MMIO write"), let address = record.address,
                  address >= base, address - base < 0x2_0000 else { return nil }
            return (address - base, record.value ?? 0)
        }
        // The first register writes up to and including CMDQEN, in arm_smmu_device_reset's order.
        let expectedPrefix: [UInt64] = [R.cr0, R.cr1, R.cr2, R.strtabBase, R.strtabBaseCfg, R.cmdqBase, R.cmdqProd, R.cmdqCons, R.cr0]
        #expect(writes.prefix(expectedPrefix.count).map(\.0) == expectedPrefix)
        #expect(writes.first?.1 == 0)                 // CR0 cleared first
        #expect(writes[8].1 == 1 << 3)                // then CMDQEN alone
        // CR1: table and queue ISH write-back; CR2: PTM | RECINVSID.
        #expect(writes[1].1 == 0xD75)
        #expect(writes[2].1 == 0x6)
        // The event queue is programmed after the invalidation commands and before EVTQEN.
        let offsets = writes.map(\.0)
        let eventqBase = try #require(offsets.firstIndex(of: R.eventqBase))
        #expect(offsets[eventqBase...].prefix(4) == [R.eventqBase, R.eventqProd, R.eventqCons, R.cr0])
        #expect(writes[eventqBase + 3].1 == (1 << 3) | (1 << 2))
        // Between CMDQEN and the event queue: only CMDQ_PROD kicks (the commands).
        #expect(offsets[9..<eventqBase].allSatisfy { $0 == R.cmdqProd })
        // Interrupts: IRQ_CTRL off, MSI addresses cleared, IRQ_CTRL = GERROR | EVTQ, then SMMUEN.
        let irqCtrl = try #require(offsets.firstIndex(of: R.irqCtrl))
        #expect(irqCtrl > eventqBase)
        #expect(writes.last?.0 == R.cr0)
        #expect(writes.last?.1 == 0xD)
        #expect(writes.filter { $0.0 == R.irqCtrl }.map(\.1) == [0, 0x5])
        let cr0ack = try f.machine.bus.read(PhysicalAddress(base + R.cr0ack), size: 4)
        #expect(cr0ack == 0xD)
    }

    @Test("reset invalidates with CFGI_ALL, SYNC, TLBI_NSNH_ALL, SYNC (no TLBI_EL2_ALL without IDR0.HYP)")
    func resetInvalidationCommands() throws {
        let f = try SMMUFixture.make()
        let log = f.driver.commandLog
        #expect(log.map(\.opcode) == [.cfgiSTERange, .sync, .tlbiNSNHAll, .sync])
        #expect(log.first == Command.cfgiAll())
        // Every command was consumed: hardware CONS equals PROD.
        let base = f.driver.node.region.base.rawValue
        let prod = try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.cmdqProd), size: 4)
        let cons = try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.cmdqCons), size: 4)
        #expect(prod == 4 && cons == 4)
    }

    @Test("probing an SMMU left enabled: \"SMMU currently enabled! Resetting...\" and GBPA.ABORT set through the UPDATE handshake")
    func reprobeEnabledSMMUAbortsThroughGBPA() throws {
        let f = try SMMUFixture.make()
        let second = ArmSMMUv3Driver(kernel: f.kernel, index: 1, node: f.driver.node)
        try second.probe()
        #expect(f.kernel.log.lines.contains { $0.hasSuffix("SMMU currently enabled! Resetting...") })
        let base = f.driver.node.region.base.rawValue
        let gbpa = try f.machine.bus.read(PhysicalAddress(base + SMMURegisterOffset.gbpa), size: 4)
        #expect(gbpa.bit(SMMURegisterField.gbpaAbortBit))
        #expect(!gbpa.bit(SMMURegisterField.gbpaUpdateBit))
    }
}
