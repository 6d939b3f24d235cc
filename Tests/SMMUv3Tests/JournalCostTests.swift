import Bus
import SMMUv3
import Testbed
import Testing

/// `TranslationCost` folded from the journal: on hand-written entries, and on real walks where
/// it must equal the translator's own counters (including the L1STD and L1CD reads of two-level
/// tables and the reads of lookups that fail).
@Suite struct JournalCostTests {
    @Test("a hand-written journal: reads per structure, stage and level; TLB hits and misses; other layers' entries ignored")
    func handWritten() {
        let sid = StreamID(8)
        let entries: [JournalEntry] = [
            .route(requesterID: 8, streamID: sid, deviceID: DeviceID(8), translated: true),
            .l1stdRead(streamID: sid, address: 0x7c00_0000, descriptor: 0x7c01_0007),
            .steRead(streamID: sid, address: 0x7c01_0200, dw0: 0x4800_100f),
            .steFetch(streamID: sid, cached: false, stage1: true, stage2: true),
            .walkRead(stage: 2, level: 1, address: 0x7c40_2008, descriptor: 0x7c40_4003),
            .walkRead(stage: 2, level: 2, address: 0x7c40_4200, descriptor: 0x6800_07fd),
            .l1cdRead(streamID: sid, index: 5, address: 0x6800_0000, descriptor: 0x6800_1001),
            .walkRead(stage: 2, level: 1, address: 0x7c40_2008, descriptor: 0x7c40_4003),
            .walkRead(stage: 2, level: 2, address: 0x7c40_4200, descriptor: 0x6800_07fd),
            .cdRead(streamID: sid, index: 5, address: 0x6800_1140, dw0: 0x3510),
            .cdFetch(streamID: sid, index: 5, cached: false),
            .tlb(hit: false, address: 0x1000, stage1: true, stage2: true),
            .walkRead(stage: 1, level: 3, address: 0x6800_2000, descriptor: 0x4080_0f47),
            .smmuTranslated(input: 0x1000, intermediate: 0x4080_0000, output: 0x6080_0000, stage1: true, stage2: true),
            .tlb(hit: true, address: 0x1000, stage1: true, stage2: true),
            .lpiPending(intid: 8192, cpu: 0),
        ]
        let cost = TranslationCost(journal: entries)
        #expect(cost.l1stdReads == 1 && cost.steReads == 1 && cost.streamTableReads == 2)
        #expect(cost.l1cdReads == 1 && cost.cdReads == 1 && cost.contextDescriptorReads == 2)
        #expect(cost.descriptorReads(stage: 1) == 1 && cost.descriptorReads(stage: 2) == 4)
        #expect(cost.descriptorReads[.init(stage: 2, level: 1)] == 2)
        #expect(cost.perLevelText == "S1 L3 ×1, S2 L1 ×2, S2 L2 ×2")
        #expect(cost.totalReads == 9)
        #expect(cost.tlbHits == 1 && cost.tlbMisses == 1)
        #expect(TranslationCost(journal: [JournalEntry]()) == TranslationCost())
    }

