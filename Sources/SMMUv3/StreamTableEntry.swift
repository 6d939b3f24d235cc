import Bus

/// STE.Config (SMMUv3 §5.2): what a stream's transactions go through.
public enum StreamConfig: UInt64, Hashable, Sendable, CaseIterable {
    /// 0b000 (and the reserved 0b0xx values, "behaves as 0b000"): abort, no event.
    case abort = 0b000
    case bypass = 0b100
    case stage1 = 0b101
    case stage2 = 0b110
    case nested = 0b111

    /// Decodes the 3-bit field; 0b001–0b011 are reserved and behave as abort (§5.2 Config).
    public init(field: UInt64) {
        self = StreamConfig(rawValue: field & 0b111) ?? .abort
    }

    public var stage1Enabled: Bool { self == .stage1 || self == .nested }
    public var stage2Enabled: Bool { self == .stage2 || self == .nested }
}

/// The rules that make an STE ILLEGAL (SMMUv3 §5.2.2 `SteIllegal`, docs/hardware.md §STE). A
/// transaction that selects an ILLEGAL STE is aborted and C_BAD_STE is recorded, exactly as
/// for V=0. Rules for features this SMMU does not implement (ATS/EATS, Secure and Realm state,
/// VMSAv9-128, S2PIE/S2POE, DPT, MPAM VMS, HAFT, FWB with AArch32) cannot fire here because the
/// features are absent (IDR0.ATS=0, no Secure programming interface, IDR5.D128=0, IDR3 bits 0),
/// so they are not listed: `SteIllegal` only evaluates them when the feature is present.
public enum STEIllegalRule: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case notValid
    case stage1NotImplemented
    case stage2NotImplemented
    case reservedStreamWorld
    case s1StallDisableNotConfigurable
    case s1CDMaxTooLarge
    case s1FmtTwoLevelWithoutCD2L
    case s1ContextPtrOutOfRange
    case s2StallNotSupported
    case s2StallRequired
    case s2TableFormatNotSupported
    case s2HardwareAccessFlagNotSupported
    case s2HardwareDirtyNotSupported
    case s2GranuleNotSupported
    case s2TTBOutOfRange
    case s2T0SZOutOfRange
    case s2StartLevelInconsistent
    case s2BigEndianNotSupported
    case vmidTooWide

    /// The rule in the spec's words, for `SMMUFault.reason`.
    public var description: String {
        switch self {
        case .notValid: "STE.V=0 (§5.2 V)"
        case .stage1NotImplemented: "STE.Config enables stage 1 but SMMU_IDR0.S1P=0 (§5.2 Config)"
        case .stage2NotImplemented: "STE.Config enables stage 2 but SMMU_IDR0.S2P=0 (§5.2 Config)"
        case .reservedStreamWorld: "STE.STRW is a reserved value (0bx1) while used (§5.2 STRW)"
        case .s1StallDisableNotConfigurable: "STE.S1STALLD=1 but SMMU_IDR0.STALL_MODEL≠0b00 (§5.2 S1STALLD)"
        case .s1CDMaxTooLarge: "STE.S1CDMax > SMMU_IDR1.SSIDSIZE (§5.2 S1CDMax)"
        case .s1FmtTwoLevelWithoutCD2L: "STE.S1Fmt selects a 2-level CD table but SMMU_IDR0.CD2L=0 (§5.2 S1Fmt)"
        case .s1ContextPtrOutOfRange: "STE.S1ContextPtr beyond the OAS (PA) or IAS (IPA) (§5.2 S1ContextPtr, §3.4.3)"
        case .s2StallNotSupported: "STE.S2S=1 but SMMU_IDR0.STALL_MODEL=0b01 terminate-only (§5.5)"
        case .s2StallRequired: "STE.S2S=0 but SMMU_IDR0.STALL_MODEL=0b10 stall forced (§5.5)"
        case .s2TableFormatNotSupported: "STE.S2AA64 selects a table format SMMU_IDR0.TTF does not support (§5.2 S2AA64)"
        case .s2HardwareAccessFlagNotSupported: "STE.S2HA/S2HD=1 but SMMU_IDR0.HTTU=0b00 (§5.2 S2HA)"
        case .s2HardwareDirtyNotSupported: "STE.S2HD=1 but SMMU_IDR0.HTTU=0b01 (access flag only) (§5.2 S2HA)"
        case .s2GranuleNotSupported: "STE.S2TG is reserved or a granule SMMU_IDR5 does not advertise (§5.2 S2TG)"
        case .s2TTBOutOfRange: "STE.S2TTB beyond the effective S2PS (or 48 bits for a 4K/16K granule) (§5.2 S2TTB)"
        case .s2T0SZOutOfRange: "STE.S2T0SZ outside [max(16, 64−IAS), 39 (48/47 with STT)] (§5.2 S2T0SZ)"
        case .s2StartLevelInconsistent: "STE.S2SL0 invalid or inconsistent with S2T0SZ/S2TG (more than 16 concatenated tables, or none resolvable) (§5.2 S2SL0, AArch64.S2InconsistentSL)"
        case .s2BigEndianNotSupported: "STE.S2ENDI=1 but SMMU_IDR0.TTENDIAN=0b10 little-endian only (§5.2 S2ENDI)"
        case .vmidTooWide: "STE.S2VMID[15:8]≠0 but SMMU_IDR0.VMID16=0 (§5.2 S2VMID)"
        }
    }
}

