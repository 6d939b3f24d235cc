import Testing
import Bus
@testable import SMMUv3

@Suite("SMMUv3 event records and the event queue (§7.2–7.4)")
struct EventQueueTests {
    typealias R = SMMURegisterOffset
    static let queue: UInt64 = 0x4200_0000

    /// Faults whose every field is one the event's layout carries, so a decoded record must
    /// give them back exactly.
    static let faults: [SMMUFault] = [
        SMMUFault(type: .fTranslation, streamID: StreamID(0x10), substreamID: SubstreamID(3),
                  inputAddress: 0xFFBF_0040, isWrite: true, stage2: true, faultClass: .input,
                  ipa: IPA(0x0809_0000)),
        SMMUFault(type: .fTranslation, streamID: StreamID(0x10), inputAddress: 0x1234_5678,
                  isWrite: false, instruction: true, privileged: true, stage2: false, faultClass: .input),
        SMMUFault(type: .fPermission, streamID: StreamID(0xFFFF_FFFF), inputAddress: .max, isWrite: true,
                  stage2: true, faultClass: .translationTable, ipa: IPA(0x000F_FFFF_FFFF_F000), tableWalkWrite: true),
        SMMUFault(type: .fAddrSize, streamID: StreamID(1), inputAddress: 0x8000_0000_0000, stage2: true,
                  faultClass: .cd, ipa: IPA(0x4000_0000)),
        SMMUFault(type: .fAccess, streamID: StreamID(2), substreamID: SubstreamID(0xF_FFFF), inputAddress: 0x1000),
        SMMUFault(type: .fWalkEABT, streamID: StreamID(3), inputAddress: 0x2000, isWrite: true, stage2: false,
                  faultClass: .translationTable, fetchAddress: PhysicalAddress(0x000F_FFFF_FFFF_FFF8)),
        SMMUFault(type: .fSTEFetch, streamID: StreamID(4), fetchAddress: PhysicalAddress(0x4000_0100)),
        SMMUFault(type: .fCDFetch, streamID: StreamID(5), substreamID: SubstreamID(7), fetchAddress: PhysicalAddress(0x4000_0200)),
        SMMUFault(type: .cBadSTE, streamID: StreamID(6), substreamID: SubstreamID(1)),
        SMMUFault(type: .cBadStreamID, streamID: StreamID(0x1_0000)),
        SMMUFault(type: .cBadSubstreamID, streamID: StreamID(7), substreamID: SubstreamID(0)),
        SMMUFault(type: .cBadCD, streamID: StreamID(8), substreamID: SubstreamID(9)),
        SMMUFault(type: .fStreamDisabled, streamID: StreamID(9)),
        SMMUFault(type: .fUUT, streamID: StreamID(10), inputAddress: 0xABC, isWrite: true, privileged: true),
        SMMUFault(type: .fTranslForbidden, streamID: StreamID(11), inputAddress: 0x1000, isWrite: false),
        SMMUFault(type: .fTLBConflict, streamID: StreamID(12), inputAddress: 0x5000),
    ]

    @Test("an event record decoded from its words gives back the fault", arguments: faults)
    func recordRoundTrip(fault: SMMUFault) throws {
        let record = EventRecord(fault: fault)
        let decoded = try #require(EventRecord(words: record.words))
        #expect(decoded == record)
        #expect(decoded.fault == fault)
    }

    @Test("field positions match Linux's EVTQ_* masks")
    func recordFieldPositions() {
        let record = EventRecord(fault: Self.faults[0])
        let w = record.words
        // EventID 0x10, SSV[11], SSID 3 at [31:12], SID 0x10 at [63:32].
        #expect(w[0] == 0x0000_0010_0000_3810)
        // RnW[35] = 0 (a write), S2[39] = 1, CLASS[41:40] = 2 (IN).
        #expect(w[1] == 1 << 39 | 2 << 40)
        #expect(w[2] == 0xFFBF_0040)
        #expect(w[3] == 0x0809_0000)                // IPA[55:12] in place
        // A stage-1 fault: S2 = 0, IPA UNKNOWN (written 0), RnW = 1, InD[34], PnU[33].
        let s1 = EventRecord(fault: Self.faults[1]).words
        #expect(s1[1] == 1 << 35 | 1 << 34 | 1 << 33 | 2 << 40)
        #expect(s1[3] == 0)
    }

