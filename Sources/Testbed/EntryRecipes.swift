import Bus
import LinuxKernel
import SMMUv3

// STE and CD values for bring-up and hardware tests. They are the Linux driver model's recipes
// (`ArmSMMUv3Entries`, `ArmSMMUv3Nesting`: Linux's `arm_smmu_make_*`) for an SMMU without
// ATTR_TYPES_OVR or stalls, given the tables the caller wrote; the only field a test may change
// is the stage-2 record flag (S2R), to exercise the SMMU's no-record path. The hardware module
// itself only encodes and decodes fields.

/// The feature set the bring-up recipes use: none of the feature-dependent fields (SHCFG,
/// S1STALLD, S2S, EATS) is set, as on an SMMU without ATTR_TYPES_OVR or stalls.
private let bringUpFeatures = ArmSMMUv3Features()

extension StreamTableEntry {
    /// An S2-only STE: Linux `arm_smmu_make_s2_domain_ste` (`ArmSMMUv3Entries.stage2STE`),
    /// with S2R cleared when `record` is false.
    public static func stage2(vmid: VMID, ttb: PhysicalAddress, geometry: WalkGeometry, outputSize: OutputAddressSize, record: Bool = true) -> StreamTableEntry {
        var ste = ArmSMMUv3Entries.stage2STE(vmid: vmid, ttb: ttb, geometry: geometry, outputSize: outputSize, features: bringUpFeatures)
        ste.s2R = record
        return ste
    }

    /// An S1-only STE pointing at a CD or CD table: Linux `arm_smmu_make_cdtable_ste`
    /// (`ArmSMMUv3Entries.cdTableSTE`).
    public static func stage1(contextPtr: UInt64, cdMax: Int = 0, s1Fmt: UInt64 = 0, s1DSS: UInt64 = 0) -> StreamTableEntry {
        ArmSMMUv3Entries.cdTableSTE(cdTable: PhysicalAddress(contextPtr), s1Fmt: s1Fmt, s1CDMax: cdMax, s1DSS: s1DSS,
                                    features: bringUpFeatures)
    }

    /// A nested STE (Config=0b111): the guest's S1 words as `stage1` builds them, merged with
    /// the host's stage 2 by Linux `arm_smmu_make_nested_cd_table_ste`
    /// (`ArmSMMUv3Nesting.nestedCDTableSTE`, without MEV), with S2R cleared when `record` is false.
    public static func nested(contextPtr: UInt64, cdMax: Int = 0, s1Fmt: UInt64 = 0, s1DSS: UInt64 = 0,
                              vmid: VMID, s2TTB: PhysicalAddress, s2Geometry: WalkGeometry, outputSize: OutputAddressSize,
                              record: Bool = true) -> StreamTableEntry {
        let vste = stage1(contextPtr: contextPtr, cdMax: cdMax, s1Fmt: s1Fmt, s1DSS: s1DSS)
        var ste = ArmSMMUv3Nesting.nestedCDTableSTE(vste: (vste.dw0, vste.dw1), vmid: vmid, s2TTB: s2TTB, s2Geometry: s2Geometry,
                                                     outputSize: outputSize, features: bringUpFeatures, mergeEvents: false)
        ste.s2R = record
        return ste
    }
}

extension ContextDescriptor {
    /// The MAIR the bring-up CDs carry: index 0 Normal-NC 0x44, 1 Normal WB 0xFF, 2
    /// Device-nGnRE 0x04 — io-pgtable's `ARM_LPAE_MAIR_ATTR_*` without index 3 (INC_OWBRWA),
    /// which no bring-up table uses.
    public static let bringUpMAIR: UInt64 = 0x04_FF_44

    /// A stage-1 CD: Linux `arm_smmu_make_s1_cd` (`ArmSMMUv3Entries.stage1CD`) for the tables at
    /// `ttb0`, with `bringUpMAIR`.
    public static func stage1(asid: ASID, ttb0: UInt64, geometry: WalkGeometry, ips: OutputAddressSize) -> ContextDescriptor {
        ArmSMMUv3Entries.stage1CD(asid: asid, ttb0: PhysicalAddress(ttb0), geometry: geometry, ips: ips, mair: bringUpMAIR)
    }
}
