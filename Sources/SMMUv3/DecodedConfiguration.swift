import Bus

extension SMMUConfiguration {
    /// OAS in bits (IDR5.OAS).
    public var oasBits: Int { outputAddressSize.bits }
    /// IAS (§3.4): max(40 if VMSAv8-32 LPAE supported, OAS if VMSAv8-64 supported). TTF is
    /// AArch64-only when `aarch64Tables`, AArch32-only otherwise.
    public var iasBits: Int { aarch64Tables ? oasBits : 40 }

    /// Effective output size of a CD.IPS / STE.S2PS field: min(field, OAS) (§5.4 IPS, §5.2 S2PS).
    func effectiveOutputBits(_ field: UInt64) -> Int {
        min(OutputAddressSize(field: field).bits, oasBits)
    }

    /// TxSZ limits for VMSAv8-64 without DS (§5.2 STES2T0SZInvalid, §5.4 CDTxSZInvalid):
    /// max 39, or 48 (4K/16K) / 47 (64K) with IDR3.STT.
    func maximumTxSZ(_ granule: Granule) -> Int {
        guard smallTranslationTables else { return 39 }
        return granule == .size64K ? 47 : 48
    }
}

/// The StreamWorld an STE selects (§5.2 STRW): NS-EL1, or EL2 when IDR0.HYP=1, Config=0b101 and
/// STRW=0b10 (E2H is not modelled: EL2 means non-E2H, one VA range, no ASID).
public enum StreamWorld: Hashable, Sendable { case el1, el2 }

/// A validated stage-2 configuration, decoded once per configuration-cache fill.
struct Stage2Configuration: Hashable, Sendable {
    var vmid: VMID
    var geometry: WalkGeometry
    /// STE.S2TTB aligned down to the start table size (§5.2 S2TTB "treated as zero").
    var ttb: UInt64
    /// eff_S2PS in bits.
    var outputBits: Int
    /// An AF=0 leaf does not fault (S2AFFD, or S2HA which sets AF instead).
    var accessFlagFaultDisabled: Bool
    var hardwareAccessFlag: Bool
    var hardwareDirty: Bool
    /// STE.S2R, or S2S (a stalled fault "is always reported", §5.5; stalls themselves are not
    /// modelled: the transaction is terminated).
    var record: Bool
    /// STE.S2PTW.
    var protectedTableWalk: Bool
}

/// A validated STE, decoded: what the configuration cache holds per StreamID.
struct StreamState: Hashable, Sendable {
    var ste: StreamTableEntry
    var config: StreamConfig
    var world: StreamWorld
    /// TLB VMID tag: STE.S2VMID whenever IDR0.S2P=1 and the world is NS-EL1 (§5.2 S2VMID, §3.17),
    /// else 0.
    var vmidTag: VMID
    var stage2: Stage2Configuration?
}

/// One stage-1 VA range (TTB0 or TTB1) of a CD.
struct Stage1Range: Hashable, Sendable {
    var disabled: Bool
    var geometry: WalkGeometry
    var ttb: UInt64
    var topByteIgnore: Bool
    var hierarchicalDisable: Bool
}

/// A validated CD, decoded.
struct Stage1Configuration: Hashable, Sendable {
    var cd: ContextDescriptor
    var asid: ASID
    var range0: Stage1Range
    var range1: Stage1Range
    /// Effective IPS in bits.
    var outputBits: Int
    var accessFlagFaultDisabled: Bool
    var hardwareAccessFlag: Bool
    var hardwareDirty: Bool
    var record: Bool
    var abortOnFault: Bool
    var wxn: Bool
    var pan: Bool
}

