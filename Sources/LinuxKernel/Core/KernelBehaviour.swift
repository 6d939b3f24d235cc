/// One behaviour of the modelled kernel that changed between the releases Doorbell names
/// (`KernelConfiguration.Version`). Each case says the commit that changed it and the first
/// release that has it; code that differs between releases asks `KernelConfiguration.has(_:)`
/// and never compares versions itself, so a release never mixes behaviours. The table in
/// `docs/kernel-releases.md` is rendered from `KernelBehaviour.allCases` (a test keeps the two
/// equal).
public enum KernelBehaviour: String, CaseIterable, Hashable, Sendable {
    /// iommufd's own sw_msi: `msi_desc` carries `iommu_msi_iova`/`iommu_msi_shift`,
    /// `iommu_dma_prepare_msi` dispatches on the domain's cookie type and `iommufd_sw_msi`
    /// installs the doorbell page in the paging (stage-2 parent) domain. Before: dma-iommu's MSI
    /// cookie from `iommu_get_msi_cookie`, `msi_desc->iommu_cookie`, `iommu_dma_compose_msi_msg`.
    /// Commit 40f5175d0eb7 "iommufd: Implement sw_msi support natively" (series "iommu: Remove
    /// IOMMU_DOMAIN_DMA_MSI … Part-1", merged through iommufd for v6.15).
    case nativeSWMSI = "native-sw-msi"

    /// `arm_smmu_make_nested_domain_ste` sets STRTAB_STE_1_MEV in the nested STE it builds, and
    /// `arm_smmu_get_ste_used` counts MEV among word 1's used bits for every translating STE.
    /// Commit da0c56520e88 "iommu/arm-smmu-v3: Set MEV bit in nested STE for DoS mitigations"
    /// (v6.15, with the vEVENTQ series). Before: MEV was neither set nor used.
    case nestedSTEMergeEvents = "nested-ste-mev"

    /// `arm_smmu_write_entry` asks `arm_smmu_get_ste_update_safe` which bits may change out of
    /// sequence: MEV always, EATS unless S2S changes with it. A nested STE then goes from
    /// S1-bypass to S1DSS-bypass and back hitlessly in 2 syncs; before, MEV/EATS in word 1 made
    /// word 1 "critical" next to word 0's, and the update went through V=0 in 3 syncs (the
    /// C_BAD_STE report). Commit 2781f2a930ab "iommu/arm-smmu-v3: Add an
    /// arm_smmu_get_ste_update_safe() hook" with the MEV and EATS follow-ups (Fixes:
    /// 1e8be08d1c91, Cc: stable), first in mainline v6.19.
    case steUpdateSafe = "ste-update-safe"

    /// `arm_vsmmu_alloc_domain_nested` accepts a vSTE with V=0 or Config abort/bypass and
    /// builds the abort or bypass STE over the parent for it (QEMU's GBPA and "STE not yet
    /// valid" cases). Before: only V=1 with Config=S1 translate was accepted (else EIO).
    /// Commit "iommu/arm-smmu-v3: Allow attaching nested domain for GBPA cases", v6.19.
    case nestedGBPAAttach = "nested-gbpa-attach"

    /// The first release with this behaviour.
    public var since: KernelConfiguration.Version {
        switch self {
        case .nativeSWMSI, .nestedSTEMergeEvents: .v6_15
        case .steUpdateSafe, .nestedGBPAAttach: .v6_19
        }
    }

    /// The commit that changed it, as `git log` abbreviates it.
    public var commit: String {
        switch self {
        case .nativeSWMSI: "40f5175d0eb7"
        case .nestedSTEMergeEvents: "da0c56520e88"
        case .steUpdateSafe: "2781f2a930ab"
        case .nestedGBPAAttach: "(v6.19 merge)"
        }
    }

    /// What changes, in one line.
    public var summary: String {
        switch self {
        case .nativeSWMSI: "iommufd maps the MSI doorbell itself (iommufd_sw_msi) instead of dma-iommu's MSI cookie"
        case .nestedSTEMergeEvents: "nested STEs set MEV, and MEV counts as a used bit of STE word 1"
        case .steUpdateSafe: "MEV and EATS may change out of sequence: nested STE updates stay hitless"
        case .nestedGBPAAttach: "a nested domain may be attached for an abort or bypass vSTE"
        }
    }
}

extension KernelConfiguration {
    /// Whether the configured release has `behaviour`.
    public func has(_ behaviour: KernelBehaviour) -> Bool { version >= behaviour.since }
}
