import Testing
import Bus
import SMMUv3
@testable import LinuxKernel

/// The KUnit suite "arm-smmu-v3-kunit-test" (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-test.c)
/// ported to the model's writer (`ArmSMMUv3EntryWriter` = `arm_smmu_write_entry`) and its real
/// STE/CD builders (`ArmSMMUv3Entries`, `ArmSMMUv3Nesting.nestedCDTableSTE`), run for every
/// named release with that release's rules.
///
/// Like `arm_smmu_test_writer_record_syncs`, the test sync counts syncs, notes when qword 0 is
/// zero (`invalid_entry_written`: the update was not hitless), and otherwise checks that the
/// entry, seen through the bits its own configuration uses, equals the initial or the target
/// entry. Releases with `steUpdateSafe` compare as a4f976edcb87's test does (update-safe bits
/// of the entry against each end left out, both sides masked); the others as the v6.13–v6.19
/// file does (`(entry & used) != target`).
///
/// The fixture is the KUnit one: an SMMU with ARM_SMMU_FEAT_STALLS and ATTR_TYPES_OVR, a CD
/// table at 0xF0F0F0F0F0F0 with S1Fmt 64K_L2 and S1CDMax 0xFF, masters with ATS (or a stall-
/// enabled one), ASIDs 778/1997. The page tables are the model's (IOPageTableARM): the writer
/// looks only at which bits differ, not at their values. The SVA CD cases (sva_clear,
/// sva_release) are not ported: the model has no SVA (`arm_smmu_make_sva_cd`).
@Suite("arm-smmu-v3 entry writer: the KUnit STE/CD transition cases, per release")
struct ArmSMMUv3EntryWriterKUnitTests {
    typealias Version = KernelConfiguration.Version

    /// What one `arm_smmu_write_entry` did.
    struct Outcome {
        var syncs = 0
        var invalidEntryWritten = false
        var final: [UInt64] = []
        /// Syncs at which the entry matched neither end in its used bits.
        var mixedAt: [Int] = []
    }

    /// `arm_smmu_v3_test_{ste,cd}_expect_transition` without the expectations.
    static func transition(_ kind: ArmSMMUv3EntryWriter.Kind, from initial: [UInt64], to target: [UInt64],
                           version: Version) throws -> Outcome {
        let writer = ArmSMMUv3EntryWriter(kind: kind, configuration: KernelConfiguration(version: version))
        let safeRule = kind == .ste && version.behaviours.contains(.steUpdateSafe)
        var outcome = Outcome()
        var entry = initial
        try writer.write(&entry, target: target, store: { _, _ in }, sync: { (now) throws(Errno) in
            outcome.syncs += 1
            if now[0] == 0 { outcome.invalidEntryWritten = true; return }
            let used = writer.used(now)
            func differs(from end: [UInt64]) -> Bool {
                let safe = safeRule ? writer.updateSafe(current: now, target: end) : [UInt64](repeating: 0, count: 8)
                for i in 0..<8 {
                    let mask: UInt64 = used[i] & ~safe[i]
                    let mine: UInt64 = now[i] & mask
                    let theirs: UInt64 = safeRule ? end[i] & mask : end[i]
                    if mine != theirs { return true }
                }
                return false
            }
            if differs(from: initial) && differs(from: target) { outcome.mixedAt.append(outcome.syncs) }
        })
        outcome.final = entry
        return outcome
    }

    /// The KUnit expectations: hitless or not, the sync count, the target reached, no mixed
    /// intermediate entry.
    static func expect(_ kind: ArmSMMUv3EntryWriter.Kind, _ initial: StreamTableEntry, _ target: StreamTableEntry,
                       syncs: Int, hitless: Bool, _ version: Version, _ what: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        try expect(kind, initial.words, target.words, syncs: syncs, hitless: hitless, version, what, sourceLocation: sourceLocation)
    }

    static func expect(_ kind: ArmSMMUv3EntryWriter.Kind, _ initial: [UInt64], _ target: [UInt64],
                       syncs: Int, hitless: Bool, _ version: Version, _ what: String,
                       sourceLocation: SourceLocation = #_sourceLocation) throws {
        let o = try transition(kind, from: initial, to: target, version: version)
        #expect(o.invalidEntryWritten == !hitless, "\(version.rawValue) \(what): hitless \(hitless)", sourceLocation: sourceLocation)
        #expect(o.syncs == syncs, "\(version.rawValue) \(what): syncs", sourceLocation: sourceLocation)
        #expect(o.final == target, "\(version.rawValue) \(what): target reached", sourceLocation: sourceLocation)
        #expect(o.mixedAt.isEmpty, "\(version.rawValue) \(what): mixed entry at syncs \(o.mixedAt)", sourceLocation: sourceLocation)
    }

