import Bus

/// One 16-byte SMMUv3 command (§4), decoded into typed fields, and encodable back to its two
/// little-endian 64-bit words.
///
/// Field positions (dwN[hi:lo], N = 64-bit word): the common header is OPCODE dw0[7:0],
/// SSec dw0[10], SSV dw0[11], SubstreamID dw0[31:12], StreamID dw0[63:32] (§4.1.6; Linux
/// `CMDQ_0_OP`, `CMDQ_0_SSV`, `CMDQ_CFGI_0_*`; QEMU `CMD_SSEC`). TLBI: VMID dw0[47:32],
/// ASID dw0[63:48], NUM dw0[16:12], SCALE dw0[24:20], Leaf dw1[0], TTL dw1[9:8], TG dw1[11:10]
/// (§4.4.1.1 gives TTL [73:72] and TG [75:74], i.e. dw1[9:8] and dw1[11:10]), VA dw1[63:12],
/// IPA dw1[51:12] (§4.1.6: [55:12], bits 55:52 RES0 before v3.4). CFGI: Leaf dw1[0],
/// Range dw1[4:0]. CMD_SYNC: CS dw0[13:12], MSH dw0[23:22], MSIAttr dw0[27:24],
/// MSIData dw0[63:32], MSIAddress dw1[55:2] (§4.7.3; Linux `CMDQ_SYNC_*`). ATC_INV: Global
/// dw0[9], Size dw1[5:0], Addr dw1[63:12]; PRI_RESP: GRPID dw1[8:0], RESP dw1[13:12];
/// RESUME: Ac dw0[12], Ab dw0[13], STAG dw1[15:0] (Linux `CMDQ_ATC_*`, `CMDQ_PRI_*`,
/// `CMDQ_RESUME_*`; QEMU `CMD_RESUME_AC/AB`).
///
/// Reserved (RES0) fields are ignored, one of the two behaviours §4.1.5 allows, so decoding is
/// not injective: `decode(encode(c)) == c` holds for every command, `encode(decode(w)) == w`
/// only for words with zero reserved fields.
public enum Command: Hashable, Sendable {
    /// CMD_PREFETCH_CONFIG (§4.2.1): a hint; this model consumes it without effect.
    case prefetchConfig(StreamID, substream: SubstreamID?)
    /// CMD_PREFETCH_ADDR (§4.2.2): a hint, consumed without effect. Size dw1[4:0] and
    /// Stride dw1[9:5] are **not verified** (the spec's figure is missing from the transcription
    /// and Linux never issues this command); only the round trip depends on them.
    case prefetchAddress(StreamID, substream: SubstreamID?, address: UInt64, size: UInt8, stride: UInt8)
    /// CMD_CFGI_STE (§4.3.1).
    case cfgiSTE(StreamID, leaf: Bool)
    /// CMD_CFGI_STE_RANGE (§4.3.2): 2^(range+1) StreamIDs; range 31 is CMD_CFGI_ALL (§4.3.6).
    case cfgiSTERange(StreamID, range: UInt8)
    /// CMD_CFGI_CD (§4.3.3).
    case cfgiCD(StreamID, SubstreamID, leaf: Bool)
    /// CMD_CFGI_CD_ALL (§4.3.4).
    case cfgiCDAll(StreamID)
    /// CMD_TLBI_NH_ALL (§4.4.2.1).
    case tlbiNHAll(VMID)
    /// CMD_TLBI_NH_ASID (§4.4.2.2).
    case tlbiNHASID(VMID, ASID)
    /// CMD_TLBI_NH_VA (§4.4.2.4).
    case tlbiNHVA(VMID, ASID, address: UInt64, leaf: Bool, range: TLBIRangeFields)
    /// CMD_TLBI_NH_VAA (§4.4.2.3).
    case tlbiNHVAA(VMID, address: UInt64, leaf: Bool, range: TLBIRangeFields)
    /// CMD_TLBI_EL2_ALL (§4.4.2.7).
    case tlbiEL2All
    /// CMD_TLBI_EL2_ASID (§4.4.2.10).
    case tlbiEL2ASID(ASID)
    /// CMD_TLBI_EL2_VA (§4.4.2.8).
    case tlbiEL2VA(ASID, address: UInt64, leaf: Bool, range: TLBIRangeFields)
    /// CMD_TLBI_EL2_VAA (§4.4.2.9).
    case tlbiEL2VAA(address: UInt64, leaf: Bool, range: TLBIRangeFields)
    /// CMD_TLBI_S12_VMALL (§4.4.3.2).
    case tlbiS12VMAll(VMID)
    /// CMD_TLBI_S2_IPA (§4.4.3.1).
    case tlbiS2IPA(VMID, ipa: UInt64, leaf: Bool, range: TLBIRangeFields)
    /// CMD_TLBI_NSNH_ALL (§4.4.4.1).
    case tlbiNSNHAll
    /// CMD_ATC_INV (§4.5.1): address is Addr[63:12] in place, size is log2 of the span in 4 KiB
    /// pages (52 = everything).
    case atcInvalidate(StreamID, substream: SubstreamID?, global: Bool, address: UInt64, size: UInt8)
    /// CMD_PRI_RESP (§4.5.2): PRGIndex and Resp. Resp at dw1[13:12] follows Linux
    /// `CMDQ_PRI_1_RESP`; QEMU extracts bits [12:11] instead (not verified against the spec
    /// figure). The model never executes it (IDR0.PRI = 0 makes it ILLEGAL).
    case priResponse(StreamID, substream: SubstreamID?, group: UInt16, response: UInt8)
    /// CMD_RESUME (§4.7.1): Ac = retry, Ab = abort.
    case resume(StreamID, stag: UInt16, retry: Bool, abort: Bool)
    /// CMD_STALL_TERM (§4.7.2).
    case stallTerminate(StreamID)
    /// CMD_SYNC (§4.7.3).
    case sync(CommandSync)
    /// A command only a Secure (or EL3) Command queue may issue. Its fields are kept as the raw
    /// words: on the Non-secure queue it is CERROR_ILL whatever they hold.
    case secureOnly(CommandOpcode, UInt64, UInt64)
    /// A command for a feature this model does not implement (CMD_CFGI_VMS_PIDM needs MPAM and
    /// VMS; CMD_DPTI_* need DPT); CERROR_ILL (§4.3.5, §7.1). Raw words kept.
    case unimplementedFeature(CommandOpcode, UInt64, UInt64)

