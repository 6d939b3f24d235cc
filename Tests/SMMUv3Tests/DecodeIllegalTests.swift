import Bus
import SMMUv3
import Testbed
import Testing

/// Every ILLEGAL rule of `SteIllegal` (§5.2.2) and `CdIllegal` (§5.4.2) that this SMMU can hit:
/// a valid baseline with exactly one field (or the configuration the rule depends on) changed
/// must give C_BAD_STE / C_BAD_CD, with that rule as the reason. The switch over the rule enum
/// is exhaustive, so a new rule cannot be added without a test case.
@Suite struct DecodeIllegalTests {
    /// A valid nested STE (both stages, 4K, 48-bit IPA starting at L0) on the default SMMU.
    static func baselineSTE() -> StreamTableEntry {
        let geometry = WalkGeometry(granule: .size4K, inputSize: 48, startLevel: 0)
        return .nested(contextPtr: 0x4100_0000, vmid: VMID(5), s2TTB: PhysicalAddress(0x4200_0000), s2Geometry: geometry, outputSize: .bits48)
    }

    /// The configuration and STE that break exactly `rule`, and whether the field change alone
    /// (not the configuration) is what breaks it.
    static func steCase(_ rule: STEIllegalRule) -> (SMMUConfiguration, StreamTableEntry, fieldChange: Bool) {
        var c = SMMUConfiguration()
        var s = baselineSTE()
        var field = true
        switch rule {
        case .notValid: s.valid = false
        case .stage1NotImplemented: c.stage1 = false; field = false
        case .stage2NotImplemented: c.stage2 = false; field = false
        case .reservedStreamWorld: c.hyp = true; s.config = .stage1; s.strw = 0b01
        case .s1StallDisableNotConfigurable: s.s1StallDisable = true
        case .s1CDMaxTooLarge: c.substreamIDBits = 4; s.s1CDMax = 5
        case .s1FmtTwoLevelWithoutCD2L: c.twoLevelCDTable = false; s.s1CDMax = 8; s.s1Fmt = 1
        case .s1ContextPtrOutOfRange: s.s1ContextPtr = 1 << 48
        case .s2StallNotSupported: s.s2S = true
        case .s2StallRequired: c.stallModel = .stallForced; field = false
        case .s2TableFormatNotSupported: s.s2AA64 = false
        case .s2HardwareAccessFlagNotSupported: s.s2HA = true
        case .s2HardwareDirtyNotSupported: c.httu = .accessFlag; s.s2HA = true; s.s2HD = true
        case .s2GranuleNotSupported: s.s2TGField = 3
        case .s2TTBOutOfRange: s.s2TTB = 1 << 48
        case .s2T0SZOutOfRange: s.s2T0SZ = 40; s.s2SL0 = 1   // 24-bit IPA: below the 39 maximum
        case .s2StartLevelInconsistent: s.s2SL0 = 0           // L2 cannot resolve 48 bits with ≤16 tables
        case .s2BigEndianNotSupported: s.s2ENDI = true
        case .vmidTooWide: c.vmid16 = false; s.s2VMID = VMID(0x100)
        }
        return (c, s, field)
    }

    @Test(arguments: STEIllegalRule.allCases)
    func illegalSTEGivesBadSTEWithTheRule(rule: STEIllegalRule) throws {
        let (configuration, ste, fieldChange) = Self.steCase(rule)
        #expect(ste.illegalRule(on: configuration) == rule)
        if fieldChange {
            #expect(Self.baselineSTE().illegalRule(on: configuration) == nil, "the configuration alone must not break the baseline")
        }
        let h = TranslationHarness(configuration: configuration)
        try h.setSTE(1, ste)
        let f = try #require(h.translate(1, 0x1000).fault)
        #expect(f.type == .cBadSTE)
        #expect(f.record && f.abort, "configuration errors are always recorded and abort (§5.5)")
        #expect(f.reason.contains(rule.description))
    }

    @Test func baselineSTEIsValid() {
        #expect(Self.baselineSTE().illegalRule(on: .default) == nil)
    }

    /// A Linux-style CD reached through an S1-only STE.
    static func baselineCD() -> ContextDescriptor {
        .stage1(asid: ASID(9), ttb0: 0x4300_0000, geometry: WalkGeometry(granule: .size4K, inputSize: 48, startLevel: 0), ips: .bits48)
    }