    // MARK: The KUnit fixture

    /// `static struct arm_smmu_device smmu = { .features = ARM_SMMU_FEAT_STALLS |
    /// ARM_SMMU_FEAT_ATTR_TYPES_OVR }`.
    static var features: ArmSMMUv3Features {
        var f = ArmSMMUv3Features()
        f.stalls = true
        f.attributeTypesOverride = true
        return f
    }

    /// `fake_cdtab_dma_addr`.
    static let cdTable = PhysicalAddress(0xF0F0_F0F0_F0F0)
    /// STRTAB_STE_0_S1FMT_64K_L2.
    static let s1Fmt64KL2: UInt64 = 2

    enum Master { case ats, stall, none }

    /// `arm_smmu_test_make_cdtable_ste(ste, s1dss, dma_addr, feat)`.
    static func cdTableSTE(_ s1DSS: UInt64, _ master: Master, table: PhysicalAddress = cdTable) -> StreamTableEntry {
        ArmSMMUv3Entries.cdTableSTE(cdTable: table, s1Fmt: s1Fmt64KL2, s1CDMax: 0xFF, s1DSS: s1DSS, features: features,
                                    ats: master == .ats, stallEnabled: master == .stall)
    }

    /// The page tables the S2 STEs and S1 CDs point at, from a kernel's page allocator.
    struct Tables {
        let fixture: SMMUFixture
        let stage1: IOPageTableARM
        let stage2: IOPageTableARM

        static func make() throws -> Tables {
            let fixture = try SMMUFixture.make()
            let sizes: UInt64 = 0x4000_0000 | 0x20_0000 | 0x1000
            return Tables(fixture: fixture,
                          stage1: try IOPageTableARM(kernel: fixture.kernel, format: .stage1, inputBits: 40, outputBits: 40, smmuPageSizes: sizes),
                          stage2: try IOPageTableARM(kernel: fixture.kernel, format: .stage2, inputBits: 40, outputBits: 40, smmuPageSizes: sizes))
        }

        /// `arm_smmu_test_make_s2_ste(ste, feat)`: the domain's VMID is 0.
        func s2STE(_ master: Master) -> StreamTableEntry {
            ArmSMMUv3Entries.stage2STE(vmid: VMID(0), table: stage2, features: ArmSMMUv3EntryWriterKUnitTests.features,
                                       ats: master == .ats, stallEnabled: master == .stall)
        }

        /// `arm_smmu_test_make_s1_cd(cd, asid)`.
        func s1CD(_ asid: UInt16) -> [UInt64] { ArmSMMUv3Entries.stage1CD(asid: ASID(asid), table: stage1).words }

        /// `arm_smmu_test_make_cdtable_ste(…, ARM_SMMU_MASTER_TEST_ATS | ARM_SMMU_MASTER_TEST_NESTED)`
        /// (a4f976edcb87): the CD-table STE's S1 words as a vSTE on the S2 STE, built by the
        /// model's `arm_smmu_make_nested_cd_table_ste` (MEV as the release has it).
        func nestedSTE(_ s1DSS: UInt64, ats: Bool, version: Version) throws -> StreamTableEntry {
            let s1 = ArmSMMUv3EntryWriterKUnitTests.cdTableSTE(s1DSS, ats ? .ats : .none)
            var vste = [s1.dw0, s1.dw1 & ArmSMMUv3Nesting.ste1Allowed]
            _ = try ArmSMMUv3Nesting.validateVSTE(&vste)
            return ArmSMMUv3Nesting.nestedCDTableSTE(vste: (vste[0], vste[1]), vmid: VMID(0), parent: stage2,
                                                     features: ArmSMMUv3EntryWriterKUnitTests.features,
                                                     configuration: KernelConfiguration(version: version), ats: ats)
        }
    }

