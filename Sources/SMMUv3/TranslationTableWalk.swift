import Bus

/// The outcome of one stage's walk.
struct StageWalkResult {
    /// The full output address for the input (page/block base | offset).
    var output: UInt64
    /// log2 of the page or block size.
    var pageShift: Int
    /// `StagePermissions` bits.
    var permissions: UInt8
    var level: Int
    var descriptor: UInt64
    /// Where the leaf descriptor was read (PA).
    var descriptorAddress: UInt64
    /// nG=0 (stage 1 only).
    var global: Bool
    var stage: Int

    /// The leaf's permission fields in words, for fault reasons (fault path only).
    var permissionText: String {
        if stage == 2 {
            return "S2AP=\(descriptor.bits(7, 6)) XN=\(descriptor.bit(54) ? 1 : 0)"
        }
        return "AP[2:1]=\(descriptor.bits(7, 6)) PXN=\(descriptor.bit(53) ? 1 : 0) UXN=\(descriptor.bit(54) ? 1 : 0)"
    }
}

/// VMSAv8-64 translation table walks (Arm ARM D8.2–D8.4; docs/hardware.md §Translation table walks) at stage 1 and
/// stage 2, with the nested rule that every stage-1 table address is an IPA translated by a
/// full stage-2 walk before it is read (SMMUv3 §3.3, Arm ARM "stage 2 translation of stage 1
/// table walks").
///
/// Fault order, per level as the Arm ARM walk pseudocode: Translation (input range, invalid
/// or reserved descriptor, block at a level that has none), Address size (next table or output
/// beyond the effective IPS/S2PS), then at the leaf Access flag, then Permission. External
/// aborts on descriptor reads are F_WALK_EABT with FetchAddr.
///
/// Supported: 4K/16K/64K granules; every TxSZ the configuration allows; 48-bit output
/// addresses from descriptor bits [47:n]; for the 64K granule with a 52-bit OAS (FEAT_LPA),
/// OA[51:48] from descriptor bits [15:12] and level-1 (4 TiB) blocks. Not modelled: FEAT_LPA2
/// (DS=1), the contiguous hint (entries are cached per page), S2FWB attribute rules, and
/// stage-1 attribute/shareability output (attributes do not change where a transaction goes).
/// HTTU: with CD.HA/STE.S2HA the walker sets AF in memory instead of faulting; with HD it
/// clears AP[2] (stage 1) or sets S2AP[1] (stage 2) on a write to a DBM=1 page.
extension SMMUTranslator {
    /// Output address held by a table, block or page descriptor whose address field starts at
    /// bit `shift`.
    @inline(__always)
    func descriptorOutput(_ descriptor: UInt64, shift: Int, granule: Granule) -> UInt64 {
        var address = descriptor.keepingBits(47, shift)
        if granule == .size64K && configuration.oasBits == 52 {
            address |= descriptor.bits(15, 12) &<< 48
        }
        return address
    }

    // MARK: Stage 2

