import Testing
import Bus
@testable import SMMUv3
import Testbed

/// The SMMU driven only through MMIO, queues and tables in RAM, as the Linux driver drives it.
@Suite("SMMUv3 device end to end")
struct DeviceEndToEndTests {
    typealias R = SMMURegisterOffset
    static let streamTable: UInt64 = 0x4300_0000
    static let commandQueue: UInt64 = 0x4100_0000
    static let eventQueue: UInt64 = 0x4200_0000
    static let tables: UInt64 = 0x4400_0000
    static let vmid = VMID(5)

    /// Brings the SMMU up in the order of Linux `arm_smmu_device_reset` (SMMUv3 §3.11, docs/hardware.md §SMMUv3 bring-up) and
    /// returns the number of commands the init sequence issued.
    static func initialise(_ h: DeviceHarness) throws -> Int {
        // 1. Disable and wait for CR0ACK.
        try h.write32(R.cr0, 0)
        #expect(try h.read32(R.cr0ack) == 0)
        // 2. CR1: inner-shareable write-back queues and tables; CR2: RECINVSID (PTM is RES0 here).
        try h.write32(R.cr1, 0xD75)
        try h.write32(R.cr2, 0b110)
        // 3. Linear stream table, 256 STEs.
        try h.write64(R.strtabBase, 1 << 62 | Self.streamTable)
        try h.write32(R.strtabBaseCfg, 8)
        // 4. Command queue (256 entries), PROD = CONS = 0, CMDQEN.
        try h.write64(R.cmdqBase, 1 << 62 | Self.commandQueue | 8)
        try h.write32(R.cmdqProd, 0)
        try h.write32(R.cmdqCons, 0)
        try h.write32(R.cr0, SMMUControl0.commandQueueEnable.rawValue)
        #expect(try h.read32(R.cr0ack) == SMMUControl0.commandQueueEnable.rawValue)
        // 5. CFGI_ALL, SYNC, TLBI_NSNH_ALL, SYNC (no TLBI_EL2_ALL: IDR0.HYP = 0).
        let sync = Command.sync(CommandSync(completionSignal: .sendEvent))
        let commands = [Command.cfgiAll(), sync, .tlbiNSNHAll, sync]
        let prod = try h.place(commands, queueBase: Self.commandQueue, log2Size: 8, producer: 0)
        try h.write32(R.cmdqProd, prod)
        #expect(try h.read32(R.cmdqCons) == prod)
        // 6. Event queue (page-1 PROD/CONS), EVENTQEN.
        try h.write64(R.eventqBase, 1 << 62 | Self.eventQueue | 4)
        try h.write32(R.eventqProd, 0)
        try h.write32(R.eventqCons, 0)
        try h.write32(R.cr0, try h.read32(R.cr0) | SMMUControl0.eventQueueEnable.rawValue)
        // 8. IRQs: MSIs to the doorbell, then enable.
        try h.write64(R.eventqIRQCfg0, DeviceHarness.doorbellBase + 0x40)
        try h.write32(R.eventqIRQCfg1, 0xE0)
        try h.write32(R.eventqIRQCfg2, 0x1)
        try h.write64(R.gerrorIRQCfg0, DeviceHarness.doorbellBase + 0x40)
        try h.write32(R.gerrorIRQCfg1, 0xE1)
        try h.write32(R.irqCtrl, SMMUInterruptControl([.globalError, .eventQueue]).rawValue)
        // 9. SMMUEN.
        try h.write32(R.cr0, try h.read32(R.cr0) | SMMUControl0.smmuEnable.rawValue)
        #expect(try h.read32(R.cr0ack) == 0b1101)
        return commands.count
    }

    func writeSTE(_ h: DeviceHarness, sid: UInt32, _ ste: StreamTableEntry) throws {
        try h.bus.writeWords(PhysicalAddress(Self.streamTable + UInt64(sid) * 64), ste.words)
    }

    func issue(_ h: DeviceHarness, _ commands: [Command]) throws {
        let prod = try h.place(commands, queueBase: Self.commandQueue, log2Size: 8, producer: try h.read32(R.cmdqProd))
        try h.write32(R.cmdqProd, prod)
        #expect(try h.read32(R.cmdqCons) == prod)
    }