    static let bypass = ArmSMMUv3Entries.bypassSTE(features: features)
    static let abort = ArmSMMUv3Entries.abortSTE()
    static let ssid0 = ArmSMMUv3Entries.s1DSSSubstream0
    static let s1dssBypass = ArmSMMUv3Entries.s1DSSBypass

    // MARK: STE cases (every release: the case list of v6.13–v6.19, unchanged in v7.0)

    @Test("bypass ↔ abort: 2 syncs each way, hitless", arguments: Version.allCases)
    func bypassAbort(_ v: Version) throws {
        try Self.expect(.ste, Self.bypass, Self.abort, syncs: 2, hitless: true, v, "bypass_to_abort")
        try Self.expect(.ste, Self.abort, Self.bypass, syncs: 2, hitless: true, v, "abort_to_bypass")
    }

    @Test("CD-table STE (S1DSS=SSID0, ATS) ↔ abort 2 syncs, ↔ bypass 3 syncs, hitless", arguments: Version.allCases)
    func cdTableAbortBypass(_ v: Version) throws {
        let ste = Self.cdTableSTE(Self.ssid0, .ats)
        try Self.expect(.ste, ste, Self.abort, syncs: 2, hitless: true, v, "cdtable_to_abort")
        try Self.expect(.ste, Self.abort, ste, syncs: 2, hitless: true, v, "abort_to_cdtable")
        try Self.expect(.ste, ste, Self.bypass, syncs: 3, hitless: true, v, "cdtable_to_bypass")
        try Self.expect(.ste, Self.bypass, ste, syncs: 3, hitless: true, v, "bypass_to_cdtable")
    }

    @Test("flipping S1DSS on a CD-table STE is one write of qword 1", arguments: Version.allCases)
    func cdTableS1DSSChange(_ v: Version) throws {
        let ste = Self.cdTableSTE(Self.ssid0, .ats)
        let s1dssBypass = Self.cdTableSTE(Self.s1dssBypass, .ats)
        try Self.expect(.ste, ste, s1dssBypass, syncs: 1, hitless: true, v, "cdtable_s1dss_change")
        try Self.expect(.ste, s1dssBypass, ste, syncs: 1, hitless: true, v, "cdtable_s1dss_change back")
    }

    @Test("S1DSS-bypass CD-table STE ↔ bypass STE: 2 syncs, hitless", arguments: Version.allCases)
    func s1dssBypassSTEBypass(_ v: Version) throws {
        let s1dssBypass = Self.cdTableSTE(Self.s1dssBypass, .ats)
        try Self.expect(.ste, s1dssBypass, Self.bypass, syncs: 2, hitless: true, v, "s1dssbypass_to_stebypass")
        try Self.expect(.ste, Self.bypass, s1dssBypass, syncs: 2, hitless: true, v, "stebypass_to_s1dssbypass")
    }

    @Test("S2 STE (ATS) ↔ abort and ↔ bypass: 2 syncs, hitless", arguments: Version.allCases)
    func stage2AbortBypass(_ v: Version) throws {
        let t = try Tables.make()
        let ste = t.s2STE(.ats)
        try Self.expect(.ste, ste, Self.abort, syncs: 2, hitless: true, v, "s2_to_abort")
        try Self.expect(.ste, Self.abort, ste, syncs: 2, hitless: true, v, "abort_to_s2")
        try Self.expect(.ste, ste, Self.bypass, syncs: 2, hitless: true, v, "s2_to_bypass")
        try Self.expect(.ste, Self.bypass, ste, syncs: 2, hitless: true, v, "bypass_to_s2")
    }

    @Test("CD-table STE ↔ S2 STE, ATS masters and stall-enabled masters: 3 syncs, hitless", arguments: Version.allCases)
    func stage1Stage2(_ v: Version) throws {
        let t = try Tables.make()
        for master in [Master.ats, .stall] {
            let s1 = Self.cdTableSTE(Self.ssid0, master)
            let s2 = t.s2STE(master)
            try Self.expect(.ste, s1, s2, syncs: 3, hitless: true, v, "s1_to_s2 \(master)")
            try Self.expect(.ste, s2, s1, syncs: 3, hitless: true, v, "s2_to_s1 \(master)")
        }
    }

