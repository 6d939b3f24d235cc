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

    /// `arm_smmu_make_nested_cd_table_ste` sets STRTAB_STE_1_MEV (word 1 bit 19) in the nested
    /// STE it builds, and `arm_smmu_get_ste_used` counts MEV among word 1's used bits both for
    /// an STE whose Config translates at stage 1 and for one that translates at stage 2.
    /// Commit da0c56520e88 "iommu/arm-smmu-v3: Set MEV bit in nested STE for DoS mitigations"
    /// (the vEVENTQ series, merged through iommufd for v6.15). Before: MEV was neither set nor
    /// used. With it and without `steUpdateSafe`, a nested STE and its parent's S2 STE differ in
    /// a used bit of word 1 as well as in word 0's Config, so every switch between them goes
    /// through V = 0.
    case nestedSTEMergeEvents = "nested-ste-mev"

    /// `arm_smmu_entry_qword_diff` asks the writer's `get_update_safe` op
    /// (`arm_smmu_get_ste_update_safe`; the CD writer has none) which bits may change out of
    /// sequence, and ignores those that both entries use: MEV always, EATS = TRANS unless
    /// either entry has EATS = S1CHK or S2S. A nested STE then goes between its parent's S2 STE
    /// and S1DSS = bypass (or any S1 vSTE) hitlessly in 2 syncs; before, MEV/EATS in word 1
    /// made word 1 "critical" next to word 0, and the update went through V = 0 in 3 syncs
    /// ("C_BAD_STE was observed when updating nested STE from an S1-bypass mode to an
    /// S1DSS-bypass mode"). Commits 2781f2a930ab "iommu/arm-smmu-v3: Add update_safe bits to
    /// fix STE update sequence" (Fixes: 1e8be08d1c91), f3c1d372dbb8 "iommu/arm-smmu-v3: Mark
    /// STE MEV safe when computing the update sequence" (Fixes: da0c56520e88) and 7cad80048595
    /// "iommu/arm-smmu-v3: Mark EATS_TRANS safe when computing the update sequence", with the
    /// KUnit cases of a4f976edcb87 "iommu/arm-smmu-v3-test: Add nested s1bypass/s1dssbypass
    /// coverage": queued on the iommu tree's arm/smmu/updates branch on 2026-01-23, after
    /// v6.19's merge window, so first in mainline v7.0 (v7.0-rc1, 2026-02-22); v6.19 does not
    /// have them (they reached the stable series as backports, 6.19.6 and 6.18.y).
    case steUpdateSafe = "ste-update-safe"

    /// `arm_smmu_attach_dev_nested` prepares a vmaster (`arm_smmu_attach_prepare_vmaster`):
    /// the device's vDEVICE is looked up (`iommufd_viommu_get_vdev_id`) and its ENOENT fails
    /// the attach, so a nested attach needs a vDEVICE; the vSID it gives is how the device's
    /// stage-1 events reach the VM's vEVENTQ. Before: no vmaster, any nested attach of a device
    /// of the vSMMU's SMMU went ahead, and no event was forwarded. Commit f0ea207ed781
    /// "iommu/arm-smmu-v3: Introduce struct arm_smmu_vmaster" (the vEVENTQ series, with
    /// e7d3fa3d29d5 "Report events that belong to devices attached to vIOMMU", v6.15).
    case nestedVMaster = "nested-vmaster"

    /// `arm_smmu_attach_prepare_vmaster`: a nested domain whose vSTE Config field is abort or
    /// bypass (a V = 0 vSTE has been zeroed, so its Config reads abort) may be attached
    /// without a vDEVICE — no vmaster is made, so the device reports no vevents — for QEMU's
    /// GBPA case (CR0.SMMUEN = 0, no vSID yet). Before: `iommufd_viommu_get_vdev_id`'s ENOENT
    /// failed every nested attach without a vDEVICE. `arm_vsmmu_alloc_domain_nested` /
    /// `arm_smmu_validate_vste` did not change: abort and bypass vSTEs were always accepted.
    /// Commit 81c45c62dc3e "iommu/arm-smmu-v3-iommufd: Allow attaching nested domain for GBPA
    /// cases" (the iommufd pull for v6.19).
    case nestedGBPAAttach = "nested-gbpa-attach"

    /// A device's firmware IOMMU description (DT `iommu-map`, IORT ID mappings) is parsed when
    /// the device is added: `iommu_probe_device` → `iommu_init_device` calls the bus's
    /// `dma_configure` (`pci_dma_configure` → `of_iommu_configure` / `iort_iommu_configure_id`),
    /// so every PCI function has its group from enumeration, driver or not. Before: the parsing
    /// ran only from `really_probe` → `pci_dma_configure` when a driver bound, so a function got
    /// its fwspec and group when its first driver probed (groups numbered in driver-probe
    /// order) and a driverless one (a host bridge's function 0, say) had none. Commit
    /// bcb81ac6ae3c "iommu: Get DT/ACPI parsing into the proper probe path" (Robin Murphy,
    /// 2025-02-28; the iommu pull for v6.15, where its regressions were reported against
    /// v6.15-rc). Seen on a real Linux 6.12 arm64 boot under QEMU (Tests/Fixtures/snapshots):
    /// the gpex host bridge 00:00.0 has no `iommu_group`.
    case iommuProbeAtDeviceAdd = "iommu-probe-at-add"

    /// `kvm_vgic_v4_set_forwarding` returns 0 when `vgic_its_resolve_lpi` cannot translate the
    /// route's (DeviceID, EventID) ("Silently exit if translation fails as the guest (or
    /// userspace!) has managed to do something stupid. Emulated LPI injection will still work"),
    /// so the irqbypass registration succeeds and the MSI stays on the software path. Before: it
    /// returned the resolve result (a positive E_ITS_* code or −EBUSY) and
    /// `kvm_arch_irq_bypass_add_producer` failed the registration. Commit 5c57533eb8c1 "KVM:
    /// arm64: vgic-v4: Fall back to software irqbypass if LPI not found" (Oliver Upton, series
    /// "KVM: arm64: Fixes/clarification for GICv4 vLPI injection", kvmarm/next for v6.15).
    case vlpiResolveFallsBackSilently = "vlpi-resolve-fallback"

    /// The first release with this behaviour.
    public var since: KernelConfiguration.Version {
        switch self {
        case .nativeSWMSI, .nestedSTEMergeEvents, .nestedVMaster, .iommuProbeAtDeviceAdd, .vlpiResolveFallsBackSilently: .v6_15
        case .nestedGBPAAttach: .v6_19
        case .steUpdateSafe: .v7_0
        }
    }

    /// The commit that changed it, as `git log` abbreviates it.
    public var commit: String {
        switch self {
        case .nativeSWMSI: "40f5175d0eb7"
        case .nestedSTEMergeEvents: "da0c56520e88"
        case .steUpdateSafe: "2781f2a930ab"
        case .nestedVMaster: "f0ea207ed781"
        case .nestedGBPAAttach: "81c45c62dc3e"
        case .iommuProbeAtDeviceAdd: "bcb81ac6ae3c"
        case .vlpiResolveFallsBackSilently: "5c57533eb8c1"
        }
    }

    /// What changes, in one line.
    public var summary: String {
        switch self {
        case .nativeSWMSI: "iommufd maps the MSI doorbell itself (iommufd_sw_msi) instead of dma-iommu's MSI cookie"
        case .nestedSTEMergeEvents: "nested STEs set MEV, and MEV counts as a used bit of STE word 1"
        case .steUpdateSafe: "MEV and EATS may change out of sequence: nested STE updates stay hitless"
        case .nestedVMaster: "a nested attach needs the device's vDEVICE (vmaster), which forwards its stage-1 events to the VM"
        case .nestedGBPAAttach: "a nested domain with an abort or bypass vSTE may be attached without a vDEVICE"
        case .iommuProbeAtDeviceAdd: "a PCI function gets its IOMMU group when it is added, not when a driver first binds"
        case .vlpiResolveFallsBackSilently: "a route whose LPI KVM cannot resolve is not forwarded as a vLPI and set_forwarding returns 0, not an error"
        }
    }
}

extension KernelConfiguration {
    /// Whether the configured release has `behaviour`.
    public func has(_ behaviour: KernelBehaviour) -> Bool { version >= behaviour.since }
}