extension StreamTableEntry {
    /// The first ILLEGAL rule this STE breaks on `configuration`, in the order of §5.2.2
    /// `SteIllegal`, or nil if it is valid. Non-secure state only.
    public func illegalRule(on configuration: SMMUConfiguration) -> STEIllegalRule? {
        guard valid else { return .notValid }
        let config = self.config
        if config == .abort { return nil }
        if config.stage1Enabled && !configuration.stage1 { return .stage1NotImplemented }
        if config.stage2Enabled && !configuration.stage2 { return .stage2NotImplemented }
        // IgnoreSTESTRW: unused without S1P, without HYP (NS), with stage 2, or for bypass.
        let strwUsed = configuration.stage1 && configuration.hyp && config == .stage1
        if strwUsed && strw & 1 == 1 { return .reservedStreamWorld }
        if config.stage1Enabled {
            if s1StallDisable && configuration.stallModel != .stallAndTerminate { return .s1StallDisableNotConfigurable }
            let ssidBits = configuration.effectiveSubstreamIDBits
            if ssidBits != 0 && s1CDMax > ssidBits { return .s1CDMaxTooLarge }
            if ssidBits != 0 && s1CDMax != 0 && !configuration.twoLevelCDTable && (s1Fmt == 1 || s1Fmt == 2) {
                return .s1FmtTwoLevelWithoutCD2L
            }
            let limit = config.stage2Enabled ? configuration.iasBits : configuration.oasBits
            if s1ContextPtr >> UInt64(limit) != 0 { return .s1ContextPtrOutOfRange }
        }
        if config.stage2Enabled {
            if s2S && configuration.stallModel == .terminateOnly { return .s2StallNotSupported }
            if !s2S && configuration.stallModel == .stallForced { return .s2StallRequired }
            // TTF: AArch64-only (0b10) or AArch32-only (0b01). VMSAv8-32 LPAE walks are not
            // modelled, so an AArch32-only SMMU treats S2AA64=0 as unsupported too (documented
            // deviation; the default configuration is AArch64-only, as QEMU's).
            if !s2AA64 || !configuration.aarch64Tables { return .s2TableFormatNotSupported }
            if (s2HA || s2HD) && configuration.httu == .none { return .s2HardwareAccessFlagNotSupported }
            if s2HD && configuration.httu == .accessFlag { return .s2HardwareDirtyNotSupported }
            guard let granule = s2Granule, configuration.supports(granule) else { return .s2GranuleNotSupported }
            let psBits = configuration.effectiveOutputBits(s2PS)
            let ttbLimit = granule == .size64K ? psBits : min(psBits, 48)
            if s2TTB >> UInt64(ttbLimit) != 0 { return .s2TTBOutOfRange }
            let minimum = granule == .size64K ? max(12, 64 - configuration.iasBits) : max(16, 64 - configuration.iasBits)
            if s2T0SZ < minimum || s2T0SZ > configuration.maximumTxSZ(granule) { return .s2T0SZOutOfRange }
            guard let start = WalkGeometry.stage2StartLevel(granule: granule, sl0: s2SL0, physicalAddressBits: configuration.oasBits,
                                                            smallTables: configuration.smallTranslationTables),
                  WalkGeometry(granule: granule, inputSize: 64 - s2T0SZ, startLevel: start).isConsistentStage2
            else { return .s2StartLevelInconsistent }
            if s2ENDI { return .s2BigEndianNotSupported }
        }
        // IgnoreSTES2VMID: translation disabled, no S2P, bypass, or a non-EL1 StreamWorld.
        let vmidIgnored = config == .bypass || !configuration.stage2 || (strwUsed && strw != 0)
        if !vmidIgnored && !configuration.vmid16 && s2VMID.rawValue >> 8 != 0 { return .vmidTooWide }
        return nil
    }

    /// Decodes a valid STE (call only when `illegalRule(on:)` is nil).
    func decoded(on configuration: SMMUConfiguration) -> StreamState {
        let config = self.config
        let world: StreamWorld = (configuration.hyp && config == .stage1 && strw == 0b10) ? .el2 : .el1
        var stage2: Stage2Configuration?
        if config.stage2Enabled, let granule = s2Granule,
           let start = WalkGeometry.stage2StartLevel(granule: granule, sl0: s2SL0, physicalAddressBits: configuration.oasBits,
                                                     smallTables: configuration.smallTranslationTables) {
            let geometry = WalkGeometry(granule: granule, inputSize: 64 - s2T0SZ, startLevel: start)
            stage2 = Stage2Configuration(
                vmid: s2VMID, geometry: geometry,
                ttb: s2TTB & ~(max(geometry.startTableBytes, 16) &- 1),
                outputBits: configuration.effectiveOutputBits(s2PS),
                accessFlagFaultDisabled: s2AFFD || s2HA, hardwareAccessFlag: s2HA, hardwareDirty: s2HD,
                record: s2R || s2S, protectedTableWalk: s2PTW)
        }
        let vmidTag = configuration.stage2 && world == .el1 && config != .bypass && config != .abort ? s2VMID : VMID(0)
        return StreamState(ste: self, config: config, world: world, vmidTag: vmidTag, stage2: stage2)
    }
}