    @Test("changing the CD table pointer and S1DSS together breaks: V=0, 3 syncs", arguments: Version.allCases)
    func nonHitless(_ v: Version) throws {
        let ste = Self.cdTableSTE(Self.ssid0, .ats)
        let ste2 = Self.cdTableSTE(Self.s1dssBypass, .ats, table: PhysicalAddress(0x4B_4B4B_4B4B))
        try Self.expect(.ste, ste, ste2, syncs: 3, hitless: false, v, "non_hitless")
    }

    // MARK: CD cases

    @Test("S1 CD ↔ cleared CD: 2 syncs through V=0; ASID change: 1 sync, hitless", arguments: Version.allCases)
    func contextDescriptors(_ v: Version) throws {
        let t = try Tables.make()
        let clear = [UInt64](repeating: 0, count: 8)
        try Self.expect(.cd, clear, t.s1CD(1997), syncs: 2, hitless: false, v, "s1_clear (set)")
        try Self.expect(.cd, t.s1CD(1997), clear, syncs: 2, hitless: false, v, "s1_clear (clear)")
        try Self.expect(.cd, t.s1CD(778), t.s1CD(1997), syncs: 1, hitless: true, v, "s1_change_asid")
        try Self.expect(.cd, t.s1CD(1997), t.s1CD(778), syncs: 1, hitless: true, v, "s1_change_asid back")
    }

    // MARK: Nested cases (a4f976edcb87, first in v7.0; earlier releases' results asserted too)

    /// `arm_smmu_v3_write_ste_test_nested_s1dssbypass_to_s1bypass` and `…s1bypass_to_s1dssbypass`:
    /// a nested S1DSS-bypass STE of an ATS master ↔ the S2 STE of a master without ATS. With
    /// update-safe bits (v7.0) 3 syncs ("an additional sync to unset ignored bits: EATS and
    /// MEV") and 2 syncs, hitless. Before, EATS (TRANS ↔ 0, used by both configurations) makes
    /// qword 1 critical next to qword 0, and both ways break through V=0 in 3 syncs — the
    /// C_BAD_STE that 2781f2a930ab fixed; from v6.15 MEV does the same.
    @Test("nested S1DSS-bypass (ATS) ↔ S2: v7.0 hitless in 3 and 2 syncs; v6.14–v6.19 through V=0 in 3", arguments: Version.allCases)
    func nestedKUnit(_ v: Version) throws {
        let t = try Tables.make()
        let nested = try t.nestedSTE(Self.s1dssBypass, ats: true, version: v)
        let s2 = t.s2STE(.none)
        if v.behaviours.contains(.steUpdateSafe) {
            try Self.expect(.ste, nested, s2, syncs: 3, hitless: true, v, "nested_s1dssbypass_to_s1bypass")
            try Self.expect(.ste, s2, nested, syncs: 2, hitless: true, v, "nested_s1bypass_to_s1dssbypass")
        } else {
            try Self.expect(.ste, nested, s2, syncs: 3, hitless: false, v, "nested_s1dssbypass_to_s1bypass (before update_safe)")
            try Self.expect(.ste, s2, nested, syncs: 3, hitless: false, v, "nested_s1bypass_to_s1dssbypass (before update_safe)")
        }
    }

    /// The model's own nested STE (no ATS: EATS 0 on both sides), so only MEV is in play:
    /// v6.14 sets no MEV and is hitless; v6.15 and v6.19 set and use MEV, and break; v7.0
    /// marks MEV safe — hitless again, clearing MEV in a first step on the way back.
    @Test("nested S1DSS-bypass (no ATS) ↔ S2: v6.14 2/2 hitless, v6.15 and v6.19 3/3 through V=0, v7.0 2/3 hitless", arguments: Version.allCases)
    func nestedWithoutATS(_ v: Version) throws {
        let t = try Tables.make()
        let nested = try t.nestedSTE(Self.s1dssBypass, ats: false, version: v)
        let s2 = t.s2STE(.none)
        #expect(nested.mev == v.behaviours.contains(.nestedSTEMergeEvents), "\(v.rawValue): MEV in the nested STE")
        switch v {
        case .v6_14:
            try Self.expect(.ste, s2, nested, syncs: 2, hitless: true, v, "s2 → nested")
            try Self.expect(.ste, nested, s2, syncs: 2, hitless: true, v, "nested → s2")
        case .v6_15, .v6_19:
            try Self.expect(.ste, s2, nested, syncs: 3, hitless: false, v, "s2 → nested")
            try Self.expect(.ste, nested, s2, syncs: 3, hitless: false, v, "nested → s2")
        case .v7_0:
            try Self.expect(.ste, s2, nested, syncs: 2, hitless: true, v, "s2 → nested")
            try Self.expect(.ste, nested, s2, syncs: 3, hitless: true, v, "nested → s2")
        }
    }