    @Test("fields an event does not define are RES0 (§7.3): C_BAD_STE carries only SID/SSID")
    func undefinedFieldsZero() {
        let fault = SMMUFault(type: .cBadSTE, streamID: StreamID(6), inputAddress: 0xFFFF, isWrite: true,
                              stage2: true, ipa: IPA(0x1000))
        let w = EventRecord(fault: fault).words
        #expect(w == [0x0000_0006_0000_0004, 0, 0, 0])
        // F_STREAM_DISABLED has no SubstreamID; C_BAD_SUBSTREAMID has one without SSV (§7.3.7, §7.3.9).
        #expect(EventRecord(fault: SMMUFault(type: .fStreamDisabled, streamID: StreamID(1),
                                             substreamID: SubstreamID(5))).words[0] == 0x1_0000_0006)
        #expect(EventRecord(fault: SMMUFault(type: .cBadSubstreamID, streamID: StreamID(1),
                                             substreamID: SubstreamID(5))).words[0] == 0x1_0000_5008)
    }

    @Test("an unknown EventID decodes to a record without a fault")
    func unknownEvent() throws {
        let record = try #require(EventRecord(words: [0x24, 0, 0, 0]))   // E_PAGE_REQUEST: not modelled
        #expect(record.fault == nil)
        #expect(EventRecord(words: [1, 2, 3]) == nil)
    }

    @Test("recording writes the 32-byte record at PROD, advances PROD and interrupts on empty → non-empty")
    func recordIntoQueue() throws {
        let h = DeviceHarness()
        try h.write64(R.eventqIRQCfg0, DeviceHarness.doorbellBase + 0x40)
        try h.write32(R.eventqIRQCfg1, 0x99)
        try h.write32(R.irqCtrl, SMMUInterruptControl.eventQueue.rawValue)
        try h.enableEventQueue(base: Self.queue, log2Size: 3)
        h.smmu.recordEvent(Self.faults[0])
        h.smmu.recordEvent(Self.faults[1])
        #expect(try h.read32(R.eventqProd) == 2)
        #expect(try h.eventRecord(queueBase: Self.queue, slot: 0)?.fault == Self.faults[0])
        #expect(try h.eventRecord(queueBase: Self.queue, slot: 1)?.fault == Self.faults[1])
        #expect(h.smmu.translator.counters.eventsRecorded == 2)
        // Only the first record found the queue empty.
        #expect(h.smmu.wiredInterrupts.eventQueue == 1)
        #expect(h.doorbell.writes == [RecordingDevice.Write(offset: 0x40, size: 4, value: 0x99,
                                                            requester: .device(SMMUv3.defaultMSIDeviceID))])
        // Software consumes both; the next record interrupts again.
        try h.write32(R.eventqCons, 2)
        h.smmu.recordEvent(Self.faults[2])
        #expect(h.smmu.wiredInterrupts.eventQueue == 2)
    }

    @Test("overflow: records are lost, OVFLG toggles once per unacknowledged overflow, ack re-arms it (§7.4)")
    func overflow() throws {
        let h = DeviceHarness()
        try h.enableEventQueue(base: Self.queue, log2Size: 1)       // 2 entries
        let f = Self.faults[0]
        h.smmu.recordEvent(f)
        h.smmu.recordEvent(f)
        #expect(try h.read32(R.eventqProd) == 0b10)                  // full: index 0, wrap 1
        h.smmu.recordEvent(f)                                        // lost: overflow
        #expect(try h.read32(R.eventqProd) == 0x8000_0002)
        h.smmu.recordEvent(f)                                        // lost: overflow already pending
        #expect(try h.read32(R.eventqProd) == 0x8000_0002)
        #expect(h.smmu.translator.counters.eventsRecorded == 2)
        #expect(h.smmu.translator.counters.eventsDropped == 2)

        // Consuming without acknowledging: records go into free space, no second OVFLG toggle.
        try h.write32(R.eventqCons, 0b01)
        h.smmu.recordEvent(f)
        #expect(try h.read32(R.eventqProd) == 0x8000_0003)
        h.smmu.recordEvent(f)                                        // full again, lost
        #expect(try h.read32(R.eventqProd) & 0x8000_0000 != 0)

        // Acknowledge (copy OVFLG to OVACKFLG) and free space; the next overflow toggles back.
        try h.write32(R.eventqCons, 0x8000_0003)
        h.smmu.recordEvent(f)
        h.smmu.recordEvent(f)
        #expect(try h.read32(R.eventqProd) == 0x8000_0001)           // full again, nothing lost yet
        h.smmu.recordEvent(f)
        #expect(try h.read32(R.eventqProd) == 0x0000_0001)           // lost: OVFLG toggles back to 0
        #expect(h.smmu.translator.counters.eventsDropped == 4)
    }

    @Test("EVENTQEN=0: records are discarded and counted, without an overflow")
    func disabledQueueDiscards() throws {
        let h = DeviceHarness()
        try h.write64(R.eventqBase, Self.queue | 1)
        h.smmu.recordEvent(Self.faults[0])
        h.smmu.recordEvent(Self.faults[0])
        h.smmu.recordEvent(Self.faults[0])
        #expect(try h.read32(R.eventqProd) == 0)
        #expect(h.smmu.translator.counters.eventsDropped == 3)
        #expect(h.smmu.translator.counters.eventsRecorded == 0)
        #expect(try h.bus.read64(PhysicalAddress(Self.queue)) == 0)
    }

    @Test("an aborted record write activates EVENTQ_ABT_ERR and delivery stops until acknowledged (§7.5)")
    func queueWriteAbort() throws {
        let h = DeviceHarness()
        try h.enableEventQueue(base: 0x2000_0000, log2Size: 2)      // not backed
        h.smmu.recordEvent(Self.faults[0])
        #expect(try h.read32(R.gerror) == SMMUGlobalErrors.eventQueueAbort.rawValue)
        #expect(try h.read32(R.eventqProd) == 0)
        h.smmu.recordEvent(Self.faults[0])
        #expect(h.smmu.translator.counters.eventsDropped == 2)
    }

    @Test("EVENTQ_PROD is guarded by EVENTQEN; CONS stays writable")
    func prodGuarded() throws {
        let h = DeviceHarness()
        try h.enableEventQueue(base: Self.queue, log2Size: 2)
        try h.write32(R.eventqProd, 3)
        #expect(try h.read32(R.eventqProd) == 0)
        try h.write32(R.eventqCons, 0x8000_0000)
        #expect(try h.read32(R.eventqCons) == 0x8000_0000)
    }
    @Test("no event-queue interrupt without EVENTQ_IRQEN; an aborted event MSI sets MSI_EVENTQ_ABT_ERR")
    func eventInterruptEnableAndAbort() throws {
        let h = DeviceHarness()
        try h.enableEventQueue(base: Self.queue, log2Size: 3)
        try h.write64(R.eventqIRQCfg0, 0x2000_0000)                     // nothing decodes there
        h.smmu.recordEvent(Self.faults[0])
        #expect(h.smmu.wiredInterrupts.eventQueue == 0)
        #expect(try h.read32(R.gerror) == 0)
        try h.write32(R.eventqCons, 1)                                  // drained
        try h.write32(R.irqCtrl, SMMUInterruptControl.eventQueue.rawValue)
        h.smmu.recordEvent(Self.faults[0])
        #expect(h.smmu.wiredInterrupts.eventQueue == 1)
        #expect(try h.read32(R.gerror) == SMMUGlobalErrors.eventQueueMSIAbort.rawValue)
        // The record itself was written: MSI failure does not lose events.
        #expect(h.smmu.translator.counters.eventsRecorded == 2)
    }
}