extension ContextDescriptor {
    /// The first ILLEGAL rule this CD breaks when reached through `ste`, in the order of §5.4.2
    /// `CdIllegal`, or nil.
    public func illegalRule(on configuration: SMMUConfiguration, ste: StreamTableEntry) -> CDIllegalRule? {
        guard valid else { return .notValid }
        let el2 = configuration.hyp && ste.config == .stage1 && ste.strw == 0b10
        let disabled0 = epd0
        // EffectiveCDEPD1: TTB1 does not exist in the (non-E2H) EL2 StreamWorld.
        let disabled1 = epd1 || el2
        if ste.s1StallDisable && stall { return .stallDisabledByStream }
        if configuration.terminateModel && !abort { return .abortRequiredByTerminateModel }
        if configuration.stallModel == .terminateOnly && stall { return .stallNotSupported }
        if configuration.stallModel == .stallForced && !stall { return .stallRequired }
        if (!disabled0 || !disabled1) && endi { return .bigEndianNotSupported }
        // TTF[0] (AArch32) is never advertised together with AArch64 here; an AArch32-only SMMU
        // has no VMSAv8-32 walker in this model, so AA64=0 is unsupported in both cases.
        if !aa64 { return .aarch32NotSupported }
        if !configuration.aarch64Tables || (ste.config.stage2Enabled && !ste.s2AA64) { return .aarch64NotSupported }
        if (ha || hd) && configuration.httu == .none { return .hardwareAccessFlagNotSupported }
        if hd && configuration.httu == .accessFlag { return .hardwareDirtyNotSupported }
        if !el2 && !configuration.asid16 && asid.rawValue >> 8 != 0 { return .asidTooWide }
        if !disabled0 && Self.txszInvalid(t0sz, granule: tg0, on: configuration) { return .t0szOutOfRange }
        if !disabled1 && Self.txszInvalid(t1sz, granule: tg1, on: configuration) { return .t1szOutOfRange }
        let ipsBits = configuration.effectiveOutputBits(ips)
        if !disabled0 {
            guard let granule = tg0, configuration.supports(granule) else { return .tg0NotSupported }
            if ttb0 >> UInt64(granule == .size64K ? ipsBits : min(ipsBits, 48)) != 0 { return .ttb0OutOfRange }
        }
        if !disabled1 {
            guard let granule = tg1, configuration.supports(granule) else { return .tg1NotSupported }
            if ttb1 >> UInt64(granule == .size64K ? ipsBits : min(ipsBits, 48)) != 0 { return .ttb1OutOfRange }
        }
        return nil
    }

    /// CDTxSZInvalid with IDR5.VAX=0 (48-bit VA): min 16, max 39 (48/47 with STT). The granule
    /// only matters for the STT maximum; a reserved TGx uses the 4K maximum here and is caught
    /// by the TGx rule that follows.
    private static func txszInvalid(_ txsz: Int, granule: Granule?, on configuration: SMMUConfiguration) -> Bool {
        txsz < 16 || txsz > configuration.maximumTxSZ(granule ?? .size4K)
    }

    /// Decodes a valid CD (call only when `illegalRule` is nil).
    func decoded(on configuration: SMMUConfiguration, world: StreamWorld) -> Stage1Configuration {
        func range(disabled: Bool, txsz: Int, granule: Granule?, ttb: UInt64, tbi: Bool, had: Bool) -> Stage1Range {
            let g = granule ?? .size4K
            let inputSize = min(max(64 - txsz, 16), 48)
            let geometry = WalkGeometry(granule: g, inputSize: inputSize,
                                        startLevel: WalkGeometry.stage1StartLevel(granule: g, inputSize: inputSize))
            return Stage1Range(disabled: disabled, geometry: geometry,
                               ttb: ttb & ~(max(geometry.startTableBytes, 16) &- 1),
                               topByteIgnore: tbi, hierarchicalDisable: had)
        }
        let el2 = world == .el2
        return Stage1Configuration(
            cd: self, asid: asid,
            range0: range(disabled: epd0, txsz: t0sz, granule: tg0, ttb: ttb0, tbi: tbi0, had: had0),
            range1: range(disabled: epd1 || el2, txsz: t1sz, granule: tg1, ttb: ttb1, tbi: tbi1, had: had1),
            outputBits: configuration.effectiveOutputBits(ips),
            accessFlagFaultDisabled: affd || ha, hardwareAccessFlag: ha, hardwareDirty: hd,
            record: record || stall, abortOnFault: abort || configuration.terminateModel, wxn: wxn, pan: pan)
    }
}
