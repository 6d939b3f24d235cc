import Bus

/// Why a command could not be consumed (§4.1.3, §7.1). Each maps to the CMDQ_CONS.ERR code the
/// SMMU reports.
public enum CommandError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A Reserved or IMPLEMENTATION DEFINED opcode this model does not define: CERROR_ILL.
    case reservedOpcode(UInt8)
    /// A defined opcode with ILLEGAL parameters, or a command irrelevant to this implementation
    /// (a stage it lacks, a Secure-only command): CERROR_ILL.
    case illegal(opcode: UInt8, reason: String)
    /// The command fetch returned an external abort: CERROR_ABT.
    case fetchAbort(PhysicalAddress)

    /// The CMDQ_CONS.ERR code.
    public var code: CommandErrorCode {
        switch self {
        case .reservedOpcode, .illegal: .illegal
        case .fetchAbort: .abort
        }
    }

    public var description: String {
        switch self {
        case .reservedOpcode(let op):
            "\(code): reserved opcode \(Hex.format(UInt64(op), minDigits: 2))"
        case .illegal(let op, let reason):
            "\(code): \(CommandOpcode(rawValue: op)?.description ?? Hex.format(UInt64(op), minDigits: 2)): \(reason)"
        case .fetchAbort(let address):
            "\(code): command fetch at \(address) aborted"
        }
    }
}

extension Command {
    /// The CERROR_ILL a command raises on an SMMU with `configuration`, or nil if it is legal.
    ///
    /// - Stage-1 commands (TLBI_NH_*, CFGI_CD, CFGI_CD_ALL) need IDR0.S1P (§4.4.2, §4.3.3–4).
    /// - Stage-2 commands (TLBI_S12_VMALL, TLBI_S2_IPA) need IDR0.S2P (§4.4.3.1–2).
    /// - TLBI_EL2_* need IDR0.HYP (§4.4.2.7–10).
    /// - CMD_RESUME / CMD_STALL_TERM are ILL when STALL_MODEL = 0b01 terminate-only (§4.7.1–2).
    /// - CMD_ATC_INV is ILLEGAL with IDR0.ATS = 0 (§4.5.1) and CMD_PRI_RESP with IDR0.PRI = 0
    ///   (§4.5.2); PRI is never advertised, ATS only by `SMMUConfiguration.ats` (no ATCs are
    ///   modelled, so a legal CMD_ATC_INV invalidates nothing).
    /// - Secure-only and EL3 commands on the Non-secure queue; CFGI_VMS_PIDM without MPAM;
    ///   DPTI_* without DPT (§4.3.5, §7.1).
    /// - Range TLBI with IDR3.RIL = 1: TG ≠ 0 with NUM = SCALE = TTL = 0 is Reserved, and
    ///   TG = 16K with TTL = 0b01 is ILL when IDR5.DS = 0 (§4.4.1.1). With RIL = 0 the range
    ///   fields are RES0 and ignored.
    public func illegality(on configuration: SMMUConfiguration) -> String? {
        switch self {
        case .tlbiNHAll, .tlbiNHASID, .tlbiNHVA, .tlbiNHVAA, .cfgiCD, .cfgiCDAll:
            if !configuration.stage1 { return "\(opcode) needs stage 1 (IDR0.S1P=0)" }
        case .tlbiS12VMAll, .tlbiS2IPA:
            if !configuration.stage2 { return "\(opcode) needs stage 2 (IDR0.S2P=0)" }
        case .tlbiEL2All, .tlbiEL2ASID, .tlbiEL2VA, .tlbiEL2VAA:
            if !configuration.hyp { return "\(opcode) needs IDR0.HYP=1" }
        case .resume, .stallTerminate:
            if configuration.stallModel == .terminateOnly { return "\(opcode) on a terminate-only SMMU (IDR0.STALL_MODEL=0b01)" }
        case .atcInvalidate:
            if !configuration.ats { return "CMD_ATC_INV without ATS (IDR0.ATS=0)" }
        case .priResponse:
            return "CMD_PRI_RESP without PRI (IDR0.PRI=0)"
        case .secureOnly(let op, _, _):
            return "\(op) is only valid on the Secure Command queue"
        case .unimplementedFeature(let op, _, _):
            return op == .cfgiVMSPartIDMap ? "CMD_CFGI_VMS_PIDM without MPAM (IDR3.MPAM=0)" : "\(op) without DPT (IDR3.DPT=0)"
        case .prefetchConfig, .prefetchAddress, .cfgiSTE, .cfgiSTERange, .tlbiNSNHAll, .sync:
            break
        }
        if configuration.rangeInvalidation, let range = rangeFields, range.tg != 0 {
            if range.num == 0 && range.scale == 0 && range.ttl == 0 {
                return "\(opcode) with TG≠0 and NUM=SCALE=TTL=0 is Reserved (§4.4.1.1)"
            }
            if range.tg == 2 && range.ttl == 1 {
                return "\(opcode) with TG=16K and TTL=0b01 needs IDR5.DS=1 (§4.4.1.1)"
            }
        }
        return nil
    }

