import Bus
import Firmware
import SMMUv2

/// What `arm_smmu_device_cfg_probe` (drivers/iommu/arm/arm-smmu/arm-smmu.c, v6.14-v7.0) reads
/// from SMMU_IDR0-2 into `struct arm_smmu_device`, for the `smmu->version` the match data (or the
/// IORT model) gave.
public struct ArmSMMUFeatures: Hashable, Sendable {
    /// `smmu->version`.
    public var version: ArmSMMUVersion = .v2
    /// ARM_SMMU_FEAT_TRANS_S1 / _S2 / _NESTED (IDR0.S1TS, S2TS, NTS).
    public var stage1 = false
    public var stage2 = false
    public var nested = false
    /// ARM_SMMU_FEAT_STREAM_MATCH (IDR0.SMS): SMRs exist (`smmu->smrs`).
    public var streamMatching = false
    /// `smmu->num_mapping_groups` (IDR0.NUMSMRG, or 2^NUMSIDB without stream matching).
    public var mappingGroups = 0
    /// `smmu->streamid_mask` = 2^NUMSIDB − 1 (15 bits on MMU-500), narrowed by
    /// `arm_smmu_test_smr_masks` to the ID bits an SMR keeps; `smmu->smr_mask_mask` the MASK bits.
    public var streamIDMask: UInt32 = 0
    public var smrMaskMask: UInt32 = 0
    /// `smmu->pgshift` (IDR1.PAGESIZE), `smmu->numpage` (2^(NUMPAGENDXB+1)).
    public var pageShift = 12
    public var numPage: UInt64 = 0
    /// `num_context_banks`, `num_s2_context_banks` (IDR1.NUMCB, NUMS2CB).
    public var contextBanks = 0
    public var stage2ContextBanks = 0
    /// `ipa_size` (IDR2.IAS), `pa_size` (IDR2.OAS), `va_size` (IDR2.UBS).
    public var ipaSize = 32
    public var paSize = 32
    public var vaSize = 32
    /// ARM_SMMU_FEAT_VMID16 (IDR2.VMID16S), ARM_SMMU_FEAT_FMT_AARCH64_4K (IDR2.PTFS_4K).
    public var vmid16 = false
    public var aarch64Granule4K = false
    public var aarch64Granule16K = false
    public var aarch64Granule64K = false
    /// ARM_SMMU_FEAT_FMT_AARCH32_L / _S: always AArch32 long-descriptor on version 1, else unless
    /// IDR0.PTFS_NO_AARCH32[25]; short-descriptor unless IDR0.PTFS_NO_AARCH32S[24].
    public var aarch32Long = false
    public var aarch32Short = false
    /// ARM_SMMU_FEAT_TRANS_OPS: stage 1 and (version 1, or IDR0.ATOSNS clear).
    public var translationOps = false
    /// ARM_SMMU_FEAT_COHERENT_WALK (IDR0.CTTW).
    public var coherentWalk = false

    /// `arm_smmu_id_size_to_bits`: 0→32, 1→36, 2→40, 3→42, 4→44, 5 and above→48.
    public static func sizeBits(_ field: UInt32) -> Int {
        switch field {
        case 0: 32
        case 1: 36
        case 2: 40
        case 3: 42
        case 4: 44
        default: 48
        }
    }

    /// `smmu->pgsize_bitmap` for the formats the SMMU offers (`arm_smmu_device_cfg_probe`:
    /// AArch32 short → SZ_4K | SZ_64K | SZ_1M | SZ_16M, AArch32 long or AArch64 4K → SZ_4K |
    /// SZ_2M | SZ_1G, 16K → SZ_16K | SZ_32M, 64K → SZ_64K | SZ_512M). A Juno MMU-401 prints
    /// "Supported page sizes: 0x60211000" (AArch32 long + the 64K supplement).
    public var pageSizeBitmap: UInt64 {
        var bitmap: UInt64 = 0
        if aarch32Short { bitmap |= 1 << 12 | 1 << 16 | 1 << 20 | 1 << 24 }
        if aarch32Long || aarch64Granule4K { bitmap |= 1 << 12 | 1 << 21 | 1 << 30 }
        if aarch64Granule16K { bitmap |= 1 << 14 | 1 << 25 }
        if aarch64Granule64K { bitmap |= 1 << 16 | 1 << 29 }
        return bitmap
    }