    /// The journal's cost equals the counters' difference over the same translation.
    static func expectSame(_ cost: TranslationCost, _ after: SMMUCounters, _ before: SMMUCounters,
                           sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(cost.streamTableReads == after.steFetches - before.steFetches, sourceLocation: sourceLocation)
        #expect(cost.contextDescriptorReads == after.cdFetches - before.cdFetches, sourceLocation: sourceLocation)
        #expect(cost.descriptorReads(stage: 1) == after.stage1DescriptorReads - before.stage1DescriptorReads, sourceLocation: sourceLocation)
        #expect(cost.descriptorReads(stage: 2) == after.stage2DescriptorReads - before.stage2DescriptorReads, sourceLocation: sourceLocation)
        #expect(cost.tlbHits == after.tlbHits - before.tlbHits && cost.tlbMisses == after.tlbMisses - before.tlbMisses,
                sourceLocation: sourceLocation)
        #expect(cost.totalReads == after.totalReads - before.totalReads, sourceLocation: sourceLocation)
    }

    @Test("a real nested miss: one read per S1 level, six 4-level S2 walks, as the counters say; the repeat is one TLB hit and no read")
    func nestedWalk() throws {
        let h = TranslationHarness()
        let (s1, _, _) = try h.makeNested(sid: 1)
        try s1.map(input: 0x0000_1234_5678_9000, output: TranslationHarness.guestDataIPA, size: 0x1000)
        let journal = Journal()
        h.translator.journal = journal
        var before = h.translator.counters
        _ = try #require(h.translate(1, 0x0000_1234_5678_9ABC).result)
        let miss = TranslationCost(journal: journal.entries)
        Self.expectSame(miss, h.translator.counters, before)
        #expect(miss.perLevelText == "S1 L0 ×1, S1 L1 ×1, S1 L2 ×1, S1 L3 ×1, S2 L0 ×6, S2 L1 ×6, S2 L2 ×6, S2 L3 ×6")
        #expect(miss.steReads == 1 && miss.cdReads == 1 && miss.tlbMisses == 1 && miss.tlbHits == 0)
        journal.removeAll()
        before = h.translator.counters
        _ = try #require(h.translate(1, 0x0000_1234_5678_9ABC).result)
        let hit = TranslationCost(journal: journal.entries)
        Self.expectSame(hit, h.translator.counters, before)
        #expect(hit.tlbHits == 1 && hit.totalReads == 0)
    }

    @Test("a two-level stream table: the L1STD read, then the STE (IHI0070 §3.3.2)")
    func twoLevelStreamTable() throws {
        let h = TranslationHarness(log2Size: 16, twoLevel: true, split: 8)
        let s2 = try h.makeStage2(sid: 0x1234)
        try s2.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000)
        let journal = Journal()
        h.translator.journal = journal
        _ = try #require(h.translate(0x1234, 0x1008).result)
        let cost = TranslationCost(journal: journal.entries)
        Self.expectSame(cost, h.translator.counters, SMMUCounters())
        #expect(cost.l1stdReads == 1 && cost.steReads == 1)
        // The L1STD read comes first, at STRTAB_BASE + 8 × (StreamID >> SPLIT).
        guard case .l1stdRead(_, let address, _)? = journal.entries.first else {
            Issue.record("the first entry is not the L1STD read: \(journal.entries.first.map { "\($0)" } ?? "none")")
            return
        }
        #expect(address == TranslationHarness.streamTableBase + (0x1234 >> 8) * 8)
    }

    @Test("a two-level CD table in nested mode: the L1CD and CD reads, each after its stage-2 walk")
    func twoLevelCDTable() throws {
        let h = TranslationHarness()
        let s2 = try h.hostStage2()
        let s1 = try h.guestStage1()
        try s1.map(input: 0x2000, output: TranslationHarness.guestDataIPA, size: 0x1000)
        let l2 = try h.allocateGuest(0x1000, alignment: 0x1000)
        let l1 = try h.allocateGuest(64)
        try h.bus.write64(PhysicalAddress(l1 + TranslationHarness.guestOffset), LevelOneContextDescriptor(valid: true, l2Ptr: l2).rawValue)
        let cd = ContextDescriptor.stage1(asid: ASID(1), ttb0: s1.root, geometry: s1.geometry, ips: .bits48)
        try h.writeCD(cd, at: l2 + 5 * 64 + TranslationHarness.guestOffset)
        try h.setSTE(7, .nested(contextPtr: l1, cdMax: 6, s1Fmt: 1, vmid: VMID(1), s2TTB: PhysicalAddress(s2.root),
                                s2Geometry: s2.geometry, outputSize: .bits48))
        let journal = Journal()
        h.translator.journal = journal
        _ = try #require(h.translate(7, 0x2010, ssid: 5).result)
        let cost = TranslationCost(journal: journal.entries)
        Self.expectSame(cost, h.translator.counters, SMMUCounters())
        #expect(cost.l1cdReads == 1 && cost.cdReads == 1)
        let l1cd = journal.entries.firstIndex { if case .l1cdRead = $0 { true } else { false } }
        let cdRead = journal.entries.firstIndex { if case .cdRead(_, 5, let pa, _) = $0 { pa == l2 + 5 * 64 + TranslationHarness.guestOffset } else { false } }
        let l1cdIndex = try #require(l1cd), cdIndex = try #require(cdRead)
        #expect(l1cdIndex < cdIndex)
        // Four stage-2 reads (the L1CD's IPA) come right before the L1CD read.
        #expect(journal.entries[l1cdIndex - 4..<l1cdIndex].allSatisfy { if case .walkRead(2, _, _, _) = $0 { true } else { false } })
    }

    @Test("failed lookups still cost their reads: an L1CD with V=0 and an ILLEGAL STE, with no cdFetch/steFetch after them")
    func failedLookups() throws {
        let h = TranslationHarness()
        let l1 = try h.allocateHost(16 * 8, alignment: 128)
        try h.setSTE(1, .stage1(contextPtr: l1, cdMax: 10, s1Fmt: 1))
        let journal = Journal()
        h.translator.journal = journal
        #expect(h.translate(1, 0, ssid: 70).fault?.type == .cBadSubstreamID)
        var cost = TranslationCost(journal: journal.entries)
        Self.expectSame(cost, h.translator.counters, SMMUCounters())
        #expect(cost.steReads == 1 && cost.l1cdReads == 1 && cost.cdReads == 0)
        #expect(!journal.entries.contains { if case .cdFetch = $0 { true } else { false } })

        var ste = StreamTableEntry.stage1(contextPtr: l1)
        ste.s1ContextPtr = 1 << 48   // beyond the OAS: ILLEGAL (§5.2.2)
        try h.setSTE(2, ste)
        journal.removeAll()
        let before = h.translator.counters
        #expect(h.translate(2, 0).fault?.type == .cBadSTE)
        cost = TranslationCost(journal: journal.entries)
        Self.expectSame(cost, h.translator.counters, before)
        #expect(cost.steReads == 1 && cost.totalReads == 1)
        #expect(!journal.entries.contains { if case .steFetch = $0 { true } else { false } })
    }
}
