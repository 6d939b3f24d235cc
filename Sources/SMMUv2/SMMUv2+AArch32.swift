import Bus
import SMMUv3

/// The AArch32 long-descriptor translation regimes of a context bank whose SMMU_CBA2Rn.VA64 is
/// clear, which is every bank of an SMMU architecture version 1 part such as the MMU-401
/// (IHI 0062D §14.3 SMMU_CBn_TTBCR / SMMU_CBn_TCR in their AArch32 forms, which take the VMSAv7
/// LPAE layout of the Arm ARM for Armv7-A, B3.6 "Long-descriptor translation table format").
/// The descriptors are the VMSAv8-64 4 KiB ones for the levels used (levels 1-3, 40-bit output
/// addresses), so the walk itself is the shared `walk(va:geometry:...)`; what differs is the
/// control register layout, the 32-bit stage-1 input, the TTBR0/TTBR1 split and the start level.
extension SMMUv2 {
    /// Output bits of an AArch32 long-descriptor regime: 40 (Armv7 LPAE), capped by IDR2.OAS.
    var aarch32OutputBits: Int {
        min(40, SMMUv2Configuration.addressBits(configuration.outputAddressSize) ?? 40)
    }

    /// Which TTBR translates a 32-bit stage-1 input (Armv7 ARM B3.6.4 "Selecting between TTBR0
    /// and TTBR1, Long-descriptor translation table format"): TTBR0 below 2^(32−T0SZ); with
    /// T1SZ = 0 (and T0SZ ≠ 0) everything above is TTBR1's; otherwise TTBR1 from
    /// 2^32 − 2^(32−T1SZ), and the addresses between the two regions fault. Nil for those.
    func aarch32Region(_ va: UInt64, tcr: UInt32) -> (ttbr1: Bool, inputSize: Int)? {
        let t0sz = Int(tcr.bits(2, 0)), t1sz = Int(tcr.bits(18, 16))
        if va < UInt64(1) << UInt64(32 - t0sz) { return (false, 32 - t0sz) }
        if t1sz == 0 { return (true, 32) }
        if va >= (UInt64(1) << 32) - (UInt64(1) << UInt64(32 - t1sz)) { return (true, 32 - t1sz) }
        return nil
    }

    /// The ASID a stage-1 transaction is tagged with: TTBRn[63:48] for an AArch64 bank (TTBR1 for
    /// addresses with bit 63 set), TTBRn[55:48] for an AArch32 long-descriptor bank (TTBR by
    /// `aarch32Region`, TTBR0 where neither region covers the address: the walk faults anyway).
    func stage1ASID(_ va: UInt64, _ cb: SMMUv2ContextBank) -> UInt16 {
        if cb.va64 { return UInt16(truncatingIfNeeded: (va.bit(63) ? cb.ttbr1 : cb.ttbr0) >> 48) }
        let upper = aarch32Region(va & 0xFFFF_FFFF, tcr: cb.tcr)?.ttbr1 ?? false
        return UInt16(truncatingIfNeeded: ((upper ? cb.ttbr1 : cb.ttbr0) >> 48) & 0xFF)
    }