    // MARK: The rules themselves

    @Test("arm_smmu_get_ste_used: MEV is a used bit of S1- and S2-translating STEs only with nested-ste-mev")
    func mevUsedBit() throws {
        let t = try Tables.make()
        let mev = ArmSMMUv3Nesting.ste1MEV
        for ste in [Self.cdTableSTE(Self.ssid0, .ats), t.s2STE(.ats)] {
            #expect(ArmSMMUv3Entries.steUsed(ste.words, mergeEvents: true)[1] & mev == mev)
            #expect(ArmSMMUv3Entries.steUsed(ste.words, mergeEvents: false)[1] & mev == 0)
        }
        #expect(ArmSMMUv3Entries.steUsed(Self.bypass.words, mergeEvents: true)[1] & mev == 0, "bypass reads SHCFG only")
        #expect(ArmSMMUv3Entries.steUsed(Self.abort.words, mergeEvents: true)[1] == 0)
    }

    @Test("arm_smmu_get_ste_update_safe: MEV always; EATS_TRANS unless EATS_S1CHK or S2S on either side")
    func updateSafeBits() throws {
        let t = try Tables.make()
        let trans = ArmSMMUv3Entries.eatsTrans << 28
        let mev = ArmSMMUv3Nesting.ste1MEV
        let s2 = t.s2STE(.ats), stall = t.s2STE(.stall)
        #expect(ArmSMMUv3Entries.steUpdateSafe(current: s2.words, target: Self.bypass.words)[1] == trans | mev)
        #expect(ArmSMMUv3Entries.steUpdateSafe(current: stall.words, target: s2.words)[1] == mev, "S2S on one side")
        var s1chk = s2
        s1chk.eats = ArmSMMUv3Entries.eatsS1Check
        #expect(ArmSMMUv3Entries.steUpdateSafe(current: Self.bypass.words, target: s1chk.words)[1] == mev, "EATS_S1CHK on one side")
        #expect(ArmSMMUv3Entries.steUpdateSafe(current: s2.words, target: s2.words).enumerated().allSatisfy { $0.offset == 1 || $0.element == 0 },
                "only word 1")
        // The writer asks for them only for an STE on a release that has the hook.
        for v in Version.allCases {
            let c = KernelConfiguration(version: v)
            let steSafe = ArmSMMUv3EntryWriter(kind: .ste, configuration: c).updateSafe(current: s2.words, target: Self.bypass.words)
            #expect((steSafe[1] != 0) == v.behaviours.contains(.steUpdateSafe), "\(v.rawValue)")
            #expect(ArmSMMUv3EntryWriter(kind: .cd, configuration: c).updateSafe(current: s2.words, target: Self.bypass.words) == [UInt64](repeating: 0, count: 8),
                    "the CD writer has no get_update_safe")
        }
    }

    @Test("arm_smmu_make_cdtable_ste: SHCFG = incoming with ATTR_TYPES_OVR only for S1DSS = bypass; S1STALLD unless the master stalls; EATS with ATS")
    func cdTableBuilder() {
        #expect(Self.cdTableSTE(Self.s1dssBypass, .ats).shcfg == 1)
        #expect(Self.cdTableSTE(Self.ssid0, .ats).shcfg == 0)
        #expect(Self.cdTableSTE(Self.ssid0, .ats).eats == ArmSMMUv3Entries.eatsTrans)
        #expect(Self.cdTableSTE(Self.ssid0, .none).eats == 0)
        #expect(Self.cdTableSTE(Self.ssid0, .none).s1StallDisable)
        #expect(!Self.cdTableSTE(Self.ssid0, .stall).s1StallDisable)
        var noOverride = Self.features
        noOverride.attributeTypesOverride = false
        #expect(ArmSMMUv3Entries.cdTableSTE(cdTable: Self.cdTable, s1Fmt: 0, s1CDMax: 0, s1DSS: Self.s1dssBypass, features: noOverride).shcfg == 0)
    }
}
