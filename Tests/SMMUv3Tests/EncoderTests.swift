import Bus
import SMMUv3
import Testbed
import Testing

/// Encoders against hand-assembled words. Each expected constant is built from the field
/// positions in the spec (and the matching Linux masks), not from the encoder.
@Suite struct EncoderTests {
    /// Linux `arm_smmu_make_s2_domain_ste` for VMID 7, a 48-bit 4K S2 at L0, PS 48:
    /// dw0 = V(1) | Config 0b110 << 1 = 0xD; dw2 = VMID | T0SZ 16 << 32 | SL0 2 << 38 |
    /// IR0 1 << 40 | OR0 1 << 42 | SH0 3 << 44 | TG 0 << 46 | PS 5 << 48 | S2AA64 (51) |
    /// S2PTW (54) | S2R (58); dw3 = S2TTB.
    @Test func stage2STEMatchesHandAssembledWords() {
        let geometry = WalkGeometry(granule: .size4K, inputSize: 48, startLevel: 0)
        let ste = StreamTableEntry.stage2(vmid: VMID(7), ttb: PhysicalAddress(0x4123_4000), geometry: geometry, outputSize: .bits48)
        let dw2: UInt64 = 7 | 16 << 32 | 2 << 38 | 1 << 40 | 1 << 42 | 3 << 44 | 5 << 48 | 1 << 51 | 1 << 54 | 1 << 58
        #expect(ste.words == [0xD, 0, dw2, 0x4123_4000, 0, 0, 0, 0])
    }

    /// Nested STE: Config 0b111 → dw0[3:0] = 0xF; S1ContextPtr at [55:6]; S1CDMax at [63:59];
    /// S1Fmt [5:4]; S1DSS dw1[1:0]; S1CIR/COR = WB (1), S1CSH = IS (3) at dw1[7:2].
    @Test func nestedSTEFields() {
        let geometry = WalkGeometry(granule: .size64K, inputSize: 42, startLevel: 2)
        let ste = StreamTableEntry.nested(contextPtr: 0x8_0000_0040, cdMax: 10, s1Fmt: 2, s1DSS: 1, vmid: VMID(0x1234),
                                          s2TTB: PhysicalAddress(0x4000_0000), s2Geometry: geometry, outputSize: .bits44)
        #expect(ste.dw0 == 0xF | 2 << 4 | 0x8_0000_0040 | 10 << 59)
        #expect(ste.dw1 == 1 | 1 << 2 | 1 << 4 | 3 << 6)
        // 64K: TG = 1; start L2 → SL0 = ~2 & 3 = 1; T0SZ 22; PS 44 bits = 4.
        #expect(ste.s2TGField == 1 && ste.s2SL0 == 1 && ste.s2T0SZ == 22 && ste.s2PS == 4 && ste.s2VMID == VMID(0x1234))
    }

    /// Linux `arm_smmu_make_s1_cd` for ASID 0x42, 4K, 48-bit VA, IPS 48: T0SZ 16, TG0 0,
    /// IRGN0/ORGN0 WBWA (1), SH0 IS (3), EPD1 (30), V (31), IPS 5 << 32, AA64 (41), R (45),
    /// A (46), ASET (47), ASID << 48; TTB0 in dw1[51:4]; MAIR {0x44, 0xFF, 0x04}.
    @Test func linuxStage1CDMatchesHandAssembledWords() {
        let cd = ContextDescriptor.stage1(asid: ASID(0x42), ttb0: 0x4567_8000,
                                          geometry: WalkGeometry(granule: .size4K, inputSize: 48, startLevel: 0), ips: .bits48)
        let dw0: UInt64 = 16 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 30 | 1 << 31 | 5 << 32 | 1 << 41 | 1 << 45 | 1 << 46 | 1 << 47 | 0x42 << 48
        #expect(cd.words == [dw0, 0x4567_8000, 0, 0x04_FF_44, 0, 0, 0, 0])
    }

    /// TG0 and TG1 use different encodings (§5.4): 4K/64K/16K = 0/1/2 in TG0, 2/3/1 in TG1.
    @Test(arguments: Granule.allCases)
    func translationGranuleEncodings(granule: Granule) {
        var cd = ContextDescriptor()
        cd.tg0 = granule
        cd.tg1 = granule
        let tg0: UInt64 = [Granule.size4K: 0, .size64K: 1, .size16K: 2][granule] ?? 9
        let tg1: UInt64 = [Granule.size4K: 2, .size64K: 3, .size16K: 1][granule] ?? 9
        #expect(cd.dw0.bits(7, 6) == tg0 && cd.dw0.bits(23, 22) == tg1)
        #expect(cd.tg0 == granule && cd.tg1 == granule)
    }

