import Testing
import Bus
import SMMUv3
@testable import LinuxKernel

/// The nested STE as a VMM moves it (a vSTE's CFGI_STE → IOMMU_HWPT_ALLOC on the vIOMMU +
/// attach), per release: how many CFGI_STE + CMD_SYNC steps the host's `arm_smmu_write_entry`
/// takes and whether the SMMU could fetch a V = 0 STE in between (which, for DMA in flight,
/// is C_BAD_STE), seen through the driver's entry-writer observer and its command log; and who
/// may attach an abort/bypass vSTE without a vDEVICE.
@Suite("iommufd nesting: the physical STE's updates and GBPA attach, per release", .serialized)
struct NestedSTEUpdateTests {
    typealias F = NestedFixture
    typealias Version = KernelConfiguration.Version

    /// What one vSTE change did to ep0's physical STE.
    struct Update {
        var syncs = 0
        var wentThroughInvalid = false
        var cfgiSTEs = 0
    }

    /// Attaches ep0 to a nested HWPT made from `vste` and records the STE writer's steps.
    static func update(_ f: F, to vste: [UInt64]) throws -> Update {
        var u = Update()
        let strtab = try #require(f.smmu.streamTable)
        let address = try #require(strtab.steAddress(for: F.pSID.rawValue))
        f.smmu.entryWriteObserver = { kind, at, words in
            guard kind == .ste, at == address else { return }
            u.syncs += 1
            if words[0] & 1 == 0 { u.wentThroughInvalid = true }
        }
        defer { f.smmu.entryWriteObserver = nil }
        f.smmu.resetCommandLog()
        try f.attachNested(vste)
        u.cfgiSTEs = f.smmu.commandLog.filter { if case .cfgiSTE = $0 { true } else { false } }.count
        return u
    }

    static let bypassVSTE: [UInt64] = [1 | (0b100 << 1), 0]
    /// The guest's S1-translate vSTE with S1DSS = bypass (STRTAB_STE_1_S1DSS_BYPASS = 1).
    static var s1dssBypassVSTE: [UInt64] { [F.translatingVSTE[0], F.translatingVSTE[1] | ArmSMMUv3Entries.s1DSSBypass] }