    /// The opcode this command encodes to.
    public var opcode: CommandOpcode {
        switch self {
        case .prefetchConfig: .prefetchConfig
        case .prefetchAddress: .prefetchAddress
        case .cfgiSTE: .cfgiSTE
        case .cfgiSTERange: .cfgiSTERange
        case .cfgiCD: .cfgiCD
        case .cfgiCDAll: .cfgiCDAll
        case .tlbiNHAll: .tlbiNHAll
        case .tlbiNHASID: .tlbiNHASID
        case .tlbiNHVA: .tlbiNHVA
        case .tlbiNHVAA: .tlbiNHVAA
        case .tlbiEL2All: .tlbiEL2All
        case .tlbiEL2ASID: .tlbiEL2ASID
        case .tlbiEL2VA: .tlbiEL2VA
        case .tlbiEL2VAA: .tlbiEL2VAA
        case .tlbiS12VMAll: .tlbiS12VMAll
        case .tlbiS2IPA: .tlbiS2IPA
        case .tlbiNSNHAll: .tlbiNSNHAll
        case .atcInvalidate: .atcInvalidate
        case .priResponse: .priResponse
        case .resume: .resume
        case .stallTerminate: .stallTerminate
        case .sync: .sync
        case .secureOnly(let op, _, _): op
        case .unimplementedFeature(let op, _, _): op
        }
    }

    /// CMD_CFGI_ALL is CMD_CFGI_STE_RANGE with Range = 31 (§4.3.6).
    public static func cfgiAll() -> Command { .cfgiSTERange(StreamID(0), range: 31) }

    // MARK: - Decoding