    /// L1STD: Span [4:0], L2Ptr [55:6]; L1CD: V [0], L2Ptr [55:12].
    @Test func levelOneDescriptors() {
        #expect(LevelOneStreamTableDescriptor(span: 9, l2Ptr: 0x4020_0000).rawValue == 0x4020_0009)
        #expect(LevelOneContextDescriptor(valid: true, l2Ptr: 0x4030_0000).rawValue == 0x4030_0001)
        let l1 = LevelOneStreamTableDescriptor(rawValue: 0xFF00_1234_5678_9ABF)
        #expect(l1.span == 0x1F && l1.l2Ptr == 0x0000_1234_5678_9A80)
        let l1cd = LevelOneContextDescriptor(rawValue: 0xFF00_1234_5678_9ABF)
        #expect(l1cd.valid && l1cd.l2Ptr == 0x0000_1234_5678_9000)
    }

    /// Linux io-pgtable-arm leaf for IOMMU_READ|IOMMU_WRITE|IOMMU_CACHE, stage 1, 4K page:
    /// TYPE_PAGE 0b11 | ATTRINDX 1 << 2 | AP_UNPRIV (6) | SH_IS 3 << 8 | AF (10) | nG (11) |
    /// XN (53, 54) | OA.
    @Test func stage1PageDescriptorMatchesLinux() throws {
        let bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x10_0000)
        let b = try PageTableBuilder(stage1InputSize: 48, granule: .size4K, bus: bus, allocator: PageAllocator(base: 0x4000_0000, size: 0x10_0000))
        #expect(b.leafDescriptor(output: 0x30_0000_1000, level: 3, attributes: .readWrite) == 0x0060_0030_0000_1F47)
        // Stage 2, read-only, normal WB: 0b11 | MemAttr 0xF << 2 | S2AP read (6) | SH | AF | XN (54).
        let s2 = try PageTableBuilder(stage2InputSize: 40, granule: .size4K, bus: bus, allocator: PageAllocator(base: 0x4008_0000, size: 0x8_0000))
        #expect(s2.leafDescriptor(output: 0x30_0000_1000, level: 3, attributes: .readOnly) == 0x0040_0030_0000_177F)
        // A 2 MiB stage-2 block at L2: type 0b01.
        #expect(s2.leafDescriptor(output: 0x30_0020_0000, level: 2, attributes: .readWrite) & 0b11 == 0b01)
    }

    /// Field round trip: every STE/CD field reads back what was set, from random values.
    @Test func fieldsRoundTrip() {
        var rng = SeededGenerator(seed: 0x5EED_0001)
        for _ in 0..<500 {
            var s = StreamTableEntry()
            let cfg = UInt64.random(in: 0...7, using: &rng), ptr = UInt64.random(in: 0...UInt64.lowMask(50), using: &rng) << 6
            let vmid = UInt16.random(in: 0...0xFFFF, using: &rng), ttb = UInt64.random(in: 0...UInt64.lowMask(52), using: &rng) << 4
            s.configField = cfg; s.s1ContextPtr = ptr; s.s2VMID = VMID(vmid); s.s2TTB = ttb
            s.s1CDMax = Int.random(in: 0...31, using: &rng)
            let cdMax = s.s1CDMax
            s.valid = true
            #expect(s.configField == cfg && s.s1ContextPtr == ptr && s.s2VMID.rawValue == vmid && s.s2TTB == ttb && s.s1CDMax == cdMax && s.valid)
            #expect(StreamTableEntry(words: s.words) == s)

            var cd = ContextDescriptor()
            let asid = UInt16.random(in: 0...0xFFFF, using: &rng), t0sz = Int.random(in: 0...63, using: &rng)
            let ttb0 = UInt64.random(in: 0...UInt64.lowMask(52), using: &rng) << 4
            cd.asid = ASID(asid); cd.t0sz = t0sz; cd.ttb0 = ttb0; cd.valid = true; cd.record = true
            #expect(cd.asid.rawValue == asid && cd.t0sz == t0sz && cd.ttb0 == ttb0 && cd.valid && cd.record)
            #expect(ContextDescriptor(words: cd.words) == cd)
        }
    }

    /// Linux stage-2 geometry: one level lower with concatenation when the L0 table would have
    /// ≤16 entries (`arm_64_lpae_alloc_pgtable_s2`), and the SL0 it programs.
    @Test(arguments: [(Granule.size4K, 40, 1, 2, 1), (.size4K, 48, 0, 1, 2), (.size4K, 44, 0, 1, 2), (.size4K, 39, 1, 1, 1),
                      (.size16K, 48, 1, 2, 2), (.size16K, 47, 1, 1, 2), (.size64K, 48, 1, 1, 2), (.size64K, 42, 2, 1, 1)])
    func linuxStage2Geometry(granule: Granule, inputSize: Int, start: Int, concatenated: Int, sl0: Int) {
        let g = WalkGeometry.linuxStage2(granule: granule, inputSize: inputSize)
        #expect(g.startLevel == start && g.concatenatedTables == concatenated)
        #expect(WalkGeometry.sl0(granule: granule, startLevel: g.startLevel) == sl0)
        #expect(g.isConsistentStage2)
    }
}