    @Test("bypass vSTE → S1 translate with S1DSS=bypass → bypass: v6.14 hitless (2, 2), v6.15 and v6.19 through V=0 (3, 3), v7.0 hitless (2, 3)",
          arguments: Version.allCases)
    func bypassToS1DSSBypassAndBack(_ v: Version) throws {
        let f = try F.make(configuration: KernelConfiguration(version: v))
        _ = try Self.update(f, to: Self.bypassVSTE)
        #expect(try f.physicalSTE().config == .stage2)

        let there = try Self.update(f, to: Self.s1dssBypassVSTE)
        let nested = try f.physicalSTE()
        #expect(nested.config == .nested && nested.s1DSS == ArmSMMUv3Entries.s1DSSBypass)
        #expect(nested.mev == v.behaviours.contains(.nestedSTEMergeEvents), "MEV from v6.15 (da0c56520e88)")
        let back = try Self.update(f, to: Self.bypassVSTE)
        #expect(try f.physicalSTE().config == .stage2)

        let expected: (there: (Int, Bool), back: (Int, Bool)) = switch v {
        case .v6_14: ((2, false), (2, false))
        case .v6_15, .v6_19: ((3, true), (3, true))
        case .v7_0: ((2, false), (3, false))
        }
        #expect(there.syncs == expected.there.0 && there.wentThroughInvalid == expected.there.1,
                "\(v.rawValue) there: \(there.syncs) syncs, V=0 seen \(there.wentThroughInvalid)")
        #expect(back.syncs == expected.back.0 && back.wentThroughInvalid == expected.back.1,
                "\(v.rawValue) back: \(back.syncs) syncs, V=0 seen \(back.wentThroughInvalid)")
        #expect(there.cfgiSTEs == there.syncs && back.cfgiSTEs == back.syncs, "one CFGI_STE(leaf) + CMD_SYNC per step")
    }

    /// The vSTE has S1CDMax = 0, so substreams are off and S1DSS is IGNORED (SMMUv3 §5.2
    /// S1DSS): every transaction uses CD 0, the guest's. Whatever steps the writer took, the
    /// STE the SMMU fetches afterwards is the whole new one.
    @Test("after bypass → S1DSS=bypass vSTE, DMA translates through the guest's CD 0 (S1CDMax 0: S1DSS ignored) with no event, on every release",
          arguments: Version.allCases)
    func dmaAfterTheSwitch(_ v: Version) throws {
        let f = try F.make(configuration: KernelConfiguration(version: v))
        try f.buildGuestStage1()
        try f.attachNested(Self.bypassVSTE)
        #expect(f.dmaWrite(F.bufferIPA + 0x10, 0xB1) == .completed, "bypass vSTE: the device's address is an IPA")
        try f.attachNested(Self.s1dssBypassVSTE)
        #expect(f.dmaWrite(F.gIOVA + 0x18, 0x5EB1) == .completed)
        #expect(try f.guestRead64(F.bufferIPA + 0x18) == 0x5EB1, "gIOVA → IPA through the guest's stage 1")
        #expect(try f.smmu.serviceEventQueue().isEmpty, "no C_BAD_STE, no fault")
    }

    /// 81c45c62dc3e (v6.19): `arm_smmu_attach_prepare_vmaster` lets an abort or bypass vSTE (or a
    /// V=0 one, zeroed to Config abort) attach without a vDEVICE, with no vmaster; a translating
    /// vSTE still needs one. From v6.15 (f0ea207ed781, the vmaster) to v6.19, every nested
    /// attach without a vDEVICE was ENOENT. v6.14 had no vmaster: every nested attach went
    /// ahead without a vDEVICE, and no master had a vmaster.
    @Test("nested attach without a vDEVICE: v6.14 always, v6.15 never (ENOENT), v6.19 for abort/bypass/V=0 vSTEs only",
          arguments: Version.allCases)
    func gbpaAttachWithoutVDevice(_ v: Version) throws {
        let f = try F.make(configuration: KernelConfiguration(version: v))
        // A second vIOMMU on the same parent, without a vDEVICE for ep0.
        let second = try f.iommufd.viommuAlloc(deviceID: f.deviceID, hwptID: f.parent)
        let master = try #require(f.smmu.streams[F.pSID.rawValue])
        let vmasters = v.behaviours.contains(.nestedVMaster)
        let gbpa = v.behaviours.contains(.nestedGBPAAttach)
        #expect(vmasters == (v >= .v6_15) && gbpa == (v >= .v6_19))
        for (name, vste, config) in [("abort", [UInt64(1), 0], StreamConfig.abort), ("bypass", Self.bypassVSTE, .stage2),
                                     ("V=0", [0, 0], .abort)] {
            let hwpt = try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: second, dataType: .armSMMUv3, data: vste)
            if gbpa || !vmasters {
                #expect(try f.file.attachIOMMUFDPT(hwpt) == hwpt, "\(v.rawValue) \(name)")
                #expect(try f.physicalSTE().config == config, "\(v.rawValue) \(name)")
                #expect(master.vmaster == nil, "\(v.rawValue) \(name): no vmaster, so no vevents")
            } else {
                #expect(throws: Errno.ENOENT, "\(v.rawValue) \(name)") { try f.file.attachIOMMUFDPT(hwpt) }
                #expect(try f.physicalSTE().config == .stage2, "\(v.rawValue) \(name): still on the parent")
                try f.iommufd.destroy(hwpt)
            }
        }
        let translate = try f.iommufd.hwptAlloc(deviceID: f.deviceID, ptID: second, dataType: .armSMMUv3, data: F.translatingVSTE)
        if vmasters {
            #expect(throws: Errno.ENOENT, "\(v.rawValue) translate") { try f.file.attachIOMMUFDPT(translate) }
        } else {
            #expect(try f.file.attachIOMMUFDPT(translate) == translate)
            #expect(try f.physicalSTE().config == .nested, "v6.14: the translating vSTE is installed without a vDEVICE")
            #expect(master.vmaster == nil)
        }
        // With its vDEVICE (the first vIOMMU) a bypass vSTE attaches on every release, with a
        // vmaster from v6.15.
        try f.attachNested(Self.bypassVSTE)
        #expect(master.vmaster?.virtualStreamID == (vmasters ? F.vSID : nil), "\(v.rawValue)")
    }
}