    /// Translates `ipa` through stage 2. `purpose` is the CLASS a fault reports: .cd for a CD or
    /// L1CD address, .translationTable for a stage-1 table address, .input for the final IPA.
    func stage2Walk(_ ipa: UInt64, _ s2: Stage2Configuration, purpose: FaultClass, write: Bool, instruction: Bool,
                    _ context: TransactionContext) throws(TranslationStop) -> StageWalkResult {
        var context = context
        context.stage2Record = s2.record
        let geometry = s2.geometry
        let granule = geometry.granule
        if geometry.inputSize < 64 && ipa >> UInt64(geometry.inputSize) != 0 {
            throw fault(.fTranslation, context, stage2: true, faultClass: purpose, ipa: ipa,
                        reason: "IPA \(Hex.format(ipa)) beyond the \(geometry.inputSize)-bit stage-2 input range (S2T0SZ=\(64 - geometry.inputSize))")
        }
        var table = s2.ttb
        var level = geometry.startLevel
        while true {
            let index = geometry.index(of: ipa, at: level)
            let address = table &+ index &* 8
            let descriptor: UInt64
            do { descriptor = try readTable(address) } catch {
                throw fault(.fWalkEABT, context, stage2: true, faultClass: purpose, ipa: ipa, fetchAddress: address,
                            level: level, invalid: false, reason: "S2 L\(level) descriptor read at \(Hex.format(address)) aborted: \(error)")
            }
            counters.stage2DescriptorReads &+= 1
            journal?.append(.walkRead(stage: 2, level: level, address: address, descriptor: descriptor))
            if descriptor & 1 == 0 {
                if let trace { trace.append(.smmu, "S2 L\(level) descriptor", address: address, value: descriptor, "invalid (IPA \(Hex.format(ipa)))") }
                throw fault(.fTranslation, context, stage2: true, faultClass: purpose, ipa: ipa,
                            level: level, invalid: true, reason: "S2 L\(level) descriptor at \(Hex.format(address)) invalid (IPA \(Hex.format(ipa)))")
            }
            if level < 3 && descriptor & 2 != 0 {
                let next = descriptorOutput(descriptor, shift: granule.shift, granule: granule)
                if let trace { trace.append(.smmu, "S2 L\(level) descriptor", address: address, value: descriptor, "table → PA \(Hex.format(next))") }
                if next >> UInt64(s2.outputBits) != 0 {
                    throw fault(.fAddrSize, context, stage2: true, faultClass: purpose, ipa: ipa,
                                level: level, invalid: false, reason: "S2 L\(level) table address \(Hex.format(next)) beyond the \(s2.outputBits)-bit S2PS")
                }
                table = next
                level += 1
                continue
            }
            if level == 3 && descriptor & 2 == 0 || level < 3 && !WalkGeometry.blockAllowed(granule: granule, level: level, lpa: configuration.oasBits == 52) {
                if let trace { trace.append(.smmu, "S2 L\(level) descriptor", address: address, value: descriptor, "reserved/illegal block encoding (treated as invalid)") }
                throw fault(.fTranslation, context, stage2: true, faultClass: purpose, ipa: ipa,
                            level: level, invalid: false, reason: "S2 L\(level) descriptor at \(Hex.format(address)) is a block where none is allowed (\(granule) granule) or reserved")
            }
            let shift = granule.levelShift(level)
            let base = descriptorOutput(descriptor, shift: shift, granule: granule)
            let output = base | (ipa & UInt64.lowMask(shift))
            if let trace {
                trace.append(.smmu, "S2 L\(level) descriptor", address: address, value: descriptor,
                             "\(level == 3 ? "page" : "block") → PA \(Hex.format(output)), S2AP=\(Self.s2apText(descriptor)), AF=\(descriptor.bit(10) ? 1 : 0)")
            }
            if base >> UInt64(s2.outputBits) != 0 {
                throw fault(.fAddrSize, context, stage2: true, faultClass: purpose, ipa: ipa,
                            level: level, invalid: false, reason: "S2 L\(level) output \(Hex.format(base)) beyond the \(s2.outputBits)-bit S2PS")
            }
            var descriptorNow = descriptor
            if !descriptor.bit(10) {
                if s2.hardwareAccessFlag {
                    descriptorNow |= 1 << 10
                    try writeBack(address, descriptorNow, stage2: true, purpose: purpose, ipa: ipa, context)
                } else if !s2.accessFlagFaultDisabled {
                    throw fault(.fAccess, context, stage2: true, faultClass: purpose, ipa: ipa,
                                level: level, invalid: false, reason: "S2 L\(level) descriptor at \(Hex.format(address)) has AF=0 and S2AFFD=0")
                }
            }
            // S2PTW: a CD fetch or stage-1 walk to Device memory (MemAttr[3:2]=0b00, S2FWB=0
            // encoding) is a stage-2 permission fault (§5.2 S2PTW).
            if purpose != .input && s2.protectedTableWalk && descriptorNow.bits(5, 4) == 0 {
                throw fault(.fPermission, context, stage2: true, faultClass: purpose, ipa: ipa,
                            reason: "S2PTW=1 and the \(purpose == .cd ? "CD" : "stage-1 table") at IPA \(Hex.format(ipa)) is mapped as Device memory")
            }
            // S2AP[0] (bit 6) read, S2AP[1] (bit 7) write; XN[1] (bit 54) forbids execution
            // (no FEAT_XNX). Instruction fetches need only execute permission.
            let readable = descriptorNow.bit(6)
            var writable = descriptorNow.bit(7)
            let executable = !descriptorNow.bit(54)
            if write && !writable && s2.hardwareDirty && descriptorNow.bit(51) {
                descriptorNow |= 1 << 7
                try writeBack(address, descriptorNow, stage2: true, purpose: purpose, ipa: ipa, context)
                writable = true
            }
            let allowed = write ? writable : (instruction ? executable : readable)
            if !allowed {
                throw fault(.fPermission, context, stage2: true, faultClass: purpose, ipa: ipa, tableWalkWrite: false,
                            level: level, invalid: false, reason: "S2 L\(level) descriptor at \(Hex.format(address)): S2AP=\(Self.s2apText(descriptorNow)) XN=\(descriptorNow.bit(54) ? 1 : 0) forbids the \(write ? "write" : (instruction ? "instruction fetch" : "read"))")
            }
            var permissions: UInt8 = 0
            if readable { permissions |= StagePermissions.privilegedRead | StagePermissions.unprivilegedRead }
            if writable { permissions |= StagePermissions.privilegedWrite | StagePermissions.unprivilegedWrite }
            if executable { permissions |= StagePermissions.privilegedExecute | StagePermissions.unprivilegedExecute }
            return StageWalkResult(output: output, pageShift: shift, permissions: permissions, level: level,
                                   descriptor: descriptorNow, descriptorAddress: address, global: true, stage: 2)
        }
    }

