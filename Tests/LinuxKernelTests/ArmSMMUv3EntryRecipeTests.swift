import Testing
import Bus
import SMMUv3
import LinuxKernel

/// The driver's entry recipes in their primitive forms (the ones bring-up code and the
/// io-pgtable forms both call), pinned to the words Linux's `arm_smmu_make_*` writes for an
/// SMMU with ARM_SMMU_FEAT_ATTR_TYPES_OVR and ARM_SMMU_FEAT_STALLS. Each expected word is
/// assembled from the field positions of SMMUv3 (IHI0070) §5.2 (STE) and §5.4 (CD), not from
/// the encoders.
@Suite("arm-smmu-v3: STE/CD recipes against hand-assembled words")
struct ArmSMMUv3EntryRecipeTests {
    static let features: ArmSMMUv3Features = {
        var f = ArmSMMUv3Features()
        f.attributeTypesOverride = true
        f.stalls = true
        return f
    }()

    /// 4K granule, 48-bit input, walk from level 0.
    static let geometry = WalkGeometry(granule: .size4K, inputSize: 48, startLevel: 0)

    /// `arm_smmu_make_s2_domain_ste` for a stall-enabled master: dw0 = V | Config S2 (0b110
    /// at [3:1]); dw1 = SHCFG incoming (1 at [45:44], ATTR_TYPES_OVR); dw2 = S2VMID [15:0] |
    /// VTCR: S2T0SZ 16 [37:32], S2SL0 2 [39:38], S2IR0/OR0 WBWA 1 [41:40]/[43:42], S2SH0 ISH 3
    /// [45:44], S2TG 4K 0 [47:46], S2PS 44-bit 4 [50:48] | S2AA64 (51) | S2PTW (54) | S2S (57)
    /// | S2R (58); dw3 = S2TTB [51:4].
    @Test func stage2STEWithAttributeOverrideAndStalls() {
        let ste = ArmSMMUv3Entries.stage2STE(vmid: VMID(0x21), ttb: PhysicalAddress(0x8_4000_0000), geometry: Self.geometry,
                                             outputSize: .bits44, features: Self.features, stallEnabled: true)
        let dw2: UInt64 = 0x21 | 16 << 32 | 2 << 38 | 1 << 40 | 1 << 42 | 3 << 44 | 4 << 48 | 1 << 51 | 1 << 54 | 1 << 57 | 1 << 58
        #expect(ste.words == [0xD, 1 << 44, dw2, 0x8_4000_0000, 0, 0, 0, 0])
    }

    /// `arm_smmu_make_cdtable_ste` with S1DSS = bypass on that SMMU, master not stall-enabled:
    /// dw0 = V | Config S1 (0b101) | S1Fmt 2-level 64-entry leaves (2 at [5:4]) | S1ContextPtr
    /// [51:6] | S1CDMax 8 [63:59]; dw1 = S1DSS bypass (1 at [1:0]) | S1CIR/S1COR WBRA (1 at
    /// [3:2]/[5:4]) | S1CSH ISH (3 at [7:6]) | S1STALLD (27, FEAT_STALLS && !stall_enabled) |
    /// STRW NS-EL1 (0 at [31:30]) | SHCFG incoming (1 at [45:44], ATTR_TYPES_OVR and S1DSS
    /// bypass); dw2 = S2VMID 0.
    @Test func cdTableSTEWithBypassS1DSSAndStalls() {
        let ste = ArmSMMUv3Entries.cdTableSTE(cdTable: PhysicalAddress(0x4010_0000), s1Fmt: 2, s1CDMax: 8,
                                              s1DSS: ArmSMMUv3Entries.s1DSSBypass, features: Self.features)
        let dw0: UInt64 = 0xB | 2 << 4 | 0x4010_0000 | 8 << 59
        let dw1: UInt64 = 1 | 1 << 2 | 1 << 4 | 3 << 6 | 1 << 27 | 1 << 44
        #expect(ste.words == [dw0, dw1, 0, 0, 0, 0, 0, 0])
        // With S1DSS = SSID0, SHCFG stays 0 even with ATTR_TYPES_OVR.
        let ssid0 = ArmSMMUv3Entries.cdTableSTE(cdTable: PhysicalAddress(0x4010_0000), s1Fmt: 2, s1CDMax: 8,
                                                s1DSS: ArmSMMUv3Entries.s1DSSSubstream0, features: Self.features)
        let ssid0dw1: UInt64 = 2 | 1 << 2 | 1 << 4 | 3 << 6 | 1 << 27
        #expect(ssid0.dw1 == ssid0dw1)
    }

    /// `arm_smmu_make_s1_cd` with io-pgtable's `arm_lpae_s1_cfg`: dw0 = T0SZ 16 [5:0] | TG0 4K
    /// (0 at [7:6]) | IRGN0/ORGN0 WBWA (1 at [9:8]/[11:10]) | SH0 ISH (3 at [13:12]) | EPD1
    /// (30) | V (31) | IPS 40-bit (2 at [34:32]) | AA64 (41) | R (45) | A (46) | ASET (47) |
    /// ASID [63:48]; dw1 = TTB0 [51:4]; dw3 = MAIR0 (0xF404FF44: NC, WBRWA, DEVICE, INC_OWBRWA).
    @Test func stage1CDWithIOPageTableMAIR() {
        let cd = ArmSMMUv3Entries.stage1CD(asid: ASID(0x1234), ttb0: PhysicalAddress(0x4567_8000), geometry: Self.geometry, ips: .bits40)
        let dw0: UInt64 = 16 | 1 << 8 | 1 << 10 | 3 << 12 | 1 << 30 | 1 << 31 | 2 << 32 | 1 << 41 | 1 << 45 | 1 << 46 | 1 << 47 | 0x1234 << 48
        #expect(cd.words == [dw0, 0x4567_8000, 0, 0xF404_FF44, 0, 0, 0, 0])
    }

    /// `arm_smmu_make_nested_cd_table_ste`: the S2 STE, then dw0 = V | Config nested (0b111)
    /// | the guest's dw0 less Config; dw1 |= the guest's dw1, and MEV (19) with
    /// `KernelBehaviour.nestedSTEMergeEvents` (commit da0c56520e88, v6.15).
    @Test(arguments: [false, true])
    func nestedSTEMergesTheGuestWords(mergeEvents: Bool) {
        let guest: (UInt64, UInt64) = (0xB | 0x4100_0040, 1 | 1 << 2 | 1 << 4 | 3 << 6)
        let ste = ArmSMMUv3Nesting.nestedCDTableSTE(vste: guest, vmid: VMID(5), s2TTB: PhysicalAddress(0x4200_0000),
                                                     s2Geometry: Self.geometry, outputSize: .bits48, features: Self.features,
                                                     mergeEvents: mergeEvents)
        let dw2: UInt64 = 5 | 16 << 32 | 2 << 38 | 1 << 40 | 1 << 42 | 3 << 44 | 5 << 48 | 1 << 51 | 1 << 54 | 1 << 58
        let mev: UInt64 = mergeEvents ? 1 << 19 : 0
        let dw1: UInt64 = guest.1 | 1 << 44 | mev
        #expect(ste.words == [0xF | 0x4100_0040, dw1, dw2, 0x4200_0000, 0, 0, 0, 0])
    }
}