/// Stream Table Entry (SMMUv3 §5.2): eight little-endian 64-bit words. Every field is a
/// computed property over the words (get and set), so the same struct decodes what the SMMU
/// fetched and builds what software writes (the encoder for tests and the Linux model).
///
/// Field positions: spec §5.2 (docs/hardware.md §STE); dword/bit = spec bit / 64, % 64.
public struct StreamTableEntry: EightWordStructure, Hashable, Sendable {
    public var dw0: UInt64 = 0, dw1: UInt64 = 0, dw2: UInt64 = 0, dw3: UInt64 = 0
    public var dw4: UInt64 = 0, dw5: UInt64 = 0, dw6: UInt64 = 0, dw7: UInt64 = 0

    public init() {}

    /// Word `i` (0…7); out-of-range indices read as zero and ignore writes.
    public subscript(word i: Int) -> UInt64 {
        get {
            switch i {
            case 0: dw0
            case 1: dw1
            case 2: dw2
            case 3: dw3
            case 4: dw4
            case 5: dw5
            case 6: dw6
            case 7: dw7
            default: 0
            }
        }
        set {
            switch i {
            case 0: dw0 = newValue
            case 1: dw1 = newValue
            case 2: dw2 = newValue
            case 3: dw3 = newValue
            case 4: dw4 = newValue
            case 5: dw5 = newValue
            case 6: dw6 = newValue
            case 7: dw7 = newValue
            default: break
            }
        }
    }

    // MARK: dword 0

    /// V, bit 0.
    public var valid: Bool { get { dw0.bit(0) } set { dw0 = dw0.settingBit(0, to: newValue) } }
    /// Config, bits [3:1] (raw).
    public var configField: UInt64 { get { dw0.bits(3, 1) } set { dw0 = dw0.settingBits(3, 1, to: newValue) } }
    /// Config, decoded.
    public var config: StreamConfig { get { StreamConfig(field: configField) } set { configField = newValue.rawValue } }
    /// S1Fmt, bits [5:4]: 0 linear, 1 2-level 4K leaves, 2 2-level 64K leaves, 3 reserved (as 0).
    public var s1Fmt: UInt64 { get { dw0.bits(5, 4) } set { dw0 = dw0.settingBits(5, 4, to: newValue) } }
    /// S1ContextPtr, bits [55:6] (address, low 6 bits zero).
    public var s1ContextPtr: UInt64 { get { dw0.keepingBits(55, 6) } set { dw0 = dw0.settingBits(55, 6, to: newValue >> 6) } }
    /// S1CDMax, bits [63:59]: log2 of the number of CDs.
    public var s1CDMax: Int { get { Int(dw0.bits(63, 59)) } set { dw0 = dw0.settingBits(63, 59, to: UInt64(truncatingIfNeeded: newValue)) } }

    // MARK: dword 1

    /// S1DSS, bits [65:64]: 0 terminate, 1 bypass stage 1, 2 use substream 0, 3 reserved (as 0).
    public var s1DSS: UInt64 { get { dw1.bits(1, 0) } set { dw1 = dw1.settingBits(1, 0, to: newValue) } }
    /// S1CIR [67:66], S1COR [69:68], S1CSH [71:70]: CD fetch attributes (not modelled beyond storage).
    public var s1CIR: UInt64 { get { dw1.bits(3, 2) } set { dw1 = dw1.settingBits(3, 2, to: newValue) } }
    public var s1COR: UInt64 { get { dw1.bits(5, 4) } set { dw1 = dw1.settingBits(5, 4, to: newValue) } }
    public var s1CSH: UInt64 { get { dw1.bits(7, 6) } set { dw1 = dw1.settingBits(7, 6, to: newValue) } }
    /// MEV, bit 83.
    public var mev: Bool { get { dw1.bit(19) } set { dw1 = dw1.settingBit(19, to: newValue) } }
    /// S2FWB, bit 89.
    public var s2FWB: Bool { get { dw1.bit(25) } set { dw1 = dw1.settingBit(25, to: newValue) } }
    /// S1STALLD, bit 91.
    public var s1StallDisable: Bool { get { dw1.bit(27) } set { dw1 = dw1.settingBit(27, to: newValue) } }
    /// EATS, bits [93:92] (IGNORED: IDR0.ATS=0).
    public var eats: UInt64 { get { dw1.bits(29, 28) } set { dw1 = dw1.settingBits(29, 28, to: newValue) } }
    /// STRW, bits [95:94]: 0 NS-EL1, 2 EL2 (used only with IDR0.HYP=1 and Config=0b101).
    public var strw: UInt64 { get { dw1.bits(31, 30) } set { dw1 = dw1.settingBits(31, 30, to: newValue) } }
    /// SHCFG, bits [109:108] (Linux sets 1, "use incoming").
    public var shcfg: UInt64 { get { dw1.bits(45, 44) } set { dw1 = dw1.settingBits(45, 44, to: newValue) } }