    /// Decodes the ID registers; an error sentence where Linux fails the probe.
    /// `cfg->fmt` as `arm_smmu_init_domain_context` chooses it on a 64-bit kernel: AArch32 long
    /// when offered, then AArch64 whenever any AArch64 granule is (IS_ENABLED(CONFIG_64BIT)), so
    /// an MMU-401 (ARM_SMMU_V1_64K) gets ARM_SMMU_CTX_FMT_AARCH64 and a plain SMMUv1
    /// ARM_SMMU_CTX_FMT_AARCH32_L; nil (-EINVAL) when neither (the model has no AArch32
    /// short-descriptor io-pgtable, which a 64-bit kernel never picks).
    public var contextFormat: ArmSMMUContextFormat? {
        if aarch64Granule4K || aarch64Granule16K || aarch64Granule64K { return .aarch64 }
        if aarch32Long { return .aarch32Long }
        return nil
    }

    static func decode(idr0: UInt32, idr1: UInt32, idr2: UInt32, version: ArmSMMUVersion = .v2) -> Result<ArmSMMUFeatures, ArmSMMUProbeError> {
        var f = ArmSMMUFeatures()
        f.version = version
        f.stage1 = idr0.bit(30)
        f.stage2 = idr0.bit(29)
        f.nested = idr0.bit(28)
        // "\tno translation support!" → -ENODEV.
        guard f.stage1 || f.stage2 else { return .failure(.noTranslation) }
        f.translationOps = f.stage1 && (version.isVersion1 || !idr0.bit(26))
        f.coherentWalk = idr0.bit(14)
        let sidBits = Int(idr0.bits(12, 9))
        f.streamIDMask = UInt32(truncatingIfNeeded: UInt64.lowMask(sidBits))
        f.streamMatching = idr0.bit(27)
        if f.streamMatching {
            f.mappingGroups = Int(idr0 & 0xFF)
            // "stream-matching supported, but no SMRs present!" → -ENODEV.
            guard f.mappingGroups > 0 else { return .failure(.noSMRs) }
        } else {
            f.mappingGroups = 1 << sidBits
        }
        if version.isVersion1 || !idr0.bit(25) {
            f.aarch32Long = true
            f.aarch32Short = !idr0.bit(24)
        }
        f.pageShift = idr1.bit(31) ? 16 : 12
        f.numPage = UInt64(1) << UInt64(idr1.bits(30, 28) + 1)
        f.stage2ContextBanks = Int(idr1.bits(23, 16))
        f.contextBanks = Int(idr1 & 0xFF)
        // "impossible number of S2 context banks!" → -ENODEV.
        guard f.stage2ContextBanks <= f.contextBanks else { return .failure(.impossibleS2ContextBanks) }
        f.ipaSize = sizeBits(idr2.bits(3, 0))
        f.paSize = sizeBits(idr2.bits(7, 4))
        f.vmid16 = idr2.bit(15)
        if version.isVersion1 {
            // "smmu->va_size = smmu->ipa_size"; ARM_SMMU_V1_64K adds the 64K AArch64 format.
            f.vaSize = f.ipaSize
            f.aarch64Granule64K = version == .v1With64KGranule
        } else {
            f.vaSize = sizeBits(idr2.bits(11, 8))
            f.aarch64Granule4K = idr2.bit(12)
            f.aarch64Granule16K = idr2.bit(13)
            f.aarch64Granule64K = idr2.bit(14)
        }
        return .success(f)
    }
}

/// `enum arm_smmu_context_fmt` (arm-smmu.h): the translation scheme of a context bank.
public enum ArmSMMUContextFormat: Hashable, Sendable {
    /// ARM_SMMU_CTX_FMT_AARCH64: io-pgtable ARM_64_LPAE_S1/S2, CBA2R.VA64 on version 2.
    case aarch64
    /// ARM_SMMU_CTX_FMT_AARCH32_L: io-pgtable ARM_32_LPAE_S1/S2, TTBCR.EAE for stage 1.
    case aarch32Long
}

/// Why `arm_smmu_device_cfg_probe` refused the SMMU (its dev_err lines).
enum ArmSMMUProbeError: Error, CustomStringConvertible {
    case noTranslation, noSMRs, impossibleS2ContextBanks

    var description: String {
        switch self {
        case .noTranslation: "\tno translation support!"
        case .noSMRs: "stream-matching supported, but no SMRs present!"
        case .impossibleS2ContextBanks: "impossible number of S2 context banks!"
        }
    }
}