    /// Decodes one command from its two words. Errors are the configuration-independent
    /// CERROR_ILL cases: a Reserved or IMPLEMENTATION DEFINED opcode (§4.1.1), SSec = 1 on the
    /// Non-secure queue (§4.1.6), CMD_SYNC with CS = 0b11 (§4.7.3). Errors that depend on what
    /// the SMMU implements are `illegality(on:)`.
    public static func decode(_ w0: UInt64, _ w1: UInt64) -> Result<Command, CommandError> {
        let rawOpcode = UInt8(truncatingIfNeeded: w0)
        guard let opcode = CommandOpcode(rawValue: rawOpcode) else {
            return .failure(.reservedOpcode(rawOpcode))
        }
        if opcode.hasSSec && w0.bit(10) {
            return .failure(.illegal(opcode: rawOpcode, reason: "SSec=1 on the Non-secure Command queue (§4.1.6)"))
        }
        let sid = StreamID(UInt32(truncatingIfNeeded: w0.bits(63, 32)))
        let ssid = SubstreamID(UInt32(truncatingIfNeeded: w0.bits(31, 12)))
        let substream: SubstreamID? = w0.bit(11) ? ssid : nil
        let vmid = VMID(UInt16(truncatingIfNeeded: w0.bits(47, 32)))
        let asid = ASID(UInt16(truncatingIfNeeded: w0.bits(63, 48)))
        let leaf = w1.bit(0)
        let va = w1.keepingBits(63, 12)
        let range = TLBIRangeFields(w0: w0, w1: w1)
        switch opcode {
        case .prefetchConfig:
            return .success(.prefetchConfig(sid, substream: substream))
        case .prefetchAddress:
            return .success(.prefetchAddress(sid, substream: substream, address: va,
                                             size: UInt8(truncatingIfNeeded: w1.bits(4, 0)),
                                             stride: UInt8(truncatingIfNeeded: w1.bits(9, 5))))
        case .cfgiSTE:
            return .success(.cfgiSTE(sid, leaf: leaf))
        case .cfgiSTERange:
            return .success(.cfgiSTERange(sid, range: UInt8(truncatingIfNeeded: w1.bits(4, 0))))
        case .cfgiCD:
            return .success(.cfgiCD(sid, ssid, leaf: leaf))
        case .cfgiCDAll:
            return .success(.cfgiCDAll(sid))
        case .tlbiNHAll:
            return .success(.tlbiNHAll(vmid))
        case .tlbiNHASID:
            return .success(.tlbiNHASID(vmid, asid))
        case .tlbiNHVA:
            return .success(.tlbiNHVA(vmid, asid, address: va, leaf: leaf, range: range))
        case .tlbiNHVAA:
            return .success(.tlbiNHVAA(vmid, address: va, leaf: leaf, range: range))
        case .tlbiEL2All:
            return .success(.tlbiEL2All)
        case .tlbiEL2ASID:
            return .success(.tlbiEL2ASID(asid))
        case .tlbiEL2VA:
            return .success(.tlbiEL2VA(asid, address: va, leaf: leaf, range: range))
        case .tlbiEL2VAA:
            return .success(.tlbiEL2VAA(address: va, leaf: leaf, range: range))
        case .tlbiS12VMAll:
            return .success(.tlbiS12VMAll(vmid))
        case .tlbiS2IPA:
            return .success(.tlbiS2IPA(vmid, ipa: w1.keepingBits(51, 12), leaf: leaf, range: range))
        case .tlbiNSNHAll:
            return .success(.tlbiNSNHAll)
        case .atcInvalidate:
            return .success(.atcInvalidate(sid, substream: substream, global: w0.bit(9), address: va,
                                           size: UInt8(truncatingIfNeeded: w1.bits(5, 0))))
        case .priResponse:
            return .success(.priResponse(sid, substream: substream,
                                         group: UInt16(truncatingIfNeeded: w1.bits(8, 0)),
                                         response: UInt8(truncatingIfNeeded: w1.bits(13, 12))))
        case .resume:
            return .success(.resume(sid, stag: UInt16(truncatingIfNeeded: w1.bits(15, 0)),
                                    retry: w0.bit(12), abort: w0.bit(13)))
        case .stallTerminate:
            return .success(.stallTerminate(sid))
        case .sync:
            guard let signal = CommandSync.CompletionSignal(rawValue: UInt8(truncatingIfNeeded: w0.bits(13, 12))) else {
                return .failure(.illegal(opcode: rawOpcode, reason: "CMD_SYNC CS=0b11 is Reserved (§4.7.3)"))
            }
            return .success(.sync(CommandSync(
                completionSignal: signal,
                msiShareability: UInt8(truncatingIfNeeded: w0.bits(23, 22)),
                msiAttributes: UInt8(truncatingIfNeeded: w0.bits(27, 24)),
                msiData: UInt32(truncatingIfNeeded: w0.bits(63, 32)),
                msiAddress: w1.keepingBits(55, 2))))
        case .cfgiVMSPartIDMap, .dptiAll, .dptiPA:
            return .success(.unimplementedFeature(opcode, w0, w1))
        case .tlbiEL3All, .tlbiEL3VA, .tlbiSecureEL2All, .tlbiSecureEL2ASID, .tlbiSecureEL2VA,
             .tlbiSecureEL2VAA, .tlbiSecureS12VMAll, .tlbiSecureS2IPA, .tlbiSNHAll:
            return .success(.secureOnly(opcode, w0, w1))
        }
    }

