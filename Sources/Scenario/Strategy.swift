import LinuxKernel

/// The MSI strategies under nested translation (docs/strategies.md, which gives their
/// history). The raw values are the interface: scenario files, the command line and reports
/// use them. A strategy only says how the host kernel, the VMM and the guest firmware are set
/// up; what happens to an MSI is observed by running the model, never declared here.
public enum Strategy: String, CaseIterable, Hashable, Sendable, Comparable {
    /// The host before v6.15: `iommu_dma_prepare_msi` in dma-iommu.c looked at the device's
    /// current domain, which is the nested one, so the MSI cookie of the stage-2 parent is never
    /// used (Linux v6.14 drivers/iommu/dma-iommu.c; the seed thread).
    case legacy
    /// Nicolin Chen's RFCv1 (Nov 2024, `cover.1731130093.git.nicolinc@nvidia.com`): the VMM hands
    /// one guest IOVA per vector down with `VFIO_IRQ_SET_ACTION_PREPARE` +
    /// `VFIO_IRQ_SET_DATA_MSI_IOVA`, threaded through `pci_alloc_irq_vectors_iovas` into
    /// `msi_desc`, where the ITS driver's compose uses it.
    case irqchipRelay = "irqchip-relay"
    /// Robin Murphy's reply in the seed and Nicolin's 4-line prototype: VFIO rewrites the MSI-X
    /// message's address in `vfio_msi_set_vector_signal` when the device's domain is nested;
    /// irqchips are untouched.
    case vfioOverride = "vfio-override"
    /// The merged design (Linux v6.15 iommufd native sw_msi + QEMU's accelerated SMMUv3): the
    /// host maps the physical ITS page at 0x0800_0000 in the stage-2 parent; the guest firmware
    /// reserves 0x0800_0000/1 MiB for the device (QEMU: an IORT RMR) so the guest maps it 1:1.
    case rmrIdentity = "rmr-identity"
    /// Part-2 (v2 posted 2025-10-14, `cover.1760487869.git.nicolinc@nvidia.com`): as
    /// `rmr-identity` at a window the VMM sets with `IOMMU_OPTION_SW_MSI_START/SIZE`.
    case swMSIWindow = "sw-msi-window"
    /// Part-3, planned and never posted: `IOMMUFD_CMD_IOAS_MAP_MSI` maps the vITS doorbell IPA
    /// page to the physical one; per-vector guest IOVAs through `VFIO_IRQ_SET_ACTION_PREPARE`
    /// reach iommufd, and the host programs the guest IOVA.
    case vitsDirect = "vits-direct"

    /// Where the strategy comes from, in a few words.
    public var origin: String {
        definition.origin
    }

    /// The mainline release the strategy's host runs on unless the scenario or `--kernel` names
    /// another: the modelled release (`KernelConfiguration.Version`) closest to, and not after,
    /// the base the proposal was written against. legacy is the seed's host, v6.14, the last
    /// release before iommufd's native sw_msi. RFCv1 and the VFIO override of the seed thread
    /// (Nov 2024) were written on the v6.13 nesting series, before native sw_msi: v6.14.
    /// rmr-identity is what v6.15 merged. Part-2 v2 (Oct 2025) was posted on v6.18-rc1, and
    /// Part-3 was planned on top of it: v6.15, the newest modelled release before v6.18 (the
    /// modelled behaviours of v6.15 and v6.18 are the same; `KernelBehaviour` lists them).
    public var baseRelease: KernelConfiguration.Version {
        definition.baseRelease
    }

    /// What the strategy changes, layer by layer, as data (the table of docs/strategies.md and
    /// the patch series named on each case). `legacy` changes nothing: it is the baseline.
    public var changes: [Layer] {
        definition.changes
    }

    public static func < (a: Strategy, b: Strategy) -> Bool {
        allCases.firstIndex(of: a) ?? 0 < allCases.firstIndex(of: b) ?? 0
    }
}

/// A layer of the stack a strategy may have to change.
public enum Layer: String, CaseIterable, Hashable, Sendable {
    case uapi = "uAPI"
    case irqchip
    case pciMSICore = "PCI/MSI core"
    case vfio = "VFIO"
    case iommufd
    case vmm = "VMM"
    case guestFirmware = "guest firmware"
}
