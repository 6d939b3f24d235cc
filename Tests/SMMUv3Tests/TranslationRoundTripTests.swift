import Bus
import SMMUv3
import Testing

/// DMA round trips: a device write through a translated address must land in RAM at the PA the
/// tables say. Expected PAs are computed from the mapping (output base + offset into the
/// mapped range), never from the translator.
@Suite struct TranslationRoundTripTests {
    static let granules: [Granule] = [.size4K, .size16K, .size64K]

    /// Offsets probed in a mapped range of 4 pages: the first byte, a word in the middle of the
    /// second page, and the last word of the last page.
    static func probes(_ granule: Granule) -> [UInt64] {
        [0, granule.size + 0x124, 4 * granule.size - 4]
    }

    @Test(arguments: granules)
    func stage1OnlyWritesLandAtMappedPA(granule: Granule) throws {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 3, granule: granule)
        let va: UInt64 = 0x0000_0080_1230_0000 & ~(granule.size - 1)
        let pa: UInt64 = 0x30_0000_0000
        try s1.map(input: va, output: pa, size: 4 * granule.size, blocks: false)
        for (i, offset) in Self.probes(granule).enumerated() {
            let written = try h.dmaWrite(3, va + offset, value: 0xC0DE_0000 | UInt32(i))
            #expect(written == pa + offset, "granule \(granule) offset \(Hex.format(offset))")
            #expect(h.ram32(pa + offset) == 0xC0DE_0000 | UInt32(i))
        }
    }

    @Test(arguments: granules)
    func stage2OnlyWritesLandAtMappedPA(granule: Granule) throws {
        let h = TranslationHarness()
        let s2 = try h.makeStage2(sid: 5, granule: granule, inputSize: 40)
        let ipa: UInt64 = 0x80_0000_0000 & ~(granule.size - 1) - 16 * granule.size
        let pa: UInt64 = 0x31_0000_0000
        try s2.map(input: ipa, output: pa, size: 4 * granule.size, blocks: false)
        for (i, offset) in Self.probes(granule).enumerated() {
            let written = try h.dmaWrite(5, ipa + offset, value: 0xBEEF_0000 | UInt32(i))
            #expect(written == pa + offset, "granule \(granule) offset \(Hex.format(offset))")
            #expect(h.ram32(pa + offset) == 0xBEEF_0000 | UInt32(i))
        }
    }

    @Test(arguments: granules)
    func nestedWritesLandAtGuestRAMBacking(granule: Granule) throws {
        let h = TranslationHarness()
        let (s1, _, _) = try h.makeNested(sid: 9, s1Granule: granule, s2Granule: granule)
        let va: UInt64 = 0xFFBF_0000 & ~(granule.size - 1)
        let ipa = TranslationHarness.guestDataIPA
        try s1.map(input: va, output: ipa, size: 4 * granule.size, blocks: false)
        for (i, offset) in Self.probes(granule).enumerated() {
            let outcome = h.translate(9, va + offset, write: true)
            let result = try #require(outcome.result, "\(outcome)")
            // IPA = S1 output; PA = IPA + the guest RAM window's offset (the S2 mapping).
            #expect(result.intermediate == IPA(ipa + offset))
            let written = try h.dmaWrite(9, va + offset, value: 0xF00D_0000 | UInt32(i))
            #expect(written == ipa + offset + TranslationHarness.guestOffset)
            #expect(h.ram32(ipa + offset + TranslationHarness.guestOffset) == 0xF00D_0000 | UInt32(i))
        }
    }

    /// Mixed granules: a 4K guest stage 1 over a 64K host stage 2 (and the reverse). The
    /// combined page is the smaller of the two (4 KiB either way).
    @Test(arguments: [(Granule.size4K, Granule.size64K), (.size64K, .size4K), (.size16K, .size4K)])
    func nestedMixedGranulesUseTheSmallerPage(s1Granule: Granule, s2Granule: Granule) throws {
        let h = TranslationHarness()
        let (s1, _, _) = try h.makeNested(sid: 2, s1Granule: s1Granule, s2Granule: s2Granule)
        let va: UInt64 = 0x1_0000_0000
        try s1.map(input: va, output: TranslationHarness.guestDataIPA, size: s1Granule.size, blocks: false)
        let result = try #require(h.translate(2, va + 0x10).result)
        #expect(result.pageSize == min(s1Granule.size, s2Granule.size))
        #expect(result.output.rawValue == TranslationHarness.guestDataIPA + 0x10 + TranslationHarness.guestOffset)
    }

    /// Blocks: a 2 MiB (4K L2) and 1 GiB (4K L1) block map whole ranges with one descriptor, and
    /// the result reports the block size.
    @Test func stage1BlocksTranslateWholeRange() throws {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 1)
        try s1.map(input: 0x4000_0000, output: 0x40_0000_0000, size: 1 << 30)          // 1 GiB block at L1
        try s1.map(input: 0x8020_0000, output: 0x41_0020_0000, size: 2 << 20)          // 2 MiB block at L2
        let big = try #require(h.translate(1, 0x4000_0000 + 0x3FFF_FFF0).result)
        #expect(big.output.rawValue == 0x40_3FFF_FFF0)
        #expect(big.pageSize == 1 << 30)
        let mid = try #require(h.translate(1, 0x8020_0000 + 0x1_2344).result)
        #expect(mid.output.rawValue == 0x41_0021_2344)
        #expect(mid.pageSize == 2 << 20)
    }

    /// The trace names every fetch and descriptor read of a nested miss, in order, so the CLI can
    /// print one translation step by step.
    @Test func nestedTraceNamesEveryStep() throws {
        let h = TranslationHarness()
        let (s1, _, _) = try h.makeNested(sid: 4)
        try s1.map(input: 0x1000, output: TranslationHarness.guestDataIPA, size: 0x1000)
        let log = TraceLog()
        h.translator.trace = log
        _ = try #require(h.translate(4, 0x1000).result)
        let steps = log.records.map(\.step)
        // STE, the CD's IPA through 4 S2 levels, the CD, then per S1 level 4 S2 levels + the S1
        // descriptor, then 4 S2 levels for the output IPA.
        #expect(steps.first == "STE fetch")
        #expect(steps.contains("STE fetch"))
        #expect(steps.contains("CD fetch via S2"))
        #expect(steps.filter { $0.hasPrefix("S1 L") }.count == 4)
        #expect(steps.filter { $0.hasPrefix("S2 L") }.count == 24)
        let leaf = try #require(log.records.last)
        #expect(leaf.step == "S2 L3 descriptor")
        #expect(leaf.detail.contains("page → PA 0x20_0020_0000"))
        #expect(leaf.detail.contains("S2AP=RW"))
        #expect(leaf.detail.contains("AF=1"))
    }
}
