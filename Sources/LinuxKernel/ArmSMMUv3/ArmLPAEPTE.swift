import Bus
import SMMUv3

/// The VMSAv8-64 descriptor bits io-pgtable-arm writes (`ARM_LPAE_PTE_*`, `paddr_to_iopte`,
/// `iopte_to_paddr`), positions from the Arm ARM (DDI0487) D8.3 "Translation table descriptor
/// formats". Defined once: the io-pgtable model and Testbed's page-table builder both encode
/// through them.
public enum ArmLPAEPTE {
    /// ARM_LPAE_PTE_TYPE_TABLE / _PAGE (0b11) and _BLOCK (0b01), bits [1:0].
    public static let typeTable: UInt64 = 3, typePage: UInt64 = 3, typeBlock: UInt64 = 1
    /// ARM_LPAE_PTE_NG, bit 11 (stage 1).
    public static let notGlobal: UInt64 = 1 << 11
    /// ARM_LPAE_PTE_AF, bit 10.
    public static let accessFlag: UInt64 = 1 << 10
    /// ARM_LPAE_PTE_SH_OS (0b10) / _SH_IS (0b11), bits [9:8].
    public static let shareableOuter: UInt64 = 2 << 8, shareableInner: UInt64 = 3 << 8
    /// ARM_LPAE_PTE_AP_RDONLY (AP[2], bit 7) and ARM_LPAE_PTE_AP_UNPRIV (AP[1], bit 6), stage 1.
    public static let apReadOnly: UInt64 = 1 << 7, apUnprivileged: UInt64 = 1 << 6
    /// ARM_LPAE_PTE_HAP_WRITE (S2AP[1], bit 7) and ARM_LPAE_PTE_HAP_READ (S2AP[0], bit 6), stage 2.
    public static let hapWrite: UInt64 = 1 << 7, hapRead: UInt64 = 1 << 6
    /// ARM_LPAE_PTE_ATTRINDX_SHIFT (stage 1 AttrIndx[2:0], bits [4:2]) and
    /// ARM_LPAE_PTE_MEMATTR_SHIFT (stage 2 MemAttr[3:0], bits [5:2]).
    public static let attributeIndexShift = 2, memoryAttributesShift = 2
    /// ARM_LPAE_PTE_XN: bits [54:53] (stage 1 PXN/UXN, stage 2 XN[1:0]).
    public static let executeNever: UInt64 = 3 << 53
    /// Stage 2 XN[1] alone, bit 54: execute-never at EL1 and EL0 without FEAT_XNX.
    public static let stage2ExecuteNever1: UInt64 = 1 << 54
    /// ARM_LPAE_PTE_DBM, bit 51 (dirty bit modifier, FEAT_HAFDBS).
    public static let dirtyBitModifier: UInt64 = 1 << 51

    /// `paddr_to_iopte`: PA[47:12] in place and PA[51:48] folded into PTE[15:12] ("of the bits
    /// which overlap, either 51:48 or 15:12 are always RES0": a 64K-granule address has 15:12
    /// clear, any other granule's oas is at most 48).
    public static func outputAddressField(_ address: UInt64) -> UInt64 { (address | (address >> 36)).keepingBits(47, 12) }

    /// `iopte_to_paddr`: PTE[47:12], and for the 64K granule PTE[15:12] back to PA[51:48].
    public static func outputAddress(_ pte: UInt64, granule: Granule) -> UInt64 {
        let address = pte.keepingBits(47, 12)
        guard granule == .size64K else { return address }
        return (address | (address << 36)).keepingBits(51, 16)
    }
}
