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

    /// `arm_smmu_make_cdtable_ste(target, master, ats_enabled, s1dss)`: V | Config=S1 | S1Fmt |
    /// S1ContextPtr | S1CDMax; S1DSS, S1CIR = S1COR = WBRA (1), S1CSH = ISH (3), S1STALLD when
    /// the SMMU has stalls (ARM_SMMU_FEAT_STALLS) and the master is not stall-enabled, EATS =
    /// TRANS (1) with `ats` (the driver never enables ATS: the model has no ATS); SHCFG = incoming
    /// (1) when IDR1.ATTR_TYPES_OVR and S1DSS = bypass; STRW = NS-EL1 and S2VMID 0 (no E2H).
    public static func cdTableSTE(cdTable: PhysicalAddress, s1Fmt: UInt64, s1CDMax: Int, s1DSS: UInt64,
                                  features: ArmSMMUv3Features, ats: Bool = false, stallEnabled: Bool = false) -> StreamTableEntry {
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
        ste.s1StallDisable = features.stalls && !stallEnabled
        ste.eats = ats ? eatsTrans : 0
        if features.attributeTypesOverride && s1DSS == s1DSSBypass { ste.shcfg = 1 }
        ste.strw = 0
        ste.s2VMID = VMID(0)
        return ste
    }

    /// STRTAB_STE_1_S1DSS_TERMINATE: non-substream traffic is terminated.
    public static let s1DSSTerminate: UInt64 = 0
    /// STRTAB_STE_1_S1DSS_BYPASS: non-substream traffic bypasses stage 1.
    public static let s1DSSBypass: UInt64 = 1
    /// STRTAB_STE_1_S1DSS_SSID0: non-substream traffic uses CD 0.
    public static let s1DSSSubstream0: UInt64 = 2
    /// STRTAB_STE_1_EATS_TRANS: ATS translation requests are answered (full ATS).
    public static let eatsTrans: UInt64 = 1
    /// STRTAB_STE_1_EATS_S1CHK: split-stage ATS.
    public static let eatsS1Check: UInt64 = 2

    /// `arm_smmu_make_s2_domain_ste(target, master, smmu_domain, ats_enabled)`: V | Config=S2;
    /// EATS = TRANS with `ats` (never, from the driver: no ATS in the model); SHCFG = incoming
    /// with ATTR_TYPES_OVR; VMID, the VTCR block (S2T0SZ, S2SL0, S2IR0/OR0 = WBWA, S2SH0 = ISH,
    /// S2TG, S2PS), S2AA64, S2PTW, S2S for a stall-enabled master, S2R; S2TTB (SMMUv3 §5.2).
    /// The io-pgtable's `vttbr`/`vtcr` come in as primitives (`ttb`, `geometry` for T0SZ, SL0
    /// and TG, `outputSize` for PS) so bring-up code that writes its own tables builds the
    /// same STE; the domain's form below forwards here.
    public static func stage2STE(vmid: VMID, ttb: PhysicalAddress, geometry: WalkGeometry, outputSize: OutputAddressSize,
                                 features: ArmSMMUv3Features, ats: Bool = false, stallEnabled: Bool = false) -> StreamTableEntry {
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .stage2
        ste.eats = ats ? eatsTrans : 0
        if features.attributeTypesOverride { ste.shcfg = 1 }
        ste.s2VMID = vmid
        ste.s2T0SZ = 64 - geometry.inputSize
        ste.s2SL0 = WalkGeometry.sl0(granule: geometry.granule, startLevel: geometry.startLevel)
        ste.s2IR0 = 1
        ste.s2OR0 = 1
        ste.s2SH0 = 3
        ste.s2Granule = geometry.granule
        ste.s2PS = UInt64(outputSize.rawValue)
        ste.s2AA64 = true
        ste.s2PTW = true
        ste.s2S = stallEnabled
        ste.s2R = true
        ste.s2TTB = ttb.rawValue.keepingBits(51, 4)
        return ste
    }

    /// `arm_smmu_make_s2_domain_ste` for an io-pgtable stage-2 domain: its VTTBR, walk and PS.
    public static func stage2STE(vmid: VMID, table: IOPageTableARM, features: ArmSMMUv3Features,
                                 ats: Bool = false, stallEnabled: Bool = false) -> StreamTableEntry {
        stage2STE(vmid: vmid, ttb: table.root, geometry: table.geometry, outputSize: table.outputSize,
                  features: features, ats: ats, stallEnabled: stallEnabled)
    }

    /// `arm_smmu_make_s1_cd`: T0SZ, TG0, IRGN0/ORGN0 = WBWA, SH0 = IS, EPD1, V, IPS, AA64,
    /// R, A, ASET, ASID; TTB0; MAIR (SMMUv3 §5.4). Linux takes TCR/TTBR/MAIR from io-pgtable's
    /// `arm_lpae_s1_cfg`; here they come in as primitives (`ttb0`, `geometry` for T0SZ and TG0,
    /// `ips`, `mair`) so bring-up code that writes its own tables builds the same CD; the
    /// domain's form below forwards here with io-pgtable's MAIR.
    public static func stage1CD(asid: ASID, ttb0: PhysicalAddress, geometry: WalkGeometry, ips: OutputAddressSize,
                                mair: UInt64 = IOPageTableARM.mair) -> ContextDescriptor {
        var cd = ContextDescriptor()
        cd.t0sz = 64 - geometry.inputSize
        cd.tg0 = geometry.granule
        cd.ir0 = 1
        cd.or0 = 1
        cd.sh0 = 3
        cd.epd1 = true
        cd.valid = true
        cd.ips = UInt64(ips.rawValue)
        cd.aa64 = true
        cd.record = true
        cd.abort = true
        cd.aset = true
        cd.asid = asid
        cd.ttb0 = ttb0.rawValue.keepingBits(51, 4)
        cd.mair = mair
        return cd
    }

    /// `arm_smmu_make_s1_cd` for an io-pgtable stage-1 domain: its TTBR, walk, IPS and MAIR.
    public static func stage1CD(asid: ASID, table: IOPageTableARM) -> ContextDescriptor {
        stage1CD(asid: asid, ttb0: table.root, geometry: table.geometry, ips: table.outputSize)
    }

    // MARK: Used bits

    /// `arm_smmu_get_ste_used`: the bits the SMMU reads for the STE's current Config.
    /// - V always; with V: Config;
    /// - S1 translates (Config bit 0): S1Fmt, S1ContextPtr, S1CDMax; S1DSS, S1CIR, S1COR,
    ///   S1CSH, S1STALLD, STRW, EATS (and MEV with `mergeEvents`); S2VMID; SHCFG when S1DSS =
    ///   bypass ("13.5 Summary of attribute/permission configuration fields");
    /// - S2 translates (Config bit 1): S2FWB, EATS, SHCFG (and MEV with `mergeEvents`);
    ///   S2VMID, VTCR, S2AA64, S2ENDI, S2PTW, S2S, S2R; S2TTB;
    /// - bypass: SHCFG.
    /// `mergeEvents` is `KernelBehaviour.nestedSTEMergeEvents` (commit da0c56520e88 added MEV to
    /// both lists when it made nested STEs set it).
    public static func steUsed(_ e: [UInt64], mergeEvents: Bool) -> [UInt64] {
        var used = [UInt64](repeating: 0, count: 8)
        guard e.count == 8 else { return used }
        used[0] = 1                                    // V
        guard e[0] & 1 != 0 else { return used }
        used[0] |= UInt64(0b111) << 1                  // Config
        let cfg = e[0].bits(3, 1)
        let mev: UInt64 = mergeEvents ? StreamTableEntryBits.mev : 0
        if cfg & 1 != 0 {                              // S1 translates
            used[0] |= (UInt64(0b11) << 4) | UInt64.lowMask(46) << 6 | (UInt64(0x1F) << 59)
            // S1DSS, S1CIR, S1COR, S1CSH, S1STALLD, STRW, EATS, MEV.
            used[1] |= UInt64(0xFF) | (1 << 27) | (UInt64(3) << 30) | StreamTableEntryBits.eats | mev
            used[2] |= 0xFFFF                          // S2VMID
            if e[1].bits(1, 0) == s1DSSBypass { used[1] |= StreamTableEntryBits.shcfg }
        }
        if cfg & 2 != 0 {                              // S2 translates
            // S2FWB, EATS, SHCFG, MEV.
            used[1] |= (1 << 25) | StreamTableEntryBits.eats | StreamTableEntryBits.shcfg | mev
            // S2VMID, VTCR[50:32], S2AA64, S2ENDI, S2PTW, S2S, S2R.
            used[2] |= 0xFFFF | (UInt64.lowMask(19) << 32) | (1 << 51) | (1 << 52) | (1 << 54) | StreamTableEntryBits.s2S | (1 << 58)
            used[3] |= UInt64.lowMask(48) << 4         // S2TTB[51:4]
        }
        if cfg == 0b100 { used[1] |= StreamTableEntryBits.shcfg } // bypass: SHCFG
        return used
    }

    /// `arm_smmu_get_ste_update_safe(cur, target, safe_bits)` (`KernelBehaviour.steUpdateSafe`):
    /// bits of word 1 the writer may change out of sequence.
    /// - EATS = TRANS, unless either entry has EATS = S1CHK (bit 29: "EATS=0b11 would be
    ///   effectively an errant 0b00") or S2S (a transient S2S = 1 with EATS = 1 is an ILLEGAL STE,
    ///   SMMUv3 §5.2): the attach path has already disabled ATS at the PCI device, so no
    ///   translation request races with it (commit 7cad80048595 "Mark EATS_TRANS safe when
    ///   computing the update sequence");
    /// - MEV always: it only changes how many fault records are merged, and "Software must
    ///   expect, and be able to deal with, coalesced fault records even when MEV == 0" (commit
    ///   f3c1d372dbb8 "Mark STE MEV safe when computing the update sequence").
    public static func steUpdateSafe(current: [UInt64], target: [UInt64]) -> [UInt64] {
        var safe = [UInt64](repeating: 0, count: 8)
        guard current.count == 8, target.count == 8 else { return safe }
        let s1chk = eatsS1Check << 28, trans = eatsTrans << 28
        if (current[1] | target[1]) & s1chk == 0 && (current[2] | target[2]) & StreamTableEntryBits.s2S == 0 {
            safe[1] |= trans
        }
        safe[1] |= StreamTableEntryBits.mev
        return safe
    }

    /// STE field masks the used-bits rules name (SMMUv3 §5.2 layout).
    enum StreamTableEntryBits {
        /// STRTAB_STE_1_MEV, word 1 bit 19.
        static let mev: UInt64 = 1 << 19
        /// STRTAB_STE_1_EATS, word 1 bits [29:28].
        static let eats: UInt64 = UInt64(0b11) << 28
        /// STRTAB_STE_1_SHCFG, word 1 bits [45:44].
        static let shcfg: UInt64 = UInt64(0b11) << 44
        /// STRTAB_STE_2_S2S, word 2 bit 57.
        static let s2S: UInt64 = 1 << 57
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
