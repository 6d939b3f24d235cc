/// Register offsets and fields of the SMMUv2 programmers' model (Arm IHI 0062D "ARM System
/// Memory Management Unit Architecture Specification, SMMU architecture version 2.0", chapter 10
/// "The SMMU register map" and chapter 11-14 register descriptions). Offsets are from the start of
/// their register page: global register space 0 (GR0, page 0), global register space 1 (GR1,
/// page 1) and translation context bank n (page NUMPAGE + n).
public enum SMMUv2Register {
    // MARK: Global register space 0 (§10.6, Table 10-4)
    /// SMMU_sCR0 (§10.6.1).
    public static let sCR0: UInt64 = 0x000
    /// SMMU_sACR: implementation defined auxiliary control (MMU-500 TRM §3.3.2).
    public static let sACR: UInt64 = 0x010
    /// SMMU_IDR0…IDR7 (§10.6.2-10.6.4).
    public static let idr0: UInt64 = 0x020
    public static let idr1: UInt64 = 0x024
    public static let idr2: UInt64 = 0x028
    public static let idr7: UInt64 = 0x03C
    /// SMMU_sGFAR (64-bit), SMMU_sGFSR, SMMU_sGFSRRESTORE, SMMU_sGFSYNR0-2 (§10.6.5-10.6.9).
    public static let sGFAR: UInt64 = 0x040
    public static let sGFSR: UInt64 = 0x048
    public static let sGFSRRESTORE: UInt64 = 0x04C
    public static let sGFSYNR0: UInt64 = 0x050
    public static let sGFSYNR1: UInt64 = 0x054
    public static let sGFSYNR2: UInt64 = 0x058
    /// SMMU_TLBIVMID, SMMU_TLBIALLNSNH, SMMU_TLBIALLH, SMMU_sTLBGSYNC, SMMU_sTLBGSTATUS (§10.6.11-10.6.15).
    public static let tlbiVMID: UInt64 = 0x064
    public static let tlbiAllNSNH: UInt64 = 0x068
    public static let tlbiAllH: UInt64 = 0x06C
    public static let sTLBGSYNC: UInt64 = 0x070
    public static let sTLBGSTATUS: UInt64 = 0x074
    /// SMMU_SMRn (§10.6.17) and SMMU_S2CRn (§10.6.18), 4 bytes apart.
    public static let smrBase: UInt64 = 0x800
    public static let s2crBase: UInt64 = 0xC00

    // MARK: Global register space 1 (§10.7, Table 10-5)
    /// SMMU_CBARn (§10.7.1), SMMU_CBFRSYNRAn (§10.7.2), SMMU_CBA2Rn (§10.7.3).
    public static let cbarBase: UInt64 = 0x000
    public static let cbfrsynraBase: UInt64 = 0x400
    public static let cba2rBase: UInt64 = 0x800

    // MARK: Translation context bank (§10.8, Table 10-6; chapter 14)
    public static let cbSCTLR: UInt64 = 0x000
    public static let cbACTLR: UInt64 = 0x004
    public static let cbRESUME: UInt64 = 0x008
    public static let cbTCR2: UInt64 = 0x010
    public static let cbTTBR0: UInt64 = 0x020
    public static let cbTTBR1: UInt64 = 0x028
    public static let cbTCR: UInt64 = 0x030
    public static let cbCONTEXTIDR: UInt64 = 0x034
    public static let cbMAIR0: UInt64 = 0x038
    public static let cbMAIR1: UInt64 = 0x03C
    public static let cbPAR: UInt64 = 0x050
    public static let cbFSR: UInt64 = 0x058
    public static let cbFSRRESTORE: UInt64 = 0x05C
    public static let cbFAR: UInt64 = 0x060
    public static let cbFSYNR0: UInt64 = 0x068
    public static let cbFSYNR1: UInt64 = 0x06C
    /// SMMU_CBn_TLBIVA, TLBIVAA, TLBIASID, TLBIALL, TLBIVAL, TLBIVAAL (§14.6, 64-bit VA forms).
    public static let cbTLBIVA: UInt64 = 0x600
    public static let cbTLBIVAA: UInt64 = 0x608
    public static let cbTLBIASID: UInt64 = 0x610
    public static let cbTLBIALL: UInt64 = 0x618
    public static let cbTLBIVAL: UInt64 = 0x620
    public static let cbTLBIVAAL: UInt64 = 0x628
    /// SMMU_CBn_TLBIIPAS2 / TLBIIPAS2L (stage-2 contexts, §14.6.8-9).
    public static let cbTLBIIPAS2: UInt64 = 0x630
    public static let cbTLBIIPAS2L: UInt64 = 0x638
    public static let cbTLBSYNC: UInt64 = 0x7F0
    public static let cbTLBSTATUS: UInt64 = 0x7F4
}

/// Field positions the model decodes (same sections as `SMMUv2Register`).
public enum SMMUv2Field {
    // SMMU_sCR0 (§10.6.1).
    public static let sCR0ClientPD = 0
    public static let sCR0GFRE = 1
    public static let sCR0GFIE = 2
    public static let sCR0USFCFG = 10
    public static let sCR0SMCFCFG = 21
    /// The writable sCR0 bits of a non-secure-only SMMU without extended StreamIDs: CLIENTPD,
    /// GFRE, GFIE, GCFGFRE, GCFGFIE, STALLD(8), GSE(9), USFCFG, VMIDPNE(11), PTM(12), FB(13),
    /// BSU[15:14], MemAttr[19:16], MTCFG(20), SMCFCFG(21), SHCFG[23:22], RACFG[25:24],
    /// WACFG[27:26], NSCFG[29:28], VMID16EN(31) when IDR2.VMID16S.
    public static let sCR0Writable: UInt32 = 0xBFFF_FF37

    // SMMU_sGFSR (§10.6.6).
    public static let gfsrICF: UInt32 = 1 << 0
    public static let gfsrUSF: UInt32 = 1 << 1
    public static let gfsrSMCF: UInt32 = 1 << 2
    public static let gfsrUCBF: UInt32 = 1 << 3
    public static let gfsrMULTI: UInt32 = 1 << 31
    public static let gfsrFaults: UInt32 = 0x1FF

    // SMMU_S2CRn.TYPE (§10.6.18).
    public static let s2crTypeTranslate: UInt32 = 0
    public static let s2crTypeBypass: UInt32 = 1
    public static let s2crTypeFault: UInt32 = 2

    // SMMU_CBARn.TYPE (§10.7.1).
    public static let cbarTypeS2: UInt32 = 0
    public static let cbarTypeS1BypassS2: UInt32 = 1
    public static let cbarTypeS1FaultS2: UInt32 = 2
    public static let cbarTypeS1TransS2: UInt32 = 3

    // SMMU_CBn_SCTLR (§14.3.x).
    public static let sctlrM = 0
    public static let sctlrCFRE = 5
    public static let sctlrCFIE = 6

    // SMMU_CBn_FSR (§14.4.x).
    public static let fsrTF: UInt32 = 1 << 1
    public static let fsrAFF: UInt32 = 1 << 2
    public static let fsrPF: UInt32 = 1 << 3
    public static let fsrEF: UInt32 = 1 << 4
    public static let fsrASF: UInt32 = 1 << 7
    public static let fsrMULTI: UInt32 = 1 << 31
    public static let fsrFaults: UInt32 = 0x1FE | (1 << 30)
}