    // MARK: dword 2

    /// S2VMID, bits [143:128].
    public var s2VMID: VMID { get { VMID(UInt16(truncatingIfNeeded: dw2.bits(15, 0))) } set { dw2 = dw2.settingBits(15, 0, to: UInt64(newValue.rawValue)) } }
    /// S2T0SZ, bits [165:160].
    public var s2T0SZ: Int { get { Int(dw2.bits(37, 32)) } set { dw2 = dw2.settingBits(37, 32, to: UInt64(truncatingIfNeeded: newValue)) } }
    /// S2SL0, bits [167:166].
    public var s2SL0: Int { get { Int(dw2.bits(39, 38)) } set { dw2 = dw2.settingBits(39, 38, to: UInt64(truncatingIfNeeded: newValue)) } }
    /// S2IR0 [169:168], S2OR0 [171:170], S2SH0 [173:172].
    public var s2IR0: UInt64 { get { dw2.bits(41, 40) } set { dw2 = dw2.settingBits(41, 40, to: newValue) } }
    public var s2OR0: UInt64 { get { dw2.bits(43, 42) } set { dw2 = dw2.settingBits(43, 42, to: newValue) } }
    public var s2SH0: UInt64 { get { dw2.bits(45, 44) } set { dw2 = dw2.settingBits(45, 44, to: newValue) } }
    /// S2TG, bits [175:174] (raw; 0 4K, 1 64K, 2 16K, 3 reserved).
    public var s2TGField: UInt64 { get { dw2.bits(47, 46) } set { dw2 = dw2.settingBits(47, 46, to: newValue) } }
    /// S2TG decoded; nil for the reserved value.
    public var s2Granule: Granule? { get { Granule(tg0: s2TGField) } set { s2TGField = newValue?.tg0 ?? 3 } }
    /// S2PS, bits [178:176].
    public var s2PS: UInt64 { get { dw2.bits(50, 48) } set { dw2 = dw2.settingBits(50, 48, to: newValue) } }
    /// S2AA64, bit 179.
    public var s2AA64: Bool { get { dw2.bit(51) } set { dw2 = dw2.settingBit(51, to: newValue) } }
    /// S2ENDI, bit 180.
    public var s2ENDI: Bool { get { dw2.bit(52) } set { dw2 = dw2.settingBit(52, to: newValue) } }
    /// S2AFFD, bit 181.
    public var s2AFFD: Bool { get { dw2.bit(53) } set { dw2 = dw2.settingBit(53, to: newValue) } }
    /// S2PTW, bit 182.
    public var s2PTW: Bool { get { dw2.bit(54) } set { dw2 = dw2.settingBit(54, to: newValue) } }
    /// S2HD, bit 183.
    public var s2HD: Bool { get { dw2.bit(55) } set { dw2 = dw2.settingBit(55, to: newValue) } }
    /// S2HA, bit 184.
    public var s2HA: Bool { get { dw2.bit(56) } set { dw2 = dw2.settingBit(56, to: newValue) } }
    /// S2S, bit 185.
    public var s2S: Bool { get { dw2.bit(57) } set { dw2 = dw2.settingBit(57, to: newValue) } }
    /// S2R, bit 186.
    public var s2R: Bool { get { dw2.bit(58) } set { dw2 = dw2.settingBit(58, to: newValue) } }

    // MARK: dword 3

    /// S2TTB, bits [247:196] = address bits [55:4] (v3.1+: [51:4] with [55:52] RES0; the model
    /// keeps all of [55:4] so an out-of-range value is seen and judged ILLEGAL).
    public var s2TTB: UInt64 { get { dw3.keepingBits(55, 4) } set { dw3 = dw3.settingBits(55, 4, to: newValue >> 4) } }
}

extension StreamTableEntry {
    /// Bypass (Config=0b100).
    public static var bypass: StreamTableEntry {
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .bypass
        return ste
    }

    /// Abort (V=1, Config=0b000): aborted without an event.
    public static var abort: StreamTableEntry {
        var ste = StreamTableEntry()
        ste.valid = true
        ste.config = .abort
        return ste
    }
}
