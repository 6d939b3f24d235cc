import Bus
import SMMUv3
import Testbed
import Testing

/// Sweeps over granule × input size × start level × stage (swift-collections style: every
/// combination runs and a failure names it). Expected outputs come from the mapping; expected
/// read counts from the geometry (one read per level from the start level to the leaf).
@Suite struct WalkSweepTests {
    /// An SMMU with IDR3.STT so the sweep reaches the small-table sizes (T0SZ up to 48/47).
    static var sttConfiguration: SMMUConfiguration {
        var c = SMMUConfiguration()
        c.smallTranslationTables = true
        return c
    }

    /// Stage 1: every legal T0SZ (16…48 for 4K/16K, 16…47 for 64K) per granule. The first and
    /// the last page of the input range translate with 4 − start level reads each; the first
    /// address past the range is F_TRANSLATION.
    @Test(arguments: Granule.allCases, Array(16...48))
    func stage1EveryInputSize(granule: Granule, t0sz: Int) throws {
        guard !(granule == .size64K && t0sz == 48) else { return }
        let label = "S1 \(granule) T0SZ=\(t0sz)"
        let inputSize = 64 - t0sz
        let h = TranslationHarness(configuration: Self.sttConfiguration)
        let s1 = try h.makeStage1(sid: 1, granule: granule, inputSize: inputSize)
        let start = s1.geometry.startLevel
        #expect(start == 4 - (inputSize - 4) / granule.stride, "\(label)")
        let lastPage = (UInt64(1) << UInt64(inputSize)) - granule.size
        try s1.map(input: 0, output: 0x30_0000_0000, size: granule.size, blocks: false)
        try s1.map(input: lastPage, output: 0x31_0000_0000, size: granule.size, blocks: false)
        let first = h.translate(1, 0x18)
        #expect(first.result?.output.rawValue == 0x30_0000_0018, "\(label) first page: \(first)")
        let last = h.translate(1, lastPage + granule.size - 8)
        #expect(last.result?.output.rawValue == 0x31_0000_0000 + granule.size - 8, "\(label) last page: \(last)")
        #expect(h.translator.counters.stage1DescriptorReads == 2 * (4 - start), "\(label) start L\(start)")
        #expect(h.translate(1, lastPage + granule.size).fault?.type == .fTranslation, "\(label) beyond range")
    }

    /// Stage 2: every S2T0SZ × S2SL0 per granule. Consistent pairs (start level resolves at
    /// least one bit and at most 16 concatenated tables, AArch64.S2InconsistentSL) translate
    /// the first and last page of the IPA range with 4 − start reads; the others are C_BAD_STE.
    @Test(arguments: Granule.allCases, Array(16...48))
    func stage2EveryInputSizeAndStartLevel(granule: Granule, t0sz: Int) throws {
        guard !(granule == .size64K && t0sz == 48) else { return }
        let configuration = Self.sttConfiguration
        let inputSize = 64 - t0sz
        for sl0 in 0...3 {
            let label = "S2 \(granule) S2T0SZ=\(t0sz) SL0=\(sl0)"
            let h = TranslationHarness(configuration: configuration)
            guard let start = WalkGeometry.stage2StartLevel(granule: granule, sl0: sl0, physicalAddressBits: 48, smallTables: true),
                  WalkGeometry(granule: granule, inputSize: inputSize, startLevel: start).isConsistentStage2 else {
                var ste = StreamTableEntry.stage2(vmid: VMID(1), ttb: PhysicalAddress(0x4100_0000),
                                                  geometry: WalkGeometry(granule: granule, inputSize: inputSize, startLevel: 3), outputSize: .bits48)
                ste.s2SL0 = sl0
                try h.setSTE(1, ste)
                let f = h.translate(1, 0).fault
                #expect(f?.type == .cBadSTE && f?.reason.contains(STEIllegalRule.s2StartLevelInconsistent.description) == true, "\(label): \(String(describing: f))")
                continue
            }
            let geometry = WalkGeometry(granule: granule, inputSize: inputSize, startLevel: start)
            let s2 = try PageTableBuilder(stage: .stage2, geometry: geometry, bus: h.bus, allocator: h.hostAllocator)
            try h.setSTE(1, .stage2(vmid: VMID(1), ttb: PhysicalAddress(s2.root), geometry: geometry, outputSize: .bits48))
            let lastPage = (UInt64(1) << UInt64(inputSize)) - granule.size
            try s2.map(input: 0, output: 0x30_0000_0000, size: granule.size, blocks: false)
            try s2.map(input: lastPage, output: 0x31_0000_0000, size: granule.size, blocks: false)
            let first = h.translate(1, 0x20)
            #expect(first.result?.output.rawValue == 0x30_0000_0020, "\(label) (\(geometry)) first page: \(first)")
            let last = h.translate(1, lastPage + 0x10)
            #expect(last.result?.output.rawValue == 0x31_0000_0010, "\(label) (\(geometry)) last page: \(last)")
            #expect(h.translator.counters.stage2DescriptorReads == 2 * (4 - start), "\(label) (\(geometry))")
            let beyond = h.translate(1, lastPage + granule.size).fault
            if inputSize < 48 {
                #expect(beyond?.type == .fTranslation && beyond?.stage2 == true, "\(label) beyond range")
            } else {
                #expect(beyond?.type == .fAddrSize && beyond?.stage2 == false, "\(label): beyond the IAS is a stage-1 address size fault")
            }
        }
    }

    /// Nested cost sweep: S1 geometry × S2 geometry. A miss reads s1Levels S1 descriptors and
    /// s2Levels × (s1Levels + 2) S2 descriptors (the CD's IPA, each S1 table, the output IPA).
    @Test(arguments: [(Granule.size4K, 48), (.size4K, 39), (.size64K, 42), (.size16K, 47)],
                     [(Granule.size4K, 48), (.size4K, 40), (.size64K, 42), (.size16K, 48)])
    func nestedMissCostFormula(s1: (Granule, Int), s2: (Granule, Int)) throws {
        let label = "S1 \(s1.0)/\(s1.1) over S2 \(s2.0)/\(s2.1)"
        let h = TranslationHarness()
        let (stage1, stage2, _) = try h.makeNested(sid: 1, s1Granule: s1.0, s1InputSize: s1.1, s2Granule: s2.0, s2InputSize: s2.1)
        try stage1.map(input: 0x10_0000 & ~(s1.0.size - 1), output: TranslationHarness.guestDataIPA, size: s1.0.size, blocks: false)
        let r = h.translate(1, 0x10_0000 & ~(s1.0.size - 1))
        #expect(r.result?.output.rawValue == TranslationHarness.guestDataIPA + TranslationHarness.guestOffset, "\(label): \(r)")
        let s1Levels = 4 - stage1.geometry.startLevel
        let s2Levels = 4 - stage2.geometry.startLevel
        #expect(h.translator.counters.stage1DescriptorReads == s1Levels, "\(label)")
        #expect(h.translator.counters.stage2DescriptorReads == s2Levels * (s1Levels + 2), "\(label)")
    }
}
