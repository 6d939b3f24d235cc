import Bus
import SMMUv3

/// What `arm_smmu_device_hw_probe` (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c) learns from
/// SMMU_IDR0/1/3/5 and keeps in `smmu->features`, `smmu->options`, the ID widths and the queue
/// sizes. Decoded from the register values only, so the same code serves a host SMMU and a
/// guest's vSMMU.
public struct ArmSMMUv3Features: Hashable, Sendable {
    /// ARM_SMMU_FEAT_2_LVL_STRTAB: IDR0.ST_LEVEL = 0b01, cleared again when SIDSIZE ≤
    /// STRTAB_SPLIT (8): "If the SID space is small enough, use a linear table".
    public var twoLevelStreamTable = false
    /// ARM_SMMU_FEAT_2_LVL_CDTAB: IDR0.CD2L.
    public var twoLevelCDTable = false
    /// ARM_SMMU_FEAT_TRANS_S1 / _S2: IDR0.S1P / S2P.
    public var stage1 = false
    public var stage2 = false
    /// ARM_SMMU_FEAT_NESTING: both stages.
    public var nesting: Bool { stage1 && stage2 }
    /// ARM_SMMU_FEAT_MSI: IDR0.MSI.
    public var msi = false
    /// ARM_SMMU_FEAT_SEV: IDR0.SEV.
    public var sev = false
    /// ARM_SMMU_FEAT_HYP: IDR0.HYP (then reset also issues TLBI_EL2_ALL). ARM_SMMU_FEAT_E2H
    /// (HYP on a VHE host) is not modelled: the kernel model runs at EL1, so stage-1 STEs use
    /// STRW = NS-EL1 and TLBI_NH_* rather than TLBI_EL2_*.
    public var hyp = false
    /// ARM_SMMU_FEAT_STALLS: STALL_MODEL 0b00 (stall and terminate) or 0b10 (forced).
    public var stalls = false
    /// ARM_SMMU_FEAT_RANGE_INV: IDR3.RIL.
    public var rangeInvalidation = false
    /// ARM_SMMU_FEAT_ATTR_TYPES_OVR: IDR1.ATTR_TYPES_OVR (bypass STEs then set SHCFG=incoming).
    public var attributeTypesOverride = false
    /// ARM_SMMU_FEAT_COHERENCY: from firmware (`dma-coherent`), not from IDR0.COHACC, which
    /// Linux only compares and warns about.
    public var coherent = false
    /// ARM_SMMU_OPT_MSIPOLL: CMD_SYNC completion by an MSI to the SYNC's own slot, set when
    /// IDR0.MSI and the SMMU is coherent.
    public var msiPolling: Bool { msi && coherent }
    /// `smmu->asid_bits`, `smmu->vmid_bits`: 16 with IDR0.ASID16 / VMID16, else 8.
    public var asidBits = 8
    public var vmidBits = 8
    /// `smmu->sid_bits` (IDR1.SIDSIZE) and `smmu->ssid_bits` (IDR1.SSIDSIZE).
    public var streamIDBits = 0
    public var substreamIDBits = 0
    /// `cmdq.q.llq.max_n_shift` / `evtq.q.llq.max_n_shift`: min(IDR1 field, the largest queue
    /// the allocator can give naturally aligned).
    public var commandQueueShift = 0
    public var eventQueueShift = 0
    /// `smmu->oas` from IDR5.OAS, `smmu->ias` = max(40 if AArch32 tables too, oas).
    public var outputAddressBits = 48
    public var inputAddressBits = 48
    /// `smmu->pgsize_bitmap` from IDR5.GRAN4K/16K/64K (before io-pgtable restricts it).
    public var pageSizeBitmap: UInt64 = 0
    /// IDR5.VAX = 0b01: 52-bit stage-1 input.
    public var vax52 = false

    public init() {}

    /// `Q_MAX_SZ_SHIFT` = PAGE_SHIFT + CONFIG_CMA_ALIGNMENT (arm64 defconfig: CMA on,
    /// CMA_ALIGNMENT = 8), i.e. with 4K pages 1 MiB queues at most: the command queue (16-byte
    /// entries) gets at most 2^16 entries and the event queue (32-byte entries) 2^15; with 64K
    /// pages 16 MiB, so IDR1's own limits (at most 2^19) decide. Without CMA the bound is
    /// PAGE_SHIFT + MAX_PAGE_ORDER; the choice only changes the queue sizes.
    public static func queueMaxSizeShift(pageShift: Int) -> Int { pageShift + 8 }

