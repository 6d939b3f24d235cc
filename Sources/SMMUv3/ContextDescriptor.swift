import Bus

/// The rules that make a CD ILLEGAL (SMMUv3 §5.4.2 `CdIllegal`, docs/hardware.md §CD). A transaction
/// that translates through an ILLEGAL CD is aborted and C_BAD_CD is recorded. Rules for absent
/// features (VMSAv9-128, permission indirection, HAFT, Secure/Realm, EL3 StreamWorld) cannot
/// fire here and are not listed. Checks on TTB1/T1SZ/TG1 apply only when EPD1=0, and those on
/// TTB0 only when EPD0=0 (§5.4.1.1 "Validity checks are not performed on fields that are
/// disabled").
public enum CDIllegalRule: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case notValid
    case stallDisabledByStream
    case abortRequiredByTerminateModel
    case stallNotSupported
    case stallRequired
    case bigEndianNotSupported
    case aarch32NotSupported
    case aarch64NotSupported
    case hardwareAccessFlagNotSupported
    case hardwareDirtyNotSupported
    case asidTooWide
    case t0szOutOfRange
    case t1szOutOfRange
    case tg0NotSupported
    case ttb0OutOfRange
    case tg1NotSupported
    case ttb1OutOfRange

    public var description: String {
        switch self {
        case .notValid: "CD.V=0 (§5.4 V)"
        case .stallDisabledByStream: "CD.S=1 but STE.S1STALLD=1 (§5.5)"
        case .abortRequiredByTerminateModel: "CD.A=0 but SMMU_IDR0.TERM_MODEL=1 (§5.5)"
        case .stallNotSupported: "CD.S=1 but SMMU_IDR0.STALL_MODEL=0b01 terminate-only (§5.5)"
        case .stallRequired: "CD.S=0 but SMMU_IDR0.STALL_MODEL=0b10 stall forced (§5.5)"
        case .bigEndianNotSupported: "CD.ENDI=1 but SMMU_IDR0.TTENDIAN=0b10 little-endian only (§5.4 ENDI)"
        case .aarch32NotSupported: "CD.AA64=0 (VMSAv8-32 LPAE) but SMMU_IDR0.TTF[0]=0 (§5.4 AA64)"
        case .aarch64NotSupported: "CD.AA64=1 but SMMU_IDR0.TTF[1]=0 or stage 2 is VMSAv8-32 (§5.4 AA64)"
        case .hardwareAccessFlagNotSupported: "CD.HA/HD=1 but SMMU_IDR0.HTTU=0b00 (§5.4 HA)"
        case .hardwareDirtyNotSupported: "CD.HD=1 but SMMU_IDR0.HTTU=0b01 (access flag only) (§5.4 HD)"
        case .asidTooWide: "CD.ASID[15:8]≠0 but SMMU_IDR0.ASID16=0 (§5.4 ASID)"
        case .t0szOutOfRange: "CD.T0SZ outside [16, 39 (48/47 with STT)] with EPD0=0 (§5.4 T0SZ, CDTxSZInvalid)"
        case .t1szOutOfRange: "CD.T1SZ outside [16, 39 (48/47 with STT)] with EPD1=0 (§5.4 T1SZ, CDTxSZInvalid)"
        case .tg0NotSupported: "CD.TG0 reserved or not advertised in SMMU_IDR5 with EPD0=0 (§5.4 TG0)"
        case .ttb0OutOfRange: "CD.TTB0 beyond the effective IPS (or 48 bits for 4K/16K) (§5.4 TTB0)"
        case .tg1NotSupported: "CD.TG1 reserved or not advertised in SMMU_IDR5 with EPD1=0 (§5.4 TG1)"
        case .ttb1OutOfRange: "CD.TTB1 beyond the effective IPS (or 48 bits for 4K/16K) (§5.4 TTB1)"
        }
    }
}

/// Context Descriptor (SMMUv3 §5.4): eight little-endian 64-bit words describing one stage-1
/// address space (TCR-, TTBR- and MAIR-like fields, ASID, fault behaviour). Fields are computed
/// get/set properties, so the struct is both the decoder and the encoder.
public struct ContextDescriptor: EightWordStructure, Hashable, Sendable {
    public var dw0: UInt64 = 0, dw1: UInt64 = 0, dw2: UInt64 = 0, dw3: UInt64 = 0
    public var dw4: UInt64 = 0, dw5: UInt64 = 0, dw6: UInt64 = 0, dw7: UInt64 = 0

    public init() {}

    // MARK: dword 0 (TCR-like)

