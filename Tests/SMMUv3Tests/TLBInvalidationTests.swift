import Bus
import SMMUv3
import Testbed
import Testing

/// Invalidation scopes at translator level (SMMUv3 §4.3, §4.4; docs/hardware.md §TLB and invalidation). Each test
/// caches translations, then changes the tables in memory so a stale entry would still answer
/// (`fromTLB`), applies one scope and checks exactly which entries it removed.
@Suite struct TLBInvalidationTests {
    static let vmid = TranslationHarness.vmid
    static let asid = TranslationHarness.asid

    private func fromTLB(_ h: TranslationHarness, _ sid: UInt32, _ address: UInt64) -> Bool? {
        h.translate(sid, address).result?.fromTLB
    }

    /// NH_ASID removes that ASID's entries but not global (nG=0) ones.
    @Test func nhASIDLeavesGlobalEntries() throws {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 1)
        var global = PageAttributes()
        global.global = true
        try s1.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000)
        try s1.map(input: 0x2000, output: 0x30_0000_2000, size: 0x1000, attributes: global)
        _ = h.translate(1, 0x1000); _ = h.translate(1, 0x2000)
        h.translator.invalidate(.nhASID(Self.vmid, Self.asid))
        #expect(fromTLB(h, 1, 0x1000) == false)
        #expect(fromTLB(h, 1, 0x2000) == true)
    }

    /// S2_IPA removes stage-2-only entries but not combined nested entries; NH_ALL for the VMID
    /// then removes those (the sequence Linux issues for a nest parent).
    @Test func s2IPALeavesNestedEntriesAndNHAllRemovesThem() throws {
        let h = TranslationHarness()
        let (s1, s2, _) = try h.makeNested(sid: 1)
        try s1.map(input: 0x1000, output: TranslationHarness.guestDataIPA, size: 0x1000)
        // An S2-only stream in the same VMID mapping the same IPA page.
        try h.setSTE(2, .stage2(vmid: Self.vmid, ttb: PhysicalAddress(s2.root), geometry: s2.geometry, outputSize: .bits48))
        _ = h.translate(1, 0x1000)
        _ = h.translate(2, TranslationHarness.guestDataIPA)
        try s2.unmap(input: TranslationHarness.guestDataIPA, size: 0x1000)
        h.translator.invalidate(.s2IPA(Self.vmid, ipa: TranslationHarness.guestDataIPA, leaf: true, range: nil))
        #expect(h.translate(2, TranslationHarness.guestDataIPA).fault?.type == .fTranslation, "the S2-only entry is gone")
        #expect(fromTLB(h, 1, 0x1000) == true, "the combined entry still answers with the stale S2 result")
        h.translator.invalidate(.nhAll(Self.vmid))
        let f = try #require(h.translate(1, 0x1000).fault)
        #expect(f.type == .fTranslation && f.stage2 && f.faultClass == .input)
    }

    /// A changed STE takes effect only after CFGI_STE: the configuration cache keeps serving
    /// the old STE through TLB invalidations (§5.2.1), and CFGI_STE of another StreamID does not
    /// touch it.
    @Test func onlyCFGISTEMakesAChangedSTETakeEffect() throws {
        let h = TranslationHarness()
        let s2 = try h.makeStage2(sid: 1)
        try s2.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000)
        #expect(h.translate(1, 0x1000).result != nil)
        try h.setSTE(1, .abort)
        for scope: Invalidation in [.nsnhAll, .s12VMAll(Self.vmid), .nhAll(Self.vmid), .streamTableEntry(StreamID(2), leaf: true),
                                    .contextDescriptorAll(StreamID(1))] {
            h.translator.invalidate(scope)
            #expect(h.translate(1, 0x1000).result != nil, "\(scope) must not drop the cached STE")
        }
        h.translator.invalidate(.streamTableEntry(StreamID(1), leaf: true))
        #expect(h.translate(1, 0x1000) == .abortedWithoutEvent)
    }

    /// CFGI_STE_RANGE covers 2^(Range+1) StreamIDs aligned down; CFGI_ALL covers all.
    @Test func cfgiSTERangeCoversItsAlignedSpan() throws {
        let h = TranslationHarness()
        for sid: UInt32 in 0..<8 { try h.setSTE(sid, .bypass); _ = h.translate(sid, 0) }
        for sid: UInt32 in 0..<8 { try h.setSTE(sid, .abort) }
        h.translator.invalidate(.streamTableEntryRange(StreamID(5), range: 1))   // SIDs 4…7
        for sid: UInt32 in 0..<8 {
            let aborted = h.translate(sid, 0) == .abortedWithoutEvent
            #expect(aborted == (sid >= 4), "SID \(sid)")
        }
        h.translator.invalidate(.configurationAll)
        #expect(h.translate(0, 0) == .abortedWithoutEvent)
    }

    /// CFGI_CD makes a changed CD (new ASID) take effect; the old CD is served until then.
    @Test func cfgiCDReloadsTheCD() throws {
        let h = TranslationHarness()
        let s1 = try PageTableBuilder(stage1InputSize: 48, granule: .size4K, bus: h.bus, allocator: h.hostAllocator)
        try s1.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000)
        let cdAddress = try h.allocateHost(64)
        try h.writeCD(.stage1(asid: ASID(1), ttb0: s1.root, geometry: s1.geometry, ips: .bits48), at: cdAddress)
        try h.setSTE(1, .stage1(contextPtr: cdAddress))
        _ = h.translate(1, 0x1000)
        var invalid = ContextDescriptor()
        invalid.valid = false
        try h.writeCD(invalid, at: cdAddress)
        #expect(h.translate(1, 0x1000).result != nil)
        h.translator.invalidate(.contextDescriptor(StreamID(1), SubstreamID(0), leaf: true))
        #expect(h.translate(1, 0x1000).fault?.type == .cBadCD)
    }

    /// NH_VA removes the entry at the address (ASID or global), NH_VAA any ASID; a range TLBI
    /// removes (NUM+1) × 2^SCALE pages and nothing else.
    @Test func vaAndRangeInvalidation() throws {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 1)
        try s1.map(input: 0x10_0000, output: 0x30_0000_0000, size: 16 * 0x1000, blocks: false)
        func fill() { for i in 0..<16 { _ = h.translate(1, 0x10_0000 + UInt64(i) * 0x1000) } }
        func cached() -> [Bool] { (0..<16).map { h.translator.tlb.lookup(address: 0x10_0000 + UInt64($0) * 0x1000, kind: .stage1, vmid: Self.vmid.rawValue, asid: UInt32(Self.asid.rawValue)) != nil } }
        fill()
        h.translator.invalidate(.nhVA(Self.vmid, Self.asid, address: 0x10_3008, leaf: true, range: nil))
        #expect(cached() == (0..<16).map { $0 != 3 })
        h.translator.invalidate(.nhVA(Self.vmid, ASID(99), address: 0x10_4000, leaf: true, range: nil))
        #expect(cached()[4], "another ASID's NH_VA leaves a non-global entry")
        fill()
        // NUM=3, SCALE=1: 4 × 2 = 8 pages from 0x10_2000.
        h.translator.invalidate(.nhVAA(Self.vmid, address: 0x10_2000, leaf: true, range: TLBIRange(num: 3, scale: 1, granule: .size4K, ttl: 3)))
        #expect(cached() == (0..<16).map { !(2..<10).contains($0) })
        h.translator.invalidate(.nsnhAll)
        #expect(h.translator.tlb.count == 0)
    }

    /// Entries are separated by VMID (S2-only) and ASID (S1): the same input address in two
    /// streams never hits the other's entry.
    @Test func vmidAndASIDSeparateEntries() throws {
        let h = TranslationHarness()
        let a = try h.makeStage2(sid: 1, vmid: VMID(1))
        let b = try h.makeStage2(sid: 2, vmid: VMID(2))
        try a.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000)
        try b.map(input: 0x1000, output: 0x31_0000_1000, size: 0x1000)
        #expect(h.translate(1, 0x1000).result?.output.rawValue == 0x30_0000_1000)
        #expect(h.translate(2, 0x1000).result?.output.rawValue == 0x31_0000_1000)
        let c = try h.makeStage1(sid: 3, asid: ASID(10))
        let d = try h.makeStage1(sid: 4, asid: ASID(11))
        try c.map(input: 0x1000, output: 0x32_0000_1000, size: 0x1000)
        try d.map(input: 0x1000, output: 0x33_0000_1000, size: 0x1000)
        #expect(h.translate(3, 0x1000).result?.output.rawValue == 0x32_0000_1000)
        #expect(h.translate(4, 0x1000).result?.output.rawValue == 0x33_0000_1000)
        #expect(h.translator.tlb.count == 4)
    }

    /// Replacement policy: a full TLB is flushed entirely before the next insert (as QEMU).
    @Test func fullTLBFlushesBeforeInsert() throws {
        let bus = SystemBus()
        try bus.addRAM(base: PhysicalAddress(0x4000_0000), size: 0x100_0000)
        let tlb = TranslationLookasideBuffer(capacity: 4)
        let entry = TLBEntry(outputBase: 0, intermediateBase: 0, hasIntermediate: false, stage1Permissions: 0, stage2Permissions: 0)
        for i in 0..<5 {
            tlb.insert(entry, for: TLBKey(pageNumber: UInt64(i), pageShift: 12, kind: .stage2, vmid: 1, asid: TLBKey.global))
        }
        #expect(tlb.count == 1 && tlb.overflowFlushes == 1)
        #expect(tlb.lookup(address: 4 << 12, kind: .stage2, vmid: 1, asid: nil) != nil)
    }

    /// EL2 StreamWorld (IDR0.HYP=1, Config=0b101, STRW=0b10): entries carry no VMID or ASID,
    /// NSNH_ALL leaves them, EL2_ALL removes them.
    @Test func el2EntriesAreOnlyHitByEL2All() throws {
        var config = SMMUConfiguration()
        config.hyp = true
        let h = TranslationHarness(configuration: config)
        let s1 = try PageTableBuilder(stage1InputSize: 48, granule: .size4K, bus: h.bus, allocator: h.hostAllocator)
        try s1.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000)
        let cdAddress = try h.allocateHost(64)
        try h.writeCD(.stage1(asid: ASID(3), ttb0: s1.root, geometry: s1.geometry, ips: .bits48), at: cdAddress)
        var ste = StreamTableEntry.stage1(contextPtr: cdAddress)
        ste.strw = 0b10
        try h.setSTE(1, ste)
        #expect(h.translate(1, 0x1000).result?.output.rawValue == 0x30_0000_1000)
        #expect(h.translator.tlb.sortedEntries.map(\.0.kind) == [.el2])
        h.translator.invalidate(.nsnhAll)
        #expect(fromTLB(h, 1, 0x1000) == true)
        h.translator.invalidate(.el2All)
        #expect(fromTLB(h, 1, 0x1000) == false)
    }
}
