import Bus
import SMMUv3

/// The STE and CD values Linux builds (`arm_smmu_make_*`) and the "used bits" rules its
/// hitless entry writer relies on (`arm_smmu_get_ste_used`, `arm_smmu_get_cd_used`). Bit
/// layouts come from the hardware module's `StreamTableEntry`/`ContextDescriptor`; which fields
/// are set follows the named Linux function.
public enum ArmSMMUv3Entries {
    /// `arm_smmu_make_abort_ste`: V | Config=abort.
    public static func abortSTE() -> StreamTableEntry {
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .abort
        return ste
    }

    /// `arm_smmu_make_bypass_ste`: V | Config=bypass, and SHCFG = incoming (1) when
    /// IDR1.ATTR_TYPES_OVR.
    public static func bypassSTE(features: ArmSMMUv3Features) -> StreamTableEntry {
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .bypass
        if features.attributeTypesOverride { ste.shcfg = 1 }
        return ste
    }

    /// `arm_smmu_make_cdtable_ste`: V | Config=S1 | S1Fmt | S1ContextPtr | S1CDMax;
    /// S1DSS, S1CIR = S1COR = WBRA (1), S1CSH = ISH (3), S1STALLD when the SMMU has stalls
    /// and the master does not, EATS 0 (no ATS), STRW = NS-EL1 and S2VMID 0 (no E2H).
    public static func cdTableSTE(cdTable: PhysicalAddress, s1Fmt: UInt64, s1CDMax: Int, s1DSS: UInt64,
                                  features: ArmSMMUv3Features) -> StreamTableEntry {
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .stage1
        ste.s1Fmt = s1Fmt
        ste.s1ContextPtr = cdTable.rawValue.keepingBits(51, 6)
        ste.s1CDMax = s1CDMax
        ste.s1DSS = s1DSS
        ste.s1CIR = 1
        ste.s1COR = 1
        ste.s1CSH = 3
        ste.s1StallDisable = features.stalls
        ste.strw = 0
        ste.s2VMID = VMID(0)
        return ste
    }

    /// STRTAB_STE_1_S1DSS_SSID0: non-substream traffic uses CD 0.
    public static let s1DSSSubstream0: UInt64 = 2

    /// `arm_smmu_make_s2_domain_ste`: V | Config=S2; VMID, the VTCR block (S2T0SZ, S2SL0,
    /// S2IR0/OR0 = WBWA, S2SH0 = ISH, S2TG, S2PS), S2AA64, S2PTW, S2R; S2TTB; SHCFG = incoming
    /// with ATTR_TYPES_OVR.
    public static func stage2STE(vmid: VMID, table: IOPageTableARM, features: ArmSMMUv3Features) -> StreamTableEntry {
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .stage2
        if features.attributeTypesOverride { ste.shcfg = 1 }
        ste.s2VMID = vmid
        ste.s2T0SZ = table.tableSize
        ste.s2SL0 = table.startLevelField
        ste.s2IR0 = 1
        ste.s2OR0 = 1
        ste.s2SH0 = 3
        ste.s2Granule = table.geometry.granule
        ste.s2PS = table.physicalSizeField
        ste.s2AA64 = true
        ste.s2PTW = true
        ste.s2R = true
        ste.s2TTB = table.root.rawValue.keepingBits(51, 4)
        return ste
    }

    /// `arm_smmu_make_s1_cd`: T0SZ, TG0, IRGN0/ORGN0 = WBWA, SH0 = IS, EPD1, V, IPS, AA64,
    /// R, A, ASET, ASID; TTB0; MAIR (io-pgtable's TCR/TTBR/MAIR for a coherent walk).
    public static func stage1CD(asid: ASID, table: IOPageTableARM) -> ContextDescriptor {
        var cd = ContextDescriptor()
        cd.t0sz = table.tableSize
        cd.tg0 = table.geometry.granule
        cd.ir0 = 1
        cd.or0 = 1
        cd.sh0 = 3
        cd.epd1 = true
        cd.valid = true
        cd.ips = table.physicalSizeField
        cd.aa64 = true
        cd.record = true
        cd.abort = true
        cd.aset = true
        cd.asid = asid
        cd.ttb0 = table.root.rawValue.keepingBits(51, 4)
        cd.mair = IOPageTableARM.mair
        return cd
    }

    // MARK: Used bits

    /// `arm_smmu_get_ste_used`: the bits the SMMU reads for the STE's current Config.
    public static func steUsed(_ e: [UInt64]) -> [UInt64] {
        var used = [UInt64](repeating: 0, count: 8)
        guard e.count == 8 else { return used }
        used[0] = 1                                    // V
        guard e[0] & 1 != 0 else { return used }
        used[0] |= UInt64(0b111) << 1                  // Config
        let cfg = e[0].bits(3, 1)
        if cfg & 1 != 0 {                              // S1 translates
            used[0] |= (UInt64(0b11) << 4) | UInt64.lowMask(46) << 6 | (UInt64(0x1F) << 59)
            // S1DSS, S1CIR, S1COR, S1CSH, S1STALLD, STRW, EATS.
            used[1] |= UInt64(0xFF) | (1 << 27) | (UInt64(3) << 30) | (UInt64(3) << 28)
            used[2] |= 0xFFFF                          // S2VMID
            if e[1].bits(1, 0) == 1 { used[1] |= UInt64(3) << 44 } // SHCFG with S1DSS bypass
        }
        if cfg & 2 != 0 {                              // S2 translates
            used[1] |= (1 << 25) | (UInt64(3) << 28) | (UInt64(3) << 44) // S2FWB, EATS, SHCFG
            // S2VMID, VTCR[50:32], S2AA64, S2ENDI, S2PTW, S2S, S2R.
            used[2] |= 0xFFFF | (UInt64.lowMask(19) << 32) | (1 << 51) | (1 << 52) | (1 << 54) | (1 << 57) | (1 << 58)
            used[3] |= UInt64.lowMask(48) << 4         // S2TTB[51:4]
        }
        if cfg == 0b100 { used[1] |= UInt64(3) << 44 } // bypass: SHCFG
        return used
    }

    /// `arm_smmu_get_cd_used`: V only when invalid; everything when valid, less the TTB0
    /// fields when EPD0 is set.
    public static func cdUsed(_ e: [UInt64]) -> [UInt64] {
        var used = [UInt64](repeating: 0, count: 8)
        guard e.count == 8 else { return used }
        used[0] = 1 << 31
        guard e[0] & (1 << 31) != 0 else { return used }
        used = [UInt64](repeating: .max, count: 8)
        if e[0] & (1 << 14) != 0 {
            used[0] &= ~(UInt64.lowMask(14))           // T0SZ, TG0, IR0, OR0, SH0
            used[1] &= ~(UInt64.lowMask(48) << 4)      // TTB0
        }
        return used
    }
}
