import Bus
import SMMUv3

// STE and CD values for bring-up and hardware tests, built from the hardware module's field
// encoders. They follow the shapes of Linux's `arm_smmu_make_*` recipes, whose model (with
// the driver's feature-dependent fields) is `ArmSMMUv3Entries` in the LinuxKernel module; the
// hardware module itself only encodes and decodes fields.

extension StreamTableEntry {
    /// An S2-only STE as Linux `arm_smmu_make_s2_domain_ste` writes it: V, Config=S2, VMID,
    /// the VTCR fields, S2AA64, S2PTW, S2R.
    public static func stage2(vmid: VMID, ttb: PhysicalAddress, geometry: WalkGeometry, outputSize: OutputAddressSize, record: Bool = true, protectedTableWalk: Bool = true) -> StreamTableEntry {
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .stage2
        ste.setStage2(vmid: vmid, ttb: ttb, geometry: geometry, outputSize: outputSize, record: record, protectedTableWalk: protectedTableWalk)
        return ste
    }

    /// An S1-only STE pointing at a CD or CD table (Linux `arm_smmu_make_cdtable_ste`).
    public static func stage1(contextPtr: UInt64, cdMax: Int = 0, s1Fmt: UInt64 = 0, s1DSS: UInt64 = 0) -> StreamTableEntry {
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .stage1
        ste.s1ContextPtr = contextPtr
        ste.s1CDMax = cdMax
        ste.s1Fmt = s1Fmt
        ste.s1DSS = s1DSS
        ste.s1CIR = 1; ste.s1COR = 1; ste.s1CSH = 3
        return ste
    }

    /// A nested STE (Config=0b111): guest S1 fields plus the host's stage 2 (Linux
    /// `arm_smmu_make_nested_cd_table_ste`).
    public static func nested(contextPtr: UInt64, cdMax: Int = 0, s1Fmt: UInt64 = 0, s1DSS: UInt64 = 0,
                              vmid: VMID, s2TTB: PhysicalAddress, s2Geometry: WalkGeometry, outputSize: OutputAddressSize,
                              record: Bool = true, protectedTableWalk: Bool = true) -> StreamTableEntry {
        var ste = stage1(contextPtr: contextPtr, cdMax: cdMax, s1Fmt: s1Fmt, s1DSS: s1DSS)
        ste.config = .nested
        ste.setStage2(vmid: vmid, ttb: s2TTB, geometry: s2Geometry, outputSize: outputSize, record: record, protectedTableWalk: protectedTableWalk)
        return ste
    }

}

extension ContextDescriptor {
    /// A stage-1 CD as Linux `arm_smmu_make_s1_cd` writes it for an io-pgtable domain: T0SZ, TG0,
    /// IR0/OR0 = WBWA, SH0 = IS, IPS, EPD1, V, AA64, R, A, ASET, ASID, TTB0 and MAIR (Linux MAIR:
    /// index 0 Normal-NC 0x44, 1 Normal WB 0xFF, 2 Device-nGnRE 0x04).
    public static func stage1(asid: ASID, ttb0: UInt64, geometry: WalkGeometry, ips: OutputAddressSize, record: Bool = true, abort: Bool = true) -> ContextDescriptor {
        var cd = ContextDescriptor()
        cd.t0sz = 64 - geometry.inputSize
        cd.tg0 = geometry.granule
        cd.ir0 = 1; cd.or0 = 1; cd.sh0 = 3
        cd.ips = UInt64(ips.rawValue)
        cd.epd1 = true
        cd.valid = true
        cd.aa64 = true
        cd.record = record
        cd.abort = abort
        cd.aset = true
        cd.asid = asid
        cd.ttb0 = ttb0
        cd.mair = 0x04_FF_44
        return cd
    }
}

