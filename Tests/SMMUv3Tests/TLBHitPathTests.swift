import Bus
import SMMUv3
import Testbed
import Testing

/// `SMMUTranslator.translate` answers a TLB hit on a stream whose CD is cached without the full
/// path when nothing observes it (no journal, no trace). These tests check that this changes
/// nothing software can see: the same outcomes and counters as an observed translator, a
/// CFGI_STE/CFGI_CD still makes the new STE/CD take effect while the TLB still holds the old
/// entry (SMMUv3 §5.2.1, §4.3), and a permission failure on a TLB hit is still the fault the
/// full path builds.
@Suite struct TLBHitPathTests {
    static let vmid = TranslationHarness.vmid

    /// One stream, stage 1: page 0x1000 read/write, page 0x2000 read-only.
    private func stage1Harness() throws -> TranslationHarness {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 1)
        try s1.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000)
        var readOnly = PageAttributes()
        readOnly.writable = false
        try s1.map(input: 0x2000, output: 0x30_0000_2000, size: 0x1000, attributes: readOnly)
        return h
    }

    /// A sequence of misses, hits and a permission fault on a hit gives the same outcomes and
    /// counters with and without a journal attached.
    @Test func observedAndUnobservedTranslatorsAgree() throws {
        let plain = try stage1Harness()
        let observed = try stage1Harness()
        let journal = Journal()
        observed.translator.journal = journal
        let steps: [(UInt64, Bool)] = [(0x1000, false), (0x1000, true), (0x2000, false), (0x2000, true), (0x2000, true),
                                       (0x1040, true), (0x3000, false), (0x1000, false)]
        for (address, write) in steps {
            let a = plain.translate(1, address, write: write)
            let b = observed.translate(1, address, write: write)
            #expect(a == b, "\(Hex.format(address)) write=\(write)")
        }
        #expect(plain.translator.counters == observed.translator.counters)
        // Hits: the write to 0x1000, both writes to the read-only 0x2000 (the permission fault
        // is found on the TLB entry), 0x1040 and the last read; 0x3000 is unmapped.
        #expect(plain.translator.counters.tlbHits == 5 && plain.translator.counters.tlbMisses == 3)
        #expect(plain.translator.counters.faults == 3)
        #expect(!journal.entries.isEmpty)
        // The write to the read-only page is a stage-1 permission fault, also when the page's
        // entry was already in the TLB.
        let fault = try #require(plain.translate(1, 0x2000, write: true).fault)
        #expect(fault.type == .fPermission && !fault.stage2)
    }

    /// With the entry still in the TLB, a changed STE takes effect after CFGI_STE and not before.
    @Test func cfgiSTEEndsTheHitPathOfTheStream() throws {
        let h = try stage1Harness()
        #expect(h.translate(1, 0x1000).result?.fromTLB == false)
        #expect(h.translate(1, 0x1000).result?.fromTLB == true)
        try h.setSTE(1, .abort)
        h.translator.invalidate(.contextDescriptorAll(StreamID(2)))
        #expect(h.translate(1, 0x1000).result?.fromTLB == true, "the cached STE still answers")
        h.translator.invalidate(.streamTableEntry(StreamID(1), leaf: true))
        #expect(h.translate(1, 0x1000) == .abortedWithoutEvent)
        #expect(h.translator.tlb.count == 1, "no TLBI: the entry is still there")
    }

    /// With the entry still in the TLB, an invalidated CD is fetched again after CFGI_CD.
    @Test func cfgiCDEndsTheHitPathOfTheSubstream() throws {
        let h = try stage1Harness()
        _ = h.translate(1, 0x1000)
        let misses = h.translator.counters.configCacheMisses
        #expect(h.translate(1, 0x1000).result?.fromTLB == true)
        #expect(h.translator.counters.configCacheMisses == misses)
        // CD 0 becomes invalid in memory: only CFGI_CD makes the SMMU read it again.
        let steAddress = TranslationHarness.streamTableBase + 64
        var ste = StreamTableEntry()
        ste.dw0 = try h.bus.read64(PhysicalAddress(steAddress))
        try h.bus.write64(PhysicalAddress(ste.s1ContextPtr), 0)
        #expect(h.translate(1, 0x1000).result?.fromTLB == true)
        h.translator.invalidate(.contextDescriptor(StreamID(1), SubstreamID(0), leaf: true))
        #expect(h.translate(1, 0x1000).fault?.type == .cBadCD)
        #expect(h.translator.counters.configCacheMisses == misses + 1)
    }

    /// A SubstreamID that only differs from a routed one above bit 19 is not taken for it.
    @Test func wideSubstreamIDIsStillRejected() throws {
        let h = TranslationHarness()
        let s1 = try PageTableBuilder(stage1InputSize: 48, granule: .size4K, bus: h.bus, allocator: h.hostAllocator)
        try s1.map(input: 0x1000, output: 0x30_0000_0000, size: 0x1000)
        let table = try h.allocateHost(4 * 64, alignment: 256)
        for ssid in 0..<4 {
            try h.writeCD(.stage1(asid: ASID(UInt16(ssid + 1)), ttb0: s1.root, geometry: s1.geometry, ips: .bits48), at: table + UInt64(ssid) * 64)
        }
        try h.setSTE(3, .stage1(contextPtr: table, cdMax: 2, s1DSS: 0))
        _ = h.translate(3, 0x1000, ssid: 1)
        #expect(h.translate(3, 0x1000, ssid: 1).result?.fromTLB == true)
        #expect(h.translate(3, 0x1000, ssid: 0x10_0001).fault?.type == .cBadSubstreamID)
        #expect(h.translate(3, 0x1000, ssid: 0x8000_0001).fault?.type == .cBadSubstreamID)
        #expect(h.translate(3, 0x1000).fault?.type == .fStreamDisabled, "no SubstreamID with S1DSS=0")
    }
}
