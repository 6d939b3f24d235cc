/// QEMU's emulated SMMUv3 (`-device arm-smmuv3`, or `-machine virt,iommu=smmuv3`), QEMU 11.0.
///
/// What the guest reads in SMMU_IDR0–5, SMMU_IIDR and SMMU_AIDR is set by
/// `smmuv3_init_id_regs` (hw/arm/smmuv3.c; named `smmuv3_init_regs` before the accelerated
/// vSMMU series split it out of the reset path), with the field positions and constants of
/// hw/arm/smmuv3-internal.h (`SMMU_IDR1_SIDSIZE` 16, `SMMU_CMDQS` 19, `SMMU_EVENTQS` 19,
/// `SMMU_IDR5_OAS_44` 4). The `stage` property ("1", "2" or "nested"; unset means stage 1)
/// picks IDR0.S1P/S2P, and IDR3.XNX follows S2P ("XNX is a stage-2-specific feature").
/// Everything else is fixed:
///
/// - IDR0: TTF = 0b10 (AArch64 only), COHACC, ASID16, VMID16, TTENDIAN = 0b10 (little-endian
///   only), STALL_MODEL = 0b01 (no stall), TERM_MODEL = 1 (a terminated transaction always
///   aborts, so CD.A = 0 is ILLEGAL), ST_LEVEL = 0b01 (2-level stream table). Not set: MSI (the
///   SMMU's interrupts are wired SPIs), CD2L (one CD per stream: QEMU refuses STE.S1CDMax ≠ 0),
///   HYP, HTTU, BTM, ATS, PRI, SEV, ATOS, VATOS, VMW.
/// - IDR1: SIDSIZE = 16, SSIDSIZE = 0, PRIQS = 0, EVENTQS = 19, CMDQS = 19.
/// - IDR2 = 0, IDR4 = 0.
/// - IDR3: HAD = 1, RIL = 1, BBML = 2 (BBML2); XNX = 1 only with S2P.
/// - IDR5: OAS = 0b100 (44 bits), GRAN4K, GRAN16K, GRAN64K; VAX = 0, STALL_MAX = 0.
/// - IIDR = 0 (`s->iidr` is never set), AIDR = 1 (SMMUv3.1, `s->aidr = 0x1`) although RIL is
///   advertised.
///
/// With `accel=on`, `smmuv3_accel_idr_override` then changes IDR3.RIL (property `ril`),
/// IDR0.ATS (`ats`), IDR5.OAS (`oas=48`) and IDR1.SSIDSIZE (`ssidsize`): see the VMM's
/// accelerated vSMMU.
public enum QEMUSMMUv3Stage: String, Sendable, CaseIterable {
    /// `stage=1` (also the default when the property is unset): IDR0.S1P only.
    case stage1 = "1"
    /// `stage=2`: IDR0.S2P only.
    case stage2 = "2"
    /// `stage=nested`: IDR0.S1P and IDR0.S2P.
    case nested
}

extension SMMUConfiguration {
    /// Exactly the ID registers QEMU 11.0's `smmuv3_init_id_regs` gives an `arm-smmuv3` with
    /// property `stage` (see `QEMUSMMUv3Stage`).
    public static func qemu(stage: QEMUSMMUv3Stage) -> SMMUConfiguration {
        var c = SMMUConfiguration()
        c.stage1 = stage != .stage2
        c.stage2 = stage != .stage1
        c.aarch64Tables = true
        c.coherentAccess = true
        c.asid16 = true
        c.vmid16 = true
        c.stallModel = .terminateOnly
        c.terminateModel = true
        c.twoLevelStreamTable = true
        c.twoLevelCDTable = false
        c.msi = false
        c.hyp = false
        c.httu = .none
        c.ats = false
        c.streamIDBits = 16
        c.substreamIDBits = 0
        c.eventQueueMaxLog2 = 19
        c.commandQueueMaxLog2 = 19
        c.hierarchicalAttributeDisable = true
        c.executeNeverControl = c.stage2
        c.rangeInvalidation = true
        c.breakBeforeMakeLevel = 2
        c.smallTranslationTables = false
        c.outputAddressSize = .bits44
        c.granule4K = true
        c.granule16K = true
        c.granule64K = true
        c.architectureMinorRevision = 1
        return c
    }

    /// The SMMU of the `qemu-virt` presets: QEMU 11.0's `-machine virt,iommu=smmuv3` with
    /// `-global arm-smmuv3.stage=nested`. `virt`'s `create_smmu` sets no `stage`, so the global
    /// property is how a QEMU user gets a nesting-capable SMMU (Linux's
    /// ARM_SMMU_FEAT_NESTING needs both S1P and S2P), which the host kernel's iommufd nesting
    /// in this model needs.
    public static let qemuVirt = SMMUConfiguration.qemu(stage: .nested)
}