    static func cdCase(_ rule: CDIllegalRule) -> (SMMUConfiguration, StreamTableEntry, ContextDescriptor, fieldChange: Bool) {
        var c = SMMUConfiguration()
        var ste = StreamTableEntry.stage1(contextPtr: 0)
        var cd = baselineCD()
        var field = true
        func enableTTB1(_ cd: inout ContextDescriptor) {
            cd.epd1 = false; cd.t1sz = 16; cd.tg1 = .size4K; cd.ttb1 = 0x4400_0000
        }
        switch rule {
        case .notValid: cd.valid = false
        case .stallDisabledByStream: c.stallModel = .stallAndTerminate; ste.s1StallDisable = true; cd.stall = true
        case .abortRequiredByTerminateModel: c.terminateModel = true; cd.abort = false
        case .stallNotSupported: cd.stall = true
        case .stallRequired: c.stallModel = .stallForced; field = false
        case .bigEndianNotSupported: cd.endi = true
        case .aarch32NotSupported: cd.aa64 = false
        case .aarch64NotSupported: c.aarch64Tables = false; field = false
        case .hardwareAccessFlagNotSupported: cd.ha = true
        case .hardwareDirtyNotSupported: c.httu = .accessFlag; cd.ha = true; cd.hd = true
        case .asidTooWide: c.asid16 = false; cd.asid = ASID(0x100)
        case .t0szOutOfRange: cd.t0sz = 40
        case .t1szOutOfRange: enableTTB1(&cd); cd.t1sz = 15
        case .tg0NotSupported: cd.tg0Field = 3
        case .ttb0OutOfRange: cd.ttb0 = 1 << 48
        case .tg1NotSupported: enableTTB1(&cd); cd.tg1Field = 0
        case .ttb1OutOfRange: enableTTB1(&cd); cd.ttb1 = 1 << 48
        }
        return (c, ste, cd, field)
    }

    @Test(arguments: CDIllegalRule.allCases)
    func illegalCDGivesBadCDWithTheRule(rule: CDIllegalRule) throws {
        let (configuration, steTemplate, cd, fieldChange) = Self.cdCase(rule)
        let h = TranslationHarness(configuration: configuration)
        var ste = steTemplate
        ste.s1ContextPtr = try h.allocateHost(64)
        #expect(ste.illegalRule(on: configuration) == nil, "the STE must be valid so the CD is reached")
        #expect(cd.illegalRule(on: configuration, ste: ste) == rule)
        if fieldChange {
            #expect(Self.baselineCD().illegalRule(on: configuration, ste: ste) == nil)
        }
        try h.writeCD(cd, at: ste.s1ContextPtr)
        try h.setSTE(1, ste)
        let f = try #require(h.translate(1, 0x1000).fault)
        #expect(f.type == .cBadCD)
        #expect(f.record && f.abort)
        #expect(f.reason.contains(rule.description))
    }

    /// EPD1=1 disables every TTB1 check (§5.4.1.1): garbage in T1SZ/TG1/TTB1 is then fine.
    @Test func disabledTTB1FieldsAreNotChecked() {
        var cd = Self.baselineCD()
        cd.t1sz = 63; cd.tg1Field = 0; cd.ttb1 = 1 << 55
        #expect(cd.illegalRule(on: .default, ste: .stage1(contextPtr: 0)) == nil)
    }

    /// Every legal S2T0SZ/SL0 pair per granule is accepted, every other pair is ILLEGAL, and the
    /// boundary is the 16-table concatenation limit (4K, SL0=1 → L1: 31…43 bits).
    @Test func stage2StartLevelBoundaries() {
        func rule(_ inputSize: Int, sl0: Int) -> STEIllegalRule? {
            var s = Self.baselineSTE()
            s.s2T0SZ = 64 - inputSize
            s.s2SL0 = sl0
            return s.illegalRule(on: .default)
        }
        #expect(rule(30, sl0: 1) == .s2StartLevelInconsistent)   // L1 resolves ≥ 31 bits
        #expect(rule(31, sl0: 1) == nil)
        #expect(rule(43, sl0: 1) == nil)                         // 30 + 9 + 4: 16 tables
        #expect(rule(44, sl0: 1) == .s2StartLevelInconsistent)   // 32 tables
        #expect(rule(48, sl0: 3) == .s2StartLevelInconsistent)   // SL0=3 needs IDR3.STT
    }
}