    /// Why probing refused the SMMU (Linux returns -ENXIO with these messages).
    public enum ProbeError: Error, Hashable, Sendable {
        case noTranslation
        case aarch64TablesUnsupported
        case presetTablesOrQueues
        case commandQueueTooSmall
        case noGranule
    }

    /// `arm_smmu_device_hw_probe`: decodes the ID registers. `pageShift` is the kernel's
    /// PAGE_SHIFT, which bounds the queues (`Q_MAX_SZ_SHIFT`).
    public static func decode(idr0: UInt32, idr1: UInt32, idr3: UInt32, idr5: UInt32, coherent: Bool,
                              pageShift: Int = 12) -> Result<ArmSMMUv3Features, ProbeError> {
        let maxQueueShift = Self.queueMaxSizeShift(pageShift: pageShift)
        var f = ArmSMMUv3Features()
        f.coherent = coherent
        // IDR0
        f.twoLevelStreamTable = idr0.bits(28, 27) == 1
        f.twoLevelCDTable = idr0.bit(19)
        f.sev = idr0.bit(14)
        f.msi = idr0.bit(13)
        f.hyp = idr0.bit(9)
        let stallModel = idr0.bits(25, 24)
        f.stalls = stallModel == 0 || stallModel == 2
        f.stage1 = idr0.bit(1)
        f.stage2 = idr0.bit(0)
        guard f.stage1 || f.stage2 else { return .failure(.noTranslation) }
        // IDR0_TTF: 0b10 AArch64, 0b11 AArch32+AArch64 (ias 40); anything else refused.
        var ias = 0
        switch idr0.bits(3, 2) {
        case 0b11: ias = 40
        case 0b10: break
        default: return .failure(.aarch64TablesUnsupported)
        }
        f.asidBits = idr0.bit(12) ? 16 : 8
        f.vmidBits = idr0.bit(18) ? 16 : 8
        // IDR1
        if idr1.bit(30) || idr1.bit(29) || idr1.bit(28) { return .failure(.presetTablesOrQueues) }
        f.attributeTypesOverride = idr1.bit(27)
        f.commandQueueShift = min(maxQueueShift - 4, Int(idr1.bits(25, 21)))
        // CMDQ_BATCH_ENTRIES = BITS_PER_LONG: "command queue size <= %d entries not supported".
        if f.commandQueueShift <= 6 { return .failure(.commandQueueTooSmall) }
        f.eventQueueShift = min(maxQueueShift - 5, Int(idr1.bits(20, 16)))
        f.substreamIDBits = Int(idr1.bits(10, 6))
        f.streamIDBits = Int(idr1.bits(5, 0))
        if f.streamIDBits <= 8 { f.twoLevelStreamTable = false }
        // IDR3
        f.rangeInvalidation = idr3.bit(10)
        // IDR5
        f.vax52 = idr5.bits(11, 10) == 1
        if idr5.bit(6) { f.pageSizeBitmap |= (1 << 16) | (1 << 29) }
        if idr5.bit(5) { f.pageSizeBitmap |= (1 << 14) | (1 << 25) }
        if idr5.bit(4) { f.pageSizeBitmap |= (1 << 12) | (1 << 21) | (1 << 30) }
        guard f.pageSizeBitmap != 0 else { return .failure(.noGranule) }
        // IDR5.OAS: 0:32 1:36 2:40 3:42 4:44 5:48 6:52; reserved values are treated as 48
        // ("Unknown output address size. Truncating to 48-bit").
        switch idr5.bits(2, 0) {
        case 0: f.outputAddressBits = 32
        case 1: f.outputAddressBits = 36
        case 2: f.outputAddressBits = 40
        case 3: f.outputAddressBits = 42
        case 4: f.outputAddressBits = 44
        case 6:
            f.outputAddressBits = 52
            f.pageSizeBitmap |= 1 << 42   // "4TB": 64K-granule level-1 blocks need a 52-bit OA
        default: f.outputAddressBits = 48
        }
        f.inputAddressBits = max(ias, f.outputAddressBits)
        return .success(f)
    }

    /// The IDR5.OAS / CD.IPS / VTCR.PS encoding of a width (io-pgtable-arm `ARM_LPAE_TCR_PS_*`).
    static func physicalSizeField(bits: Int) -> UInt64 {
        switch bits {
        case ...32: 0
        case ...36: 1
        case ...40: 2
        case ...42: 3
        case ...44: 4
        case ...48: 5
        default: 6
        }
    }
}
