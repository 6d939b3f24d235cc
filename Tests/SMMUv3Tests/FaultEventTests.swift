import Bus
import SMMUv3
import Testbed
import Testing

/// Faults and the event fields they carry (SMMUv3 §7.3, §5.5; docs/hardware.md §Event records, §Fault behaviour).
@Suite struct FaultEventTests {
    static let unmappedIPA: UInt64 = 0x7000_0000   // outside the guest RAM window S2 maps

    @Test func stage1TranslationFaultIsS2ZeroClassIN() throws {
        let h = TranslationHarness()
        _ = try h.makeNested(sid: 1)
        let f = try #require(h.translate(1, 0x5000, write: true).fault)
        #expect(f.type == .fTranslation)
        #expect(!f.stage2 && f.faultClass == .input)
        #expect(f.inputAddress == 0x5000 && f.isWrite)
        #expect(f.record && f.abort, "CD.R=1, CD.A=1 in the Linux CD")
        #expect(f.ipa == nil, "the IPA field is UNKNOWN for stage-1 faults")
    }

    /// The CD's IPA (S1ContextPtr) is not mapped by stage 2: S2=1, CLASS=CD, IPA = the CD's IPA.
    @Test func stage2FaultFetchingTheCDIsClassCD() throws {
        let h = TranslationHarness()
        let s2 = try h.hostStage2()
        try h.setSTE(1, .nested(contextPtr: Self.unmappedIPA + 0x40, vmid: VMID(3), s2TTB: PhysicalAddress(s2.root),
                                s2Geometry: s2.geometry, outputSize: .bits48))
        let f = try #require(h.translate(1, 0x1000).fault)
        #expect(f.type == .fTranslation && f.stage2 && f.faultClass == .cd)
        #expect(f.ipa == IPA(Self.unmappedIPA + 0x40))
        #expect(f.record, "STE.S2R=1")
    }

    /// An S1 table pointer (the L0 entry's next-level table) is an IPA stage 2 does not map:
    /// S2=1, CLASS=TT, IPA = the S1 descriptor's IPA (table + index × 8).
    @Test func stage2FaultReadingAStage1TableIsClassTT() throws {
        let h = TranslationHarness()
        let (s1, _, _) = try h.makeNested(sid: 1)
        let va: UInt64 = 0x0000_0040_0000_0000 + 0x3000   // L0 index 0, L1 index 256, …
        try s1.map(input: va, output: TranslationHarness.guestDataIPA, size: 0x1000)
        let slot = try #require(try s1.descriptorAddress(for: va, level: 0))
        try h.bus.write64(PhysicalAddress(slot + TranslationHarness.guestOffset), s1.tableDescriptor(Self.unmappedIPA))
        let f = try #require(h.translate(1, va).fault)
        #expect(f.type == .fTranslation && f.stage2 && f.faultClass == .translationTable)
        let l1Index = (va >> 30) & 0x1FF
        #expect(f.ipa == IPA(Self.unmappedIPA + l1Index * 8))
    }

    /// The S1 output IPA is not mapped by stage 2: S2=1, CLASS=IN, IPA = that IPA.
    @Test func stage2FaultOnTheFinalIPAIsClassIN() throws {
        let h = TranslationHarness()
        let (s1, _, _) = try h.makeNested(sid: 1)
        try s1.map(input: 0x8000, output: Self.unmappedIPA, size: 0x1000)
        let f = try #require(h.translate(1, 0x8123).fault)
        #expect(f.type == .fTranslation && f.stage2 && f.faultClass == .input)
        #expect(f.ipa == IPA(Self.unmappedIPA + 0x123))
    }