    public var t0sz: Int { get { Int(dw0.bits(5, 0)) } set { dw0 = dw0.settingBits(5, 0, to: UInt64(truncatingIfNeeded: newValue)) } }
    /// TG0 raw (0 4K, 1 64K, 2 16K, 3 reserved).
    public var tg0Field: UInt64 { get { dw0.bits(7, 6) } set { dw0 = dw0.settingBits(7, 6, to: newValue) } }
    public var tg0: Granule? { get { Granule(tg0: tg0Field) } set { tg0Field = newValue?.tg0 ?? 3 } }
    public var ir0: UInt64 { get { dw0.bits(9, 8) } set { dw0 = dw0.settingBits(9, 8, to: newValue) } }
    public var or0: UInt64 { get { dw0.bits(11, 10) } set { dw0 = dw0.settingBits(11, 10, to: newValue) } }
    public var sh0: UInt64 { get { dw0.bits(13, 12) } set { dw0 = dw0.settingBits(13, 12, to: newValue) } }
    public var epd0: Bool { get { dw0.bit(14) } set { dw0 = dw0.settingBit(14, to: newValue) } }
    public var endi: Bool { get { dw0.bit(15) } set { dw0 = dw0.settingBit(15, to: newValue) } }
    public var t1sz: Int { get { Int(dw0.bits(21, 16)) } set { dw0 = dw0.settingBits(21, 16, to: UInt64(truncatingIfNeeded: newValue)) } }
    /// TG1 raw (1 16K, 2 4K, 3 64K, 0 reserved — the TCR_EL1.TG1 encoding, unlike TG0).
    public var tg1Field: UInt64 { get { dw0.bits(23, 22) } set { dw0 = dw0.settingBits(23, 22, to: newValue) } }
    public var tg1: Granule? { get { Granule(tg1: tg1Field) } set { tg1Field = newValue?.tg1 ?? 0 } }
    public var epd1: Bool { get { dw0.bit(30) } set { dw0 = dw0.settingBit(30, to: newValue) } }
    /// V, bit 31.
    public var valid: Bool { get { dw0.bit(31) } set { dw0 = dw0.settingBit(31, to: newValue) } }
    /// IPS, bits [34:32] (OutputAddressSize encoding).
    public var ips: UInt64 { get { dw0.bits(34, 32) } set { dw0 = dw0.settingBits(34, 32, to: newValue) } }
    /// AFFD, bit 35: AF=0 does not fault.
    public var affd: Bool { get { dw0.bit(35) } set { dw0 = dw0.settingBit(35, to: newValue) } }
    public var wxn: Bool { get { dw0.bit(36) } set { dw0 = dw0.settingBit(36, to: newValue) } }
    public var uwxn: Bool { get { dw0.bit(37) } set { dw0 = dw0.settingBit(37, to: newValue) } }
    public var tbi0: Bool { get { dw0.bit(38) } set { dw0 = dw0.settingBit(38, to: newValue) } }
    public var tbi1: Bool { get { dw0.bit(39) } set { dw0 = dw0.settingBit(39, to: newValue) } }
    public var pan: Bool { get { dw0.bit(40) } set { dw0 = dw0.settingBit(40, to: newValue) } }
    /// AA64, bit 41: VMSAv8-64 tables.
    public var aa64: Bool { get { dw0.bit(41) } set { dw0 = dw0.settingBit(41, to: newValue) } }
    public var hd: Bool { get { dw0.bit(42) } set { dw0 = dw0.settingBit(42, to: newValue) } }
    public var ha: Bool { get { dw0.bit(43) } set { dw0 = dw0.settingBit(43, to: newValue) } }
    /// S (stall), R (record), A (abort), §5.5.
    public var stall: Bool { get { dw0.bit(44) } set { dw0 = dw0.settingBit(44, to: newValue) } }
    public var record: Bool { get { dw0.bit(45) } set { dw0 = dw0.settingBit(45, to: newValue) } }
    public var abort: Bool { get { dw0.bit(46) } set { dw0 = dw0.settingBit(46, to: newValue) } }
    public var aset: Bool { get { dw0.bit(47) } set { dw0 = dw0.settingBit(47, to: newValue) } }
    public var asid: ASID { get { ASID(UInt16(truncatingIfNeeded: dw0.bits(63, 48))) } set { dw0 = dw0.settingBits(63, 48, to: UInt64(newValue.rawValue)) } }

    // MARK: dwords 1–3

    public var nscfg0: Bool { get { dw1.bit(0) } set { dw1 = dw1.settingBit(0, to: newValue) } }
    /// HAD0, bit 65: hierarchical attribute disable (APTable/XNTable ignored) for TTB0.
    public var had0: Bool { get { dw1.bit(1) } set { dw1 = dw1.settingBit(1, to: newValue) } }
    /// TTB0, bits [119:68] = address [55:4].
    public var ttb0: UInt64 { get { dw1.keepingBits(55, 4) } set { dw1 = dw1.settingBits(55, 4, to: newValue >> 4) } }
    public var nscfg1: Bool { get { dw2.bit(0) } set { dw2 = dw2.settingBit(0, to: newValue) } }
    public var had1: Bool { get { dw2.bit(1) } set { dw2 = dw2.settingBit(1, to: newValue) } }
    /// TTB1, bits [183:132] = address [55:4].
    public var ttb1: UInt64 { get { dw2.keepingBits(55, 4) } set { dw2 = dw2.settingBits(55, 4, to: newValue >> 4) } }
    /// MAIR = {MAIR1, MAIR0}, bits [255:192]; indexed by the descriptor's AttrIndx.
    public var mair: UInt64 { get { dw3 } set { dw3 = newValue } }
}

/// Level 1 Stream Table Descriptor (SMMUv3 §5.1): Span [4:0], L2Ptr [55:6].
public struct LevelOneStreamTableDescriptor: Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(span: Int, l2Ptr: UInt64) {
        rawValue = UInt64(0).settingBits(4, 0, to: UInt64(truncatingIfNeeded: span)).settingBits(55, 6, to: l2Ptr >> 6)
    }
    /// Span: 0 invalid; 1–11: the L2 array holds 2^(Span−1) STEs; 12–31 reserved (as 0).
    public var span: Int { Int(rawValue.bits(4, 0)) }
    public var l2Ptr: UInt64 { rawValue.keepingBits(55, 6) }
    public var words: [UInt64] { [rawValue] }
}

/// Level 1 Context Descriptor (SMMUv3 §5.3): V [0], L2Ptr [55:12].
public struct LevelOneContextDescriptor: Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(valid: Bool, l2Ptr: UInt64) {
        rawValue = UInt64(0).settingBit(0, to: valid).settingBits(55, 12, to: l2Ptr >> 12)
    }
    public var valid: Bool { rawValue.bit(0) }
    public var l2Ptr: UInt64 { rawValue.keepingBits(55, 12) }
    public var words: [UInt64] { [rawValue] }
}