    // MARK: Stage 1

    /// Walks stage 1 for the (TBI-normalised) VA. In a nested stream every table address —
    /// TTB0/TTB1 and each next-level pointer — is an IPA and goes through `stage2Walk` with
    /// CLASS=TT before the descriptor is read.
    func stage1Walk(_ va: UInt64, range: Stage1Range, upper: Bool, stage1: Stage1Configuration, stream: StreamState,
                    _ context: TransactionContext) throws(TranslationStop) -> StageWalkResult {
        if range.disabled {
            throw fault(.fTranslation, context, reason: "the VA selects TTB\(upper ? 1 : 0) and CD.EPD\(upper ? 1 : 0)=1 (§5.4.1.1)")
        }
        let geometry = range.geometry
        let granule = geometry.granule
        let inputSize = geometry.inputSize
        // The VA must be sign-extended from bit inputSize−1 (all 0 for TTB0, all 1 for TTB1).
        let high = va >> UInt64(inputSize)
        if high != (upper ? UInt64.lowMask(64 - inputSize) : 0) {
            throw fault(.fTranslation, context, reason: "VA \(Hex.format(context.address)) outside the \(inputSize)-bit TTB\(upper ? 1 : 0) range (T\(upper ? 1 : 0)SZ=\(64 - inputSize))")
        }
        let nestedStage2 = stream.config == .nested ? stream.stage2 : nil
        let el2 = stream.world == .el2
        var table = range.ttb
        var level = geometry.startLevel
        var apTable: UInt64 = 0
        var uxnTable = false
        var pxnTable = false
        let space = nestedStage2 == nil ? "PA" : "IPA"
        while true {
            let index = geometry.index(of: va, at: level)
            let address = table &+ index &* 8
            var physical = address
            if let s2 = nestedStage2 {
                physical = try stage2Walk(address, s2, purpose: .translationTable, write: false, instruction: false, context).output
            }
            let descriptor: UInt64
            do { descriptor = try readTable(physical) } catch {
                throw fault(.fWalkEABT, context, stage2: false, faultClass: .translationTable, fetchAddress: physical,
                            level: level, invalid: false, reason: "S1 L\(level) descriptor read at PA \(Hex.format(physical)) aborted: \(error)")
            }
            counters.stage1DescriptorReads &+= 1
            journal?.append(.walkRead(stage: 1, level: level, address: physical, descriptor: descriptor))
            if descriptor & 1 == 0 {
                if let trace { trace.append(.smmu, "S1 L\(level) descriptor", address: physical, value: descriptor, "invalid (VA \(Hex.format(va)))") }
                throw fault(.fTranslation, context, level: level, invalid: true, reason: "S1 L\(level) descriptor at \(space) \(Hex.format(address)) invalid")
            }
            if level < 3 && descriptor & 2 != 0 {
                let next = descriptorOutput(descriptor, shift: granule.shift, granule: granule)
                if let trace { trace.append(.smmu, "S1 L\(level) descriptor", address: physical, value: descriptor, "table → \(space) \(Hex.format(next))") }
                if next >> UInt64(stage1.outputBits) != 0 {
                    throw fault(.fAddrSize, context, level: level, invalid: false, reason: "S1 L\(level) table address \(Hex.format(next)) beyond the \(stage1.outputBits)-bit IPS")
                }
                if !range.hierarchicalDisable {
                    apTable |= descriptor.bits(62, 61)
                    uxnTable = uxnTable || descriptor.bit(60)
                    pxnTable = pxnTable || descriptor.bit(59)
                }
                table = next
                level += 1
                continue
            }
            if level == 3 && descriptor & 2 == 0 || level < 3 && !WalkGeometry.blockAllowed(granule: granule, level: level, lpa: configuration.oasBits == 52) {
                if let trace { trace.append(.smmu, "S1 L\(level) descriptor", address: physical, value: descriptor, "reserved/illegal block encoding (treated as invalid)") }
                throw fault(.fTranslation, context, level: level, invalid: false, reason: "S1 L\(level) descriptor at \(space) \(Hex.format(address)) is a block where none is allowed (\(granule) granule) or reserved")
            }
            let shift = granule.levelShift(level)
            let base = descriptorOutput(descriptor, shift: shift, granule: granule)
            let output = base | (va & UInt64.lowMask(shift))
            if let trace {
                trace.append(.smmu, "S1 L\(level) descriptor", address: physical, value: descriptor,
                             "\(level == 3 ? "page" : "block") → \(nestedStage2 == nil ? "PA" : "IPA") \(Hex.format(output)), AP[2:1]=\(descriptor.bits(7, 6)), AF=\(descriptor.bit(10) ? 1 : 0), nG=\(descriptor.bit(11) ? 1 : 0)")
            }
            if base >> UInt64(stage1.outputBits) != 0 {
                throw fault(.fAddrSize, context, level: level, invalid: false, reason: "S1 L\(level) output \(Hex.format(base)) beyond the \(stage1.outputBits)-bit IPS")
            }
            var descriptorNow = descriptor
            if !descriptor.bit(10) {
                if stage1.hardwareAccessFlag {
                    descriptorNow |= 1 << 10
                    try writeBack(physical, descriptorNow, stage2: false, purpose: .translationTable, ipa: nil, context)
                } else if !stage1.accessFlagFaultDisabled {
                    throw fault(.fAccess, context, level: level, invalid: false, reason: "S1 L\(level) descriptor at \(space) \(Hex.format(address)) has AF=0 and CD.AFFD=0")
                }
            }
            // HD: a write to a DBM=1, AP[2]=1 page clears AP[2] (Arm ARM D8.4.2 dirty state).
            if context.isWrite && stage1.hardwareDirty && descriptorNow.bit(51) && descriptorNow.bit(7) && apTable & 0b10 == 0 {
                descriptorNow &= ~(1 << 7)
                try writeBack(physical, descriptorNow, stage2: false, purpose: .translationTable, ipa: nil, context)
            }
            let permissions = Self.stage1Permissions(descriptorNow, apTable: apTable, uxnTable: uxnTable, pxnTable: pxnTable,
                                                     wxn: stage1.wxn, pan: stage1.pan, el2: el2)
            return StageWalkResult(output: output, pageShift: shift, permissions: permissions, level: level,
                                   descriptor: descriptorNow, descriptorAddress: physical,
                                   global: el2 || !descriptorNow.bit(11), stage: 1)
        }
    }

