import Bus
import SMMUv3
import Testbed
import Testing

/// Exact read counts per translation. The model has no walk caches, so a miss costs the
/// architected reads; a change that moves these numbers must be explained, not re-blessed.
@Suite struct TranslationCostTests {
    /// Nested, 4-level 4K tables at both stages (48-bit VA, 48-bit IPA, S2 starting at L0):
    /// - STE fetch: 1.
    /// - CD fetch: 1, after a full S2 walk of the CD's IPA: 4 S2 reads.
    /// - S1 walk: 4 S1 descriptor reads, each preceded by a 4-level S2 walk of the descriptor's
    ///   IPA: 16 S2 reads.
    /// - The output IPA through S2: 4 S2 reads.
    /// So 4 S1 + (4 + 1) × 4 = 24 walk reads for the translation proper, plus the STE, the CD and
    /// the CD's 4 S2 reads: stage2DescriptorReads = 24.
    @Test func nestedMissCostsTheArchitectedReadsAndARepeatCostsNone() throws {
        let h = TranslationHarness()
        let (s1, s2, _) = try h.makeNested(sid: 1)
        #expect(s1.geometry.startLevel == 0 && s2.geometry.startLevel == 0, "both stages must be 4-level for this count")
        try s1.map(input: 0x0000_1234_5678_9000, output: TranslationHarness.guestDataIPA, size: 0x1000)
        let before = h.translator.counters
        let first = try #require(h.translate(1, 0x0000_1234_5678_9ABC).result)
        var c = h.translator.counters
        #expect(c.steFetches - before.steFetches == 1)
        #expect(c.cdFetches - before.cdFetches == 1)
        #expect(c.stage1DescriptorReads - before.stage1DescriptorReads == 4)
        #expect(c.stage2DescriptorReads - before.stage2DescriptorReads == 4 + 4 * 4 + 4)
        #expect(c.tlbMisses == 1 && c.configCacheMisses == 1)
        #expect(!first.fromTLB)

        let again = try #require(h.translate(1, 0x0000_1234_5678_9ABC).result)
        let after = h.translator.counters
        #expect(after.totalReads == c.totalReads, "a TLB + configuration-cache hit reads nothing")
        #expect(after.tlbHits == 1 && after.configCacheHits == 1)
        #expect(again.fromTLB)
        #expect(again.output == first.output)
        c = after
        // Another offset in the same page also hits.
        _ = try #require(h.translate(1, 0x0000_1234_5678_9000).result)
        #expect(h.translator.counters.totalReads == c.totalReads)
    }

    /// A 2-level stream table adds the L1STD read to the STE fetch count.
    @Test func twoLevelStreamTableCountsTheL1STDRead() throws {
        let h = TranslationHarness(log2Size: 16, twoLevel: true, split: 8)
        let s2 = try h.makeStage2(sid: 0x1234)
        try s2.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000)
        let r = try #require(h.translate(0x1234, 0x1008).result)
        #expect(r.output.rawValue == 0x30_0000_1008)
        #expect(h.translator.counters.steFetches == 2)
        #expect(h.translator.counters.stage2DescriptorReads == 4)
    }

    /// Stage 1 only: the start level follows T0SZ. 48-bit → L0 (4 reads); 39-bit → L1 (3 reads);
    /// 64K/42-bit → L2 (2 reads).
    @Test(arguments: [(Granule.size4K, 48, 4), (.size4K, 39, 3), (.size64K, 42, 2), (.size16K, 47, 3), (.size16K, 48, 4)])
    func stage1MissReadsOneDescriptorPerLevel(granule: Granule, inputSize: Int, reads: Int) throws {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 2, granule: granule, inputSize: inputSize)
        try s1.map(input: granule.size * 3, output: 0x30_0000_0000, size: granule.size, blocks: false)
        _ = try #require(h.translate(2, granule.size * 3 + 8).result)
        #expect(h.translator.counters.stage1DescriptorReads == reads)
        #expect(h.translator.counters.steFetches == 1 && h.translator.counters.cdFetches == 1)
    }

    /// Stage 2 with concatenated start tables: a 40-bit IPA on 4K starts at L1 with 2 tables
    /// (Linux io-pgtable), so a walk is 3 reads, not 4.
    @Test func concatenatedStage2StartSavesALevel() throws {
        let h = TranslationHarness()
        let s2 = try h.makeStage2(sid: 3, inputSize: 40)
        #expect(s2.geometry.startLevel == 1 && s2.geometry.concatenatedTables == 2)
        try s2.map(input: 0xFF_FFFF_F000, output: 0x30_0000_0000, size: 0x1000)
        _ = try #require(h.translate(3, 0xFF_FFFF_F010).result)
        #expect(h.translator.counters.stage2DescriptorReads == 3)
    }

    /// Nested with a 2-level CD table (S1Fmt=1): the L1CD read is a CD fetch and its IPA costs a
    /// stage-2 walk too: 2 CD fetches and 4 + 4 S2 reads before the S1 walk.
    @Test func twoLevelCDTableInNestedModeWalksStage2ForBothFetches() throws {
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
        let r = try #require(h.translate(7, 0x2010, ssid: 5).result)
        #expect(r.output.rawValue == TranslationHarness.guestDataIPA + 0x10 + TranslationHarness.guestOffset)
        let c = h.translator.counters
        #expect(c.cdFetches == 2)
        #expect(c.stage2DescriptorReads == 4 + 4 + 4 * 4 + 4)
    }
}