    // MARK: - Encoding

    /// The two little-endian words of this command, reserved fields zero. Fields wider than
    /// their encoding are truncated to it.
    public func encode() -> (UInt64, UInt64) {
        var w0 = UInt64(opcode.rawValue)
        var w1: UInt64 = 0
        func header(_ sid: StreamID, _ substream: SubstreamID?) {
            w0 = w0.settingBits(63, 32, to: UInt64(sid.rawValue))
            if let substream {
                w0 = w0.settingBit(11, to: true).settingBits(31, 12, to: UInt64(substream.rawValue))
            }
        }
        func vmidASID(_ vmid: VMID?, _ asid: ASID?) {
            if let vmid { w0 = w0.settingBits(47, 32, to: UInt64(vmid.rawValue)) }
            if let asid { w0 = w0.settingBits(63, 48, to: UInt64(asid.rawValue)) }
        }
        func address(_ value: UInt64, leaf: Bool, range: TLBIRangeFields, high: Int = 63) {
            w1 = value.keepingBits(high, 12).settingBit(0, to: leaf)
            range.encode(into: &w0, &w1)
        }
        switch self {
        case .prefetchConfig(let sid, let substream):
            header(sid, substream)
        case .prefetchAddress(let sid, let substream, let addr, let size, let stride):
            header(sid, substream)
            w1 = addr.keepingBits(63, 12).settingBits(4, 0, to: UInt64(size)).settingBits(9, 5, to: UInt64(stride))
        case .cfgiSTE(let sid, let leaf):
            header(sid, nil)
            w1 = w1.settingBit(0, to: leaf)
        case .cfgiSTERange(let sid, let range):
            header(sid, nil)
            w1 = w1.settingBits(4, 0, to: UInt64(range))
        case .cfgiCD(let sid, let ssid, let leaf):
            header(sid, nil)
            w0 = w0.settingBits(31, 12, to: UInt64(ssid.rawValue))
            w1 = w1.settingBit(0, to: leaf)
        case .cfgiCDAll(let sid):
            header(sid, nil)
        case .tlbiNHAll(let vmid):
            vmidASID(vmid, nil)
        case .tlbiNHASID(let vmid, let asid):
            vmidASID(vmid, asid)
        case .tlbiNHVA(let vmid, let asid, let addr, let leaf, let range):
            vmidASID(vmid, asid)
            address(addr, leaf: leaf, range: range)
        case .tlbiNHVAA(let vmid, let addr, let leaf, let range):
            vmidASID(vmid, nil)
            address(addr, leaf: leaf, range: range)
        case .tlbiEL2All, .tlbiNSNHAll:
            break
        case .tlbiEL2ASID(let asid):
            vmidASID(nil, asid)
        case .tlbiEL2VA(let asid, let addr, let leaf, let range):
            vmidASID(nil, asid)
            address(addr, leaf: leaf, range: range)
        case .tlbiEL2VAA(let addr, let leaf, let range):
            address(addr, leaf: leaf, range: range)
        case .tlbiS12VMAll(let vmid):
            vmidASID(vmid, nil)
        case .tlbiS2IPA(let vmid, let ipa, let leaf, let range):
            vmidASID(vmid, nil)
            address(ipa, leaf: leaf, range: range, high: 51)
        case .atcInvalidate(let sid, let substream, let global, let addr, let size):
            header(sid, substream)
            w0 = w0.settingBit(9, to: global)
            w1 = addr.keepingBits(63, 12).settingBits(5, 0, to: UInt64(size))
        case .priResponse(let sid, let substream, let group, let response):
            header(sid, substream)
            w1 = UInt64(0).settingBits(8, 0, to: UInt64(group)).settingBits(13, 12, to: UInt64(response))
        case .resume(let sid, let stag, let retry, let abort):
            header(sid, nil)
            w0 = w0.settingBit(12, to: retry).settingBit(13, to: abort)
            w1 = UInt64(stag)
        case .stallTerminate(let sid):
            header(sid, nil)
        case .sync(let sync):
            w0 = w0.settingBits(13, 12, to: UInt64(sync.completionSignal.rawValue))
                .settingBits(23, 22, to: UInt64(sync.msiShareability))
                .settingBits(27, 24, to: UInt64(sync.msiAttributes))
                .settingBits(63, 32, to: UInt64(sync.msiData))
            w1 = sync.msiAddress.keepingBits(55, 2)
        case .secureOnly(let op, let raw0, let raw1), .unimplementedFeature(let op, let raw0, let raw1):
            w0 = raw0.settingBits(7, 0, to: UInt64(op.rawValue))
            w1 = raw1
        }
        return (w0, w1)
    }
}