    /// AF is checked before permissions (Arm ARM: Access flag faults take priority over
    /// Permission faults): a write to a read-only page with AF=0 is F_ACCESS; with CD.AFFD=1 the
    /// same write is F_PERMISSION.
    @Test(arguments: [false, true])
    func accessFlagFaultBeatsPermissionFault(affd: Bool) throws {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 1) { $0.affd = affd }
        var attributes = PageAttributes.readOnly
        attributes.accessFlag = false
        try s1.map(input: 0x1000, output: 0x30_0000_0000, size: 0x1000, attributes: attributes)
        let f = try #require(h.translate(1, 0x1000, write: true).fault)
        #expect(f.type == (affd ? .fPermission : .fAccess))
        #expect(!f.stage2)
    }

    /// CD.IPS = 40 bits: a leaf whose output is 2^40 is a stage-1 F_ADDR_SIZE.
    @Test func stage1OutputBeyondIPSIsAddressSizeFault() throws {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 1) { $0.ips = UInt64(OutputAddressSize.bits40.rawValue) }
        try s1.map(input: 0x1000, output: 1 << 40, size: 0x1000)
        let f = try #require(h.translate(1, 0x1000).fault)
        #expect(f.type == .fAddrSize && !f.stage2 && f.faultClass == .input)
    }

    /// STE.S2PS = 36 bits: a stage-2 output of 0x10_0000_0000 (2^36) is a stage-2 F_ADDR_SIZE.
    @Test func stage2OutputBeyondS2PSIsAddressSizeFault() throws {
        let h = TranslationHarness()
        let s2 = try PageTableBuilder(stage2InputSize: 40, granule: .size4K, bus: h.bus, allocator: h.hostAllocator)
        try s2.map(input: 0x1000, output: 1 << 36, size: 0x1000)
        try h.setSTE(1, .stage2(vmid: VMID(1), ttb: PhysicalAddress(s2.root), geometry: s2.geometry, outputSize: .bits36))
        let f = try #require(h.translate(1, 0x1000).fault)
        #expect(f.type == .fAddrSize && f.stage2 && f.ipa == IPA(0x1000))
    }

    @Test(arguments: [true, false])
    func badStreamIDIsRecordedOnlyWithRECINVSID(recinvsid: Bool) throws {
        let h = TranslationHarness(log2Size: 8)
        h.translator.recordInvalidStreamIDs = recinvsid
        let f = try #require(h.translate(256, 0).fault)     // 256 ≥ 2^8
        #expect(f.type == .cBadStreamID)
        #expect(f.record == recinvsid)
        #expect(f.abort)
    }

    /// effective LOG2SIZE = min(LOG2SIZE, SIDSIZE): with SIDSIZE 8 a table programmed with 16
    /// bits still rejects StreamID 256.
    @Test func log2SizeIsCappedBySIDSIZE() throws {
        var config = SMMUConfiguration()
        config.streamIDBits = 8
        let h = TranslationHarness(configuration: config, log2Size: 16)
        #expect(h.translate(256, 0).fault?.type == .cBadStreamID)
    }

    /// Span 0 in the L1STD (and a StreamID beyond a short span) is C_BAD_STREAMID (§5.1.1).
    @Test func invalidL1STDIsBadStreamID() throws {
        let h = TranslationHarness(log2Size: 12, twoLevel: true, split: 8)
        #expect(h.translate(0x100, 0).fault?.type == .cBadStreamID, "L1STD[1] is zero: Span 0")
        let l2 = try h.allocateHost(64 * 4, alignment: 256)
        try h.bus.write64(PhysicalAddress(TranslationHarness.streamTableBase + 8), LevelOneStreamTableDescriptor(span: 3, l2Ptr: l2).rawValue)
        try h.bus.writeWords(PhysicalAddress(l2 + 3 * 64), StreamTableEntry.bypass.words)
        #expect(h.translate(0x103, 0x1234).result?.output.rawValue == 0x1234, "Span 3 holds 4 STEs: SID 0x103 is the 4th")
        #expect(h.translate(0x104, 0).fault?.type == .cBadStreamID, "SID 0x104 is beyond a 4-STE span")
    }

    @Test func recordFollowsCDRAndS2R() throws {
        let h = TranslationHarness()
        _ = try h.makeNested(sid: 1, s2Record: false) { $0.record = false }
        let s1Fault = try #require(h.translate(1, 0x5000).fault)
        #expect(s1Fault.type == .fTranslation && !s1Fault.stage2 && !s1Fault.record, "CD.R=0")

        let h2 = TranslationHarness()
        let (s1, _, _) = try h2.makeNested(sid: 1, s2Record: false)
        try s1.map(input: 0x8000, output: Self.unmappedIPA, size: 0x1000)
        let s2Fault = try #require(h2.translate(1, 0x8000).fault)
        #expect(s2Fault.stage2 && !s2Fault.record, "STE.S2R=0")
        #expect(s2Fault.abort, "stage 2 always terminates with abort (§5.5)")
    }

    @Test func cdAZeroTerminatesWithRAZWI() throws {
        let h = TranslationHarness()
        _ = try h.makeStage1(sid: 1) { $0.abort = false }
        let f = try #require(h.translate(1, 0x5000).fault)
        #expect(!f.abort)
    }

    @Test func configAbortAbortsWithoutEvent() throws {
        let h = TranslationHarness()
        try h.setSTE(1, .abort)
        #expect(h.translate(1, 0) == .abortedWithoutEvent)
    }

    @Test func fetchAbortsCarryFetchAddr() throws {
        // Stream table in unbacked memory (below RAM).
        let h = TranslationHarness()
        h.translator.streamTable.base = PhysicalAddress(0x1000_0000)
        let f = try #require(h.translate(2, 0).fault)
        #expect(f.type == .fSTEFetch && f.fetchAddress == PhysicalAddress(0x1000_0000 + 2 * 64))

        // CD pointer to unbacked memory.
        let h2 = TranslationHarness()
        try h2.setSTE(1, .stage1(contextPtr: 0x2000_0000))
        let g = try #require(h2.translate(1, 0).fault)
        #expect(g.type == .fCDFetch && g.fetchAddress == PhysicalAddress(0x2000_0000))

        // TTB0 in unbacked memory: an S1-only walk abort is S2=0, CLASS=TT.
        let h3 = TranslationHarness()
        _ = try h3.makeStage1(sid: 1) { $0.ttb0 = 0x2000_0000 }
        let w = try #require(h3.translate(1, 0).fault)
        #expect(w.type == .fWalkEABT && !w.stage2 && w.faultClass == .translationTable)
        #expect(w.fetchAddress == PhysicalAddress(0x2000_0000))
    }

    @Test func permissionFaults() throws {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 1)
        var privOnly = PageAttributes()
        privOnly.unprivileged = false
        try s1.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000, attributes: privOnly)
        try s1.map(input: 0x2000, output: 0x30_0000_2000, size: 0x1000, attributes: .readOnly)
        // AP[1]=0: unprivileged (PCIe default) access faults, privileged succeeds.
        #expect(h.translate(1, 0x1000).fault?.type == .fPermission)
        #expect(h.translate(1, 0x1000, privileged: true).result != nil)
        // AP[2]=1: reads fine, writes fault — also from the TLB entry the read inserted.
        #expect(h.translate(1, 0x2000).result?.writable == false)
        let w = try #require(h.translate(1, 0x2000, write: true).fault)
        #expect(w.type == .fPermission && !w.stage2)
        // XN: an instruction fetch from a non-executable page faults.
        #expect(h.translate(1, 0x2000, instruction: true).fault?.type == .fPermission)

        // Stage 2: S2AP read-only.
        let h2 = TranslationHarness()
        let s2 = try h2.makeStage2(sid: 1)
        try s2.map(input: 0x1000, output: 0x30_0000_1000, size: 0x1000, attributes: .readOnly)
        #expect(h2.translate(1, 0x1000).result != nil)
        let s2w = try #require(h2.translate(1, 0x1000, write: true).fault)
        #expect(s2w.type == .fPermission && s2w.stage2 && s2w.ipa == IPA(0x1000))
    }

    /// S2PTW=1: the guest page holding the stage-1 tables is mapped as Device at stage 2, so the
    /// walk is a stage-2 permission fault with CLASS=TT (§5.2 S2PTW).
    @Test func protectedTableWalkFaultsOnDeviceMappedTables() throws {
        let h = TranslationHarness()
        let (s1, s2, _) = try h.makeNested(sid: 1)
        try s1.map(input: 0x1000, output: TranslationHarness.guestDataIPA, size: 0x1000)
        try s2.modifyLeaf(for: s1.root) { $0.settingBits(5, 2, to: 0x1) }   // Device-nGnRE
        let f = try #require(h.translate(1, 0x1000).fault)
        #expect(f.type == .fPermission && f.stage2 && f.faultClass == .translationTable)
    }

    @Test func substreamChecks() throws {
        let h = TranslationHarness()
        _ = try h.makeStage1(sid: 1)
        #expect(h.translate(1, 0, ssid: 1).fault?.type == .cBadSubstreamID, "S1CDMax=0 with SSV=1")
        _ = try h.makeStage2(sid: 2)
        #expect(h.translate(2, 0, ssid: 0).fault?.type == .cBadSubstreamID, "stage 1 disabled with SSV=1")

        // S1CDMax=2 (4 CDs), linear: SSID 4 is out of range; no SSID with S1DSS=0 terminates.
        let s1 = try PageTableBuilder(stage1InputSize: 48, granule: .size4K, bus: h.bus, allocator: h.hostAllocator)
        try s1.map(input: 0x1000, output: 0x30_0000_0000, size: 0x1000)
        let table = try h.allocateHost(4 * 64, alignment: 256)
        for ssid in 0..<4 {
            try h.writeCD(.stage1(asid: ASID(UInt16(ssid + 1)), ttb0: s1.root, geometry: s1.geometry, ips: .bits48), at: table + UInt64(ssid) * 64)
        }
        try h.setSTE(3, .stage1(contextPtr: table, cdMax: 2, s1DSS: 0))
        #expect(h.translate(3, 0x1000, ssid: 3).result != nil)
        #expect(h.translate(3, 0x1000, ssid: 4).fault?.type == .cBadSubstreamID)
        #expect(h.translate(3, 0x1000).fault?.type == .fStreamDisabled)
        // S1DSS=2: no-SSID traffic uses CD 0; SSID 0 is then disabled.
        try h.setSTE(4, .stage1(contextPtr: table, cdMax: 2, s1DSS: 2))
        #expect(h.translate(4, 0x1000).result != nil)
        #expect(h.translate(4, 0x1000, ssid: 0).fault?.type == .fStreamDisabled)
        // S1DSS=1 on an S1-only STE: both stages bypassed.
        try h.setSTE(5, .stage1(contextPtr: table, cdMax: 2, s1DSS: 1))
        #expect(h.translate(5, 0xABC0).result?.output.rawValue == 0xABC0)
    }

    /// An L1CD with V=0 is C_BAD_SUBSTREAMID (§5.3.1).
    @Test func invalidL1CDIsBadSubstreamID() throws {
        let h = TranslationHarness()
        let l1 = try h.allocateHost(16 * 8, alignment: 128)
        try h.setSTE(1, .stage1(contextPtr: l1, cdMax: 10, s1Fmt: 1))
        let f = try #require(h.translate(1, 0, ssid: 70).fault)
        #expect(f.type == .cBadSubstreamID)
    }

    @Test func epd0AndTopByteIgnore() throws {
        let h = TranslationHarness()
        let s1 = try h.makeStage1(sid: 1) { $0.epd0 = true }
        try s1.map(input: 0x1000, output: 0x30_0000_0000, size: 0x1000)
        #expect(h.translate(1, 0x1000).fault?.type == .fTranslation, "EPD0=1: a TTB0 walk faults")

        let h2 = TranslationHarness()
        let t = try h2.makeStage1(sid: 1) { $0.tbi0 = true }
        try t.map(input: 0x1000, output: 0x30_0000_0000, size: 0x1000)
        #expect(h2.translate(1, 0xAB00_0000_0000_1004).result?.output.rawValue == 0x30_0000_0004, "TBI0: VA[63:56] ignored")
        let h3 = TranslationHarness()
        let u = try h3.makeStage1(sid: 1)
        try u.map(input: 0x1000, output: 0x30_0000_0000, size: 0x1000)
        #expect(h3.translate(1, 0xAB00_0000_0000_1004).fault?.type == .fTranslation, "without TBI the tag is part of the VA")
    }

    /// Bypass: an input beyond the OAS (48 bits) is a stage-1 F_ADDR_SIZE (§3.4).
    @Test func bypassBeyondOASIsAddressSizeFault() throws {
        let h = TranslationHarness()
        try h.setSTE(1, .bypass)
        #expect(h.translate(1, 0xFFFF_FFFF_F000).result?.output.rawValue == 0xFFFF_FFFF_F000)
        let f = try #require(h.translate(1, 1 << 48).fault)
        #expect(f.type == .fAddrSize && !f.stage2)
    }

    /// HTTU: with CD.HA=1 on an SMMU with IDR0.HTTU=AF, an AF=0 page does not fault; the SMMU sets
    /// AF in the descriptor.
    @Test func hardwareAccessFlagUpdateSetsAF() throws {
        var config = SMMUConfiguration()
        config.httu = .accessFlag
        let h = TranslationHarness(configuration: config)
        let s1 = try h.makeStage1(sid: 1) { $0.ha = true }
        var a = PageAttributes()
        a.accessFlag = false
        try s1.map(input: 0x1000, output: 0x30_0000_0000, size: 0x1000, attributes: a)
        #expect(h.translate(1, 0x1000).result != nil)
        let leaf = try #require(try s1.leaf(for: 0x1000))
        #expect(leaf.descriptor.bit(10))
    }

    /// STE.S2R=0 also silences a stage-2 permission fault found on a TLB hit: the write to an
    /// S2 read-only page after a read cached the combined entry.
    @Test func s2RecordAppliesToTLBHits() throws {
        let h = TranslationHarness()
        let (s1, s2, _) = try h.makeNested(sid: 1, s2Record: false)
        try s1.map(input: 0x1000, output: TranslationHarness.guestDataIPA, size: 0x1000)
        try s2.modifyLeaf(for: TranslationHarness.guestDataIPA) { $0.settingBit(7, to: false) }   // S2AP = RO
        #expect(h.translate(1, 0x1008).result?.writable == false)
        let f = try #require(h.translate(1, 0x1008, write: true).fault)
        #expect(f.type == .fPermission && f.stage2 && f.faultClass == .input)
        #expect(f.ipa == IPA(TranslationHarness.guestDataIPA + 8))
        #expect(!f.record)
        #expect(h.translator.counters.tlbHits == 1, "the fault came from the TLB entry")
    }
}
