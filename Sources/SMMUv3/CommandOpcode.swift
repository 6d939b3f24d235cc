/// SMMUv3 command opcodes (§4.1.1 "Command opcodes"). Every value not listed is Reserved and
/// raises CERROR_ILL; 0x80–0x8F are IMPLEMENTATION DEFINED and this model defines none of them,
/// so they raise CERROR_ILL too (§7.1: "Unknown command opcode").
public enum CommandOpcode: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case prefetchConfig = 0x01
    case prefetchAddress = 0x02
    case cfgiSTE = 0x03
    /// Also CMD_CFGI_ALL when Range = 31 (§4.3.6).
    case cfgiSTERange = 0x04
    case cfgiCD = 0x05
    case cfgiCDAll = 0x06
    case cfgiVMSPartIDMap = 0x07
    case tlbiNHAll = 0x10
    case tlbiNHASID = 0x11
    case tlbiNHVA = 0x12
    case tlbiNHVAA = 0x13
    case tlbiEL3All = 0x18
    case tlbiEL3VA = 0x1A
    case tlbiEL2All = 0x20
    case tlbiEL2ASID = 0x21
    case tlbiEL2VA = 0x22
    case tlbiEL2VAA = 0x23
    case tlbiS12VMAll = 0x28
    case tlbiS2IPA = 0x2A
    case tlbiNSNHAll = 0x30
    case atcInvalidate = 0x40
    case priResponse = 0x41
    case resume = 0x44
    case stallTerminate = 0x45
    case sync = 0x46
    case tlbiSecureEL2All = 0x50
    case tlbiSecureEL2ASID = 0x51
    case tlbiSecureEL2VA = 0x52
    case tlbiSecureEL2VAA = 0x53
    case tlbiSecureS12VMAll = 0x58
    case tlbiSecureS2IPA = 0x5A
    case tlbiSNHAll = 0x60
    case dptiAll = 0x70
    case dptiPA = 0x73

    /// The spec's command name.
    public var description: String {
        switch self {
        case .prefetchConfig: "CMD_PREFETCH_CONFIG"
        case .prefetchAddress: "CMD_PREFETCH_ADDR"
        case .cfgiSTE: "CMD_CFGI_STE"
        case .cfgiSTERange: "CMD_CFGI_STE_RANGE"
        case .cfgiCD: "CMD_CFGI_CD"
        case .cfgiCDAll: "CMD_CFGI_CD_ALL"
        case .cfgiVMSPartIDMap: "CMD_CFGI_VMS_PIDM"
        case .tlbiNHAll: "CMD_TLBI_NH_ALL"
        case .tlbiNHASID: "CMD_TLBI_NH_ASID"
        case .tlbiNHVA: "CMD_TLBI_NH_VA"
        case .tlbiNHVAA: "CMD_TLBI_NH_VAA"
        case .tlbiEL3All: "CMD_TLBI_EL3_ALL"
        case .tlbiEL3VA: "CMD_TLBI_EL3_VA"
        case .tlbiEL2All: "CMD_TLBI_EL2_ALL"
        case .tlbiEL2ASID: "CMD_TLBI_EL2_ASID"
        case .tlbiEL2VA: "CMD_TLBI_EL2_VA"
        case .tlbiEL2VAA: "CMD_TLBI_EL2_VAA"
        case .tlbiS12VMAll: "CMD_TLBI_S12_VMALL"
        case .tlbiS2IPA: "CMD_TLBI_S2_IPA"
        case .tlbiNSNHAll: "CMD_TLBI_NSNH_ALL"
        case .atcInvalidate: "CMD_ATC_INV"
        case .priResponse: "CMD_PRI_RESP"
        case .resume: "CMD_RESUME"
        case .stallTerminate: "CMD_STALL_TERM"
        case .sync: "CMD_SYNC"
        case .tlbiSecureEL2All: "CMD_TLBI_S_EL2_ALL"
        case .tlbiSecureEL2ASID: "CMD_TLBI_S_EL2_ASID"
        case .tlbiSecureEL2VA: "CMD_TLBI_S_EL2_VA"
        case .tlbiSecureEL2VAA: "CMD_TLBI_S_EL2_VAA"
        case .tlbiSecureS12VMAll: "CMD_TLBI_S_S12_VMALL"
        case .tlbiSecureS2IPA: "CMD_TLBI_S_S2_IPA"
        case .tlbiSNHAll: "CMD_TLBI_SNH_ALL"
        case .dptiAll: "CMD_DPTI_ALL"
        case .dptiPA: "CMD_DPTI_PA"
        }
    }

    /// Commands only the Secure (or, for EL3, only the Secure) Command queue may issue. On the
    /// Non-secure queue, the only one this model has, each raises CERROR_ILL (§4.4.2.5–6,
    /// §4.4.2.11–14, §4.4.3.3–4, §4.4.4.2).
    public var isSecureQueueOnly: Bool {
        switch self {
        case .tlbiEL3All, .tlbiEL3VA, .tlbiSecureEL2All, .tlbiSecureEL2ASID, .tlbiSecureEL2VA,
             .tlbiSecureEL2VAA, .tlbiSecureS12VMAll, .tlbiSecureS2IPA, .tlbiSNHAll: true
        default: false
        }
    }

    /// Commands whose §4 signature names an SSec parameter, at dw0[10] (QEMU `CMD_SSEC`). On the
    /// Non-secure queue SSec = 1 is ILLEGAL "regardless of whether Secure state is supported"
    /// (§4.1.6). CMD_ATC_INV and CMD_PRI_RESP are left out: they are CERROR_ILL here anyway
    /// (no ATS, no PRI).
    public var hasSSec: Bool {
        switch self {
        case .prefetchConfig, .prefetchAddress, .cfgiSTE, .cfgiSTERange, .cfgiCD, .cfgiCDAll,
             .cfgiVMSPartIDMap, .resume, .stallTerminate: true
        default: false
        }
    }
}