    /// Stage-1 permissions of a leaf for the EL1&0 regime (Arm ARM D8.4 "Memory access
    /// control"): AP[2] (bit 7) read-only, AP[1] (bit 6) EL0 access; APTable[1] forces
    /// read-only, APTable[0] removes EL0 access; PXN (53)/UXN (54) and PXNTable (59)/UXNTable
    /// (60); EL0-writable memory is never privileged-executable; WXN makes writable memory
    /// execute-never; PAN=1 forbids privileged data access to EL0-accessible memory. In the EL2
    /// (non-E2H) regime AP[1] is ignored, every access counts as privileged and XN is bit 54.
    /// Linux io-pgtable-arm sets AP[1] (ARM_LPAE_PTE_AP_UNPRIV) on every non-IOMMU_PRIV
    /// mapping, so unprivileged PCIe traffic is allowed through its tables.
    static func stage1Permissions(_ d: UInt64, apTable: UInt64, uxnTable: Bool, pxnTable: Bool, wxn: Bool, pan: Bool, el2: Bool) -> UInt8 {
        let readOnly = d.bit(7) || apTable & 0b10 != 0
        if el2 {
            let xn = d.bit(54) || uxnTable
            var p = StagePermissions.privilegedRead
            if !readOnly { p |= StagePermissions.privilegedWrite }
            if !xn && !(wxn && !readOnly) { p |= StagePermissions.privilegedExecute }
            return p | (p &<< 3)
        }
        let el0 = d.bit(6) && apTable & 0b01 == 0
        let uxn = d.bit(54) || uxnTable
        let pxn = d.bit(53) || pxnTable
        var p: UInt8 = 0
        let privilegedData = !(pan && el0)
        if privilegedData {
            p |= StagePermissions.privilegedRead
            if !readOnly { p |= StagePermissions.privilegedWrite }
        }
        let el0Writable = el0 && !readOnly
        if !pxn && !el0Writable && !(wxn && !readOnly) { p |= StagePermissions.privilegedExecute }
        if el0 {
            p |= StagePermissions.unprivilegedRead
            if !readOnly { p |= StagePermissions.unprivilegedWrite }
            if !uxn && !(wxn && !readOnly) { p |= StagePermissions.unprivilegedExecute }
        }
        return p
    }

    /// An HTTU descriptor update. A failed write is an external abort on the walk.
    private func writeBack(_ address: UInt64, _ value: UInt64, stage2: Bool, purpose: FaultClass, ipa: UInt64?, _ context: TransactionContext) throws(TranslationStop) {
        do { try tableBus.write64(PhysicalAddress(address), value) } catch {
            throw fault(.fWalkEABT, context, stage2: stage2, faultClass: stage2 ? purpose : .translationTable, ipa: ipa,
                        fetchAddress: address, tableWalkWrite: true, reason: "HTTU descriptor update at \(Hex.format(address)) aborted: \(error)")
        }
    }

    static func s2apText(_ descriptor: UInt64) -> String {
        switch descriptor.bits(7, 6) {
        case 0: "none"
        case 1: "RO"
        case 2: "WO"
        default: "RW"
        }
    }
}