/// The parameters of CMD_SYNC (§4.7.3).
public struct CommandSync: Hashable, Sendable {
    /// ComplSignal (CS): how completion is signalled. 0b11 is Reserved (CERROR_ILL).
    public enum CompletionSignal: UInt8, Hashable, Sendable {
        /// SIG_NONE: software polls CMDQ_CONS.
        case none = 0
        /// SIG_IRQ: an MSI of MSIData to MSIAddress (if MSIs are supported and the address is
        /// non-zero) and a pulse on the CMD_SYNC wired interrupt.
        case interrupt = 1
        /// SIG_SEV: a WFE wake-up event (IDR0.SEV = 0 here, so equivalent to SIG_NONE).
        case sendEvent = 2
    }

    public var completionSignal: CompletionSignal
    /// MSH: shareability of the MSI write (0 NSH, 2 OSH, 3 ISH).
    public var msiShareability: UInt8
    /// MSIAttr: memory type of the MSI write, STE.MemAttr encoding.
    public var msiAttributes: UInt8
    public var msiData: UInt32
    /// MSIAddress[55:2] in place (bits 1:0 zero).
    public var msiAddress: UInt64

    public init(completionSignal: CompletionSignal, msiShareability: UInt8 = 0, msiAttributes: UInt8 = 0,
                msiData: UInt32 = 0, msiAddress: UInt64 = 0) {
        self.completionSignal = completionSignal
        self.msiShareability = msiShareability
        self.msiAttributes = msiAttributes
        self.msiData = msiData
        self.msiAddress = msiAddress
    }
}

/// The range and level-hint fields of an address-based TLBI, as encoded (§4.4.1.1):
/// NUM dw0[16:12], SCALE dw0[24:20] (5 bits: IDR5.DS = 0), TTL dw1[9:8], TG dw1[11:10].
/// TG = 0 means a non-range invalidation without a level hint.
public struct TLBIRangeFields: Hashable, Sendable {
    public var num: UInt8
    public var scale: UInt8
    public var ttl: UInt8
    public var tg: UInt8

    public init(num: UInt8 = 0, scale: UInt8 = 0, ttl: UInt8 = 0, tg: UInt8 = 0) {
        self.num = num
        self.scale = scale
        self.ttl = ttl
        self.tg = tg
    }

    /// No range, no level hint.
    public static let none = TLBIRangeFields()

    init(w0: UInt64, w1: UInt64) {
        num = UInt8(truncatingIfNeeded: w0.bits(16, 12))
        scale = UInt8(truncatingIfNeeded: w0.bits(24, 20))
        ttl = UInt8(truncatingIfNeeded: w1.bits(9, 8))
        tg = UInt8(truncatingIfNeeded: w1.bits(11, 10))
    }

    func encode(into w0: inout UInt64, _ w1: inout UInt64) {
        w0 = w0.settingBits(16, 12, to: UInt64(num)).settingBits(24, 20, to: UInt64(scale))
        w1 = w1.settingBits(9, 8, to: UInt64(ttl)).settingBits(11, 10, to: UInt64(tg))
    }

    /// The granule TG names: 0b01 4 KiB, 0b10 16 KiB, 0b11 64 KiB (§4.4.1.1); nil for 0b00.
    public var granule: Granule? {
        switch tg & 3 {
        case 1: .size4K
        case 2: .size16K
        case 3: .size64K
        default: nil
        }
    }

    /// The scope for `Invalidation`, or nil for a non-range TLBI (TG = 0).
    public var range: TLBIRange? {
        guard let granule else { return nil }
        return TLBIRange(num: Int(num & 0x1F), scale: Int(scale & 0x1F), granule: granule, ttl: Int(ttl & 3))
    }
}