    @Test("the Linux init sequence through MMIO leaves the SMMU enabled with every command consumed")
    func initSequence() throws {
        let h = DeviceHarness()
        let issued = try Self.initialise(h)
        #expect(h.smmu.isEnabled)
        #expect(h.smmu.translator.counters.commandsConsumed == issued)
        #expect(h.smmu.translator.streamTable == StreamTableConfiguration(
            base: PhysicalAddress(Self.streamTable), log2Size: 8, split: 0, twoLevel: false))
        #expect(h.smmu.translator.recordInvalidStreamIDs)
        #expect(try h.read32(R.gerror) == 0)
    }

    @Test("a stage-2 translation fault becomes an F_TRANSLATION record in the queue in RAM, with an MSI")
    func translationFaultRecorded() throws {
        let h = DeviceHarness()
        _ = try Self.initialise(h)
        let allocator = PageAllocator(base: Self.tables, size: 0x10_0000)
        let s2 = try PageTableBuilder(stage2InputSize: 40, granule: .size4K, bus: h.bus, allocator: allocator)
        try s2.map(input: 0x8000_0000, output: 0x4800_0000, size: 0x1000)
        try writeSTE(h, sid: 0x10, .stage2(vmid: Self.vmid, ttb: PhysicalAddress(s2.root), geometry: s2.geometry,
                                          outputSize: .bits48, record: true))

        // Mapped: the DMA lands where the stage-2 descriptor says.
        guard case .translated(let ok) = h.smmu.handle(DeviceHarness.write(0x8000_0040, sid: 0x10)) else {
            Issue.record("mapped IPA did not translate")
            return
        }
        #expect(ok.output == PhysicalAddress(0x4800_0040))

        // Unmapped: F_TRANSLATION at stage 2, CLASS=IN, IPA = the input (S2-only), recorded
        // because STE.S2R = 1.
        let response = h.smmu.handle(DeviceHarness.write(0x9000_0040, sid: 0x10))
        guard case .terminated(let fault?, abort: true) = response else {
            Issue.record("expected a fault, got \(response)")
            return
        }
        #expect(try h.read32(R.eventqProd) == 1)
        let record = try #require(try h.eventRecord(queueBase: Self.eventQueue, slot: 0))
        #expect(record.type == .fTranslation)
        #expect(record.streamID == StreamID(0x10))
        #expect(record.stage2)
        #expect(record.faultClass == FaultClass.input.rawValue)
        #expect(record.inputAddress == 0x9000_0040)
        #expect(record.ipa == IPA(0x9000_0000))
        #expect(!record.read)
        #expect(record.fault == EventRecord(fault: fault).fault)
        #expect(h.smmu.translator.counters.eventsRecorded == 1)
        // The queue went from empty to non-empty: one event-queue MSI with CFG1's data.
        #expect(h.doorbell.writes.map(\.value) == [0xE0])
    }

    @Test("an unrecorded fault (STE.S2R=0) terminates without an event")
    func unrecordedFault() throws {
        let h = DeviceHarness()
        _ = try Self.initialise(h)
        let allocator = PageAllocator(base: Self.tables, size: 0x10_0000)
        let s2 = try PageTableBuilder(stage2InputSize: 40, granule: .size4K, bus: h.bus, allocator: allocator)
        try writeSTE(h, sid: 0x11, .stage2(vmid: Self.vmid, ttb: PhysicalAddress(s2.root), geometry: s2.geometry,
                                          outputSize: .bits48, record: false))
        guard case .terminated(let fault?, _) = h.smmu.handle(DeviceHarness.write(0x1000, sid: 0x11)) else {
            Issue.record("expected a fault")
            return
        }
        #expect(!fault.record)
        #expect(try h.read32(R.eventqProd) == 0)
        #expect(h.smmu.translator.counters.eventsRecorded == 0)
    }

    @Test("a changed STE takes effect after CFGI_STE + SYNC, not after a TLBI")
    func cfgiSTEMakesChangeVisible() throws {
        let h = DeviceHarness()
        _ = try Self.initialise(h)
        try writeSTE(h, sid: 0x20, .bypass)
        let t = DeviceHarness.write(0x4000_1000, sid: 0x20)
        guard case .translated(let before) = h.smmu.handle(t) else {
            Issue.record("bypass STE did not bypass")
            return
        }
        #expect(before.output == PhysicalAddress(0x4000_1000))

        // Software rewrites the STE to abort (V=1, Config=0) in memory. The SMMU may keep using
        // its cached copy until told (§4.3): the model's configuration cache does.
        try writeSTE(h, sid: 0x20, .abort)
        #expect(h.smmu.handle(t) == .translated(before))

        // A TLB invalidation does not touch configuration caches (§4.3: "cannot assume that
        // invalidation of one type of structure affects those of another type").
        try issue(h, [.tlbiNSNHAll, .sync(CommandSync(completionSignal: .none))])
        #expect(h.smmu.handle(t) == .translated(before))

        // CFGI_STE + SYNC: the new STE is fetched and aborts the stream without an event.
        try issue(h, [.cfgiSTE(StreamID(0x20), leaf: true), .sync(CommandSync(completionSignal: .none))])
        #expect(h.smmu.handle(t) == .terminated(nil, abort: true))
        #expect(h.smmu.translator.counters.eventsRecorded == 0)
    }

    @Test("an out-of-range StreamID with CR2.RECINVSID records C_BAD_STREAMID")
    func badStreamIDRecorded() throws {
        let h = DeviceHarness()
        _ = try Self.initialise(h)
        let response = h.smmu.handle(DeviceHarness.write(0x1000, sid: 0x1_0000))   // ≥ 2^8
        guard case .terminated(let fault?, abort: true) = response else {
            Issue.record("expected C_BAD_STREAMID, got \(response)")
            return
        }
        #expect(fault.type == .cBadStreamID)
        let record = try #require(try h.eventRecord(queueBase: Self.eventQueue, slot: 0))
        #expect(record.type == .cBadStreamID)
        #expect(record.streamID == StreamID(0x1_0000))
    }
}