    /// Stage 1, AArch32 long-descriptor (TTBCR.EAE = 1): T0SZ[2:0], EPD0[7], T1SZ[18:16],
    /// EPD1[23]; a 32-bit input (an address above 4 GiB is a translation fault here); the walk
    /// starts at level 1 for TxSZ 0-1 and at level 2 for TxSZ 2-7 (Armv7 ARM B3.6.6), from
    /// TTBRn.BADDR[39:x] (x from the start table's size); 40-bit output.
    func walkStage1AArch32(_ va: UInt64, _ cb: SMMUv2ContextBank, _ transaction: DeviceTransaction) throws(ContextFault) -> Leaf {
        let tcr = cb.tcr
        guard va >> 32 == 0 else {
            throw .fault(SMMUv2Field.fsrTF, level: 1, "input \(Hex.format(va)) is beyond the AArch32 32-bit VA")
        }
        guard let region = aarch32Region(va, tcr: tcr) else {
            throw .fault(SMMUv2Field.fsrTF, level: 1, "input \(Hex.format(va)) is in neither TTBR0's nor TTBR1's region (T0SZ \(tcr.bits(2, 0)), T1SZ \(tcr.bits(18, 16)))")
        }
        let startLevel = region.inputSize > 30 ? 1 : 2
        guard !(region.ttbr1 ? tcr.bit(23) : tcr.bit(7)) else {
            throw .fault(SMMUv2Field.fsrTF, level: startLevel, "EPD\(region.ttbr1 ? 1 : 0) is set: TTBR\(region.ttbr1 ? 1 : 0) walks are disabled")
        }
        let geometry = WalkGeometry(granule: .size4K, inputSize: region.inputSize, startLevel: startLevel)
        let ttbr = region.ttbr1 ? cb.ttbr1 : cb.ttbr0
        return try walk(va: va, geometry: geometry, tableBase: ttbr & UInt64.lowMask(40) & ~(geometry.startTableBytes &- 1),
                        outputBits: aarch32OutputBits, stage: 1, transaction)
    }

    /// Stage 2, AArch32 long-descriptor VTCR (Armv7 ARM B4.1.159 VTCR, B3.6.6): T0SZ[3:0] is a
    /// signed 4-bit value (input 32 − T0SZ: 25 to 40 bits) whose sign S[4] repeats; SL0[7:6] 0
    /// starts at level 2 (T0SZ 2 to 7), 1 at level 1 (T0SZ −8 to 1, with two concatenated level-1
    /// tables at 40 bits); other pairings are UNPREDICTABLE there and translation faults here, as
    /// is a mismatched S. TG0[15:14] other than 0 asks for the 64 KiB granule of the SMMUv1 64KB
    /// Translation Granule Supplement, which the model does not walk: a translation fault.
    /// Output 40 bits. Linux's arm-smmu writes its AArch64 VTCR here unchanged for an MMU-401
    /// (ARM_SMMU_V1_64K, `arm_smmu_lpae_vtcr`): T0SZ 24 reads as T0SZ −8 with S = 1, SL0 1.
    func walkStage2AArch32(_ ipa: UInt64, _ cb: SMMUv2ContextBank, _ transaction: DeviceTransaction) throws(ContextFault) -> Leaf {
        let tcr = cb.tcr
        let raw = Int(tcr.bits(3, 0))
        let t0sz = raw >= 8 ? raw - 16 : raw
        guard tcr.bit(4) == tcr.bit(3) else {
            throw .fault(SMMUv2Field.fsrTF, level: 1, "VTCR.S (\(tcr.bit(4) ? 1 : 0)) differs from T0SZ[3]")
        }
        guard tcr.bits(15, 14) == 0 else {
            throw .fault(SMMUv2Field.fsrTF, level: 1, "VTCR.TG0 \(tcr.bits(15, 14)) asks for the 64 KiB granule, which is not modelled")
        }
        let inputSize = 32 - t0sz
        let sl0 = tcr.bits(7, 6)
        let startLevel: Int
        switch sl0 {
        case 0 where (2...7).contains(t0sz): startLevel = 2
        case 1 where (-8...1).contains(t0sz): startLevel = 1
        default:
            throw .fault(SMMUv2Field.fsrTF, level: 1, "VTCR.SL0 \(sl0) is invalid with T0SZ \(t0sz)")
        }
        guard ipa >> UInt64(inputSize) == 0 else {
            throw .fault(SMMUv2Field.fsrTF, level: startLevel, "IPA \(Hex.format(ipa)) is beyond T0SZ's \(inputSize) bits")
        }
        let geometry = WalkGeometry(granule: .size4K, inputSize: inputSize, startLevel: startLevel)
        return try walk(va: ipa, geometry: geometry, tableBase: cb.ttbr0 & UInt64.lowMask(40) & ~(geometry.startTableBytes &- 1),
                        outputBits: aarch32OutputBits, stage: 2, transaction)
    }
}