    /// The range fields of an address-based TLBI.
    var rangeFields: TLBIRangeFields? {
        switch self {
        case .tlbiNHVA(_, _, _, _, let r), .tlbiNHVAA(_, _, _, let r), .tlbiEL2VA(_, _, _, let r),
             .tlbiEL2VAA(_, _, let r), .tlbiS2IPA(_, _, _, let r): r
        default: nil
        }
    }

    /// The scope a legal configuration- or TLB-invalidation command hands to the translator, or
    /// nil for commands that invalidate nothing.
    ///
    /// - CFGI_STE_RANGE with Range = 31 is CFGI_ALL (§4.3.6).
    /// - TLBI_NH_* VMID is matched only when stage 2 is implemented; otherwise it is RES0 and the
    ///   model uses VMID 0, the tag of every stage-1 entry on a stage-1-only SMMU (§4.4.2).
    /// - TLBI_EL2_ASID/VA/VAA over-invalidate as TLBI_EL2_ALL: over-invalidation is permitted
    ///   (§4.4) and `Invalidation` has one EL2 scope.
    /// - Range fields are used only with IDR3.RIL = 1 (RES0 otherwise).
    public func invalidation(on configuration: SMMUConfiguration) -> Invalidation? {
        let ril = configuration.rangeInvalidation
        func s1VMID(_ vmid: VMID) -> VMID { configuration.stage2 ? vmid : VMID(0) }
        switch self {
        case .cfgiSTE(let sid, let leaf):
            return .streamTableEntry(sid, leaf: leaf)
        case .cfgiSTERange(let sid, let range):
            let r = Int(range & 0x1F)
            return r == 31 ? .configurationAll : .streamTableEntryRange(sid, range: r)
        case .cfgiCD(let sid, let ssid, let leaf):
            return .contextDescriptor(sid, ssid, leaf: leaf)
        case .cfgiCDAll(let sid):
            return .contextDescriptorAll(sid)
        case .tlbiNHAll(let vmid):
            return .nhAll(s1VMID(vmid))
        case .tlbiNHASID(let vmid, let asid):
            return .nhASID(s1VMID(vmid), asid)
        case .tlbiNHVA(let vmid, let asid, let address, let leaf, let range):
            return .nhVA(s1VMID(vmid), asid, address: address, leaf: leaf, range: ril ? range.range : nil)
        case .tlbiNHVAA(let vmid, let address, let leaf, let range):
            return .nhVAA(s1VMID(vmid), address: address, leaf: leaf, range: ril ? range.range : nil)
        case .tlbiEL2All, .tlbiEL2ASID, .tlbiEL2VA, .tlbiEL2VAA:
            return .el2All
        case .tlbiS12VMAll(let vmid):
            return .s12VMAll(vmid)
        case .tlbiS2IPA(let vmid, let ipa, let leaf, let range):
            return .s2IPA(vmid, ipa: ipa, leaf: leaf, range: ril ? range.range : nil)
        case .tlbiNSNHAll:
            return .nsnhAll
        case .prefetchConfig, .prefetchAddress, .atcInvalidate, .priResponse, .resume, .stallTerminate,
             .sync, .secureOnly, .unimplementedFeature:
            return nil
        }
    }
}
