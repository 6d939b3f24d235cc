/// Out-of-tree patches applied to the modelled kernel: the host-kernel halves of the MSI
/// strategies listed in the README (the seed thread and the patch series named below give their history). Each one
/// changes an existing code path of the model, never adds a shortcut around it; an unpatched
/// kernel answers the new uAPI as Linux answers what it does not know (EINVAL for unknown VFIO
/// flag bits, EOPNOTSUPP for an unknown IOMMU_OPTION id, ENOTTY for an unknown ioctl).
///
/// Which strategy uses which set (`Strategy.hostPatches`): irqchip-relay
/// `[.vfioMSIIOVAPrepare, .irqchipMSIIOVA, .iommufdIOASMapMSI]`, vfio-override
/// `[.vfioMSIIOVAPrepare, .vfioMSIOverride, .iommufdIOASMapMSI]`, sw-msi-window
/// `[.iommufdSWMSIWindow]`, vits-direct `[.vfioMSIIOVAPrepare, .iommufdMSIIOVA, .iommufdIOASMapMSI]`;
/// legacy (v6.14) and rmr-identity (v6.15) run unpatched.
public struct KernelPatches: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// RFCv1 7/7 "vfio/pci: Allow preset MSI IOVAs via VFIO_IRQ_SET_ACTION_PREPARE"
    /// (`cover.1731130093.git.nicolinc@nvidia.com`): `VFIO_IRQ_SET_DATA_MSI_IOVA` (1 << 6) and
    /// `VFIO_IRQ_SET_ACTION_PREPARE` (1 << 7) join the type masks, the data is one u64 per
    /// vector, and `vfio_pci_set_msi_prepare` keeps them in `vdev->msi_iovas`.
    public static let vfioMSIIOVAPrepare = KernelPatches(rawValue: 1 << 0)

    /// RFCv1 1–6/7: "genirq/msi: Allow preset IOVA in struct msi_desc for MSI doorbell address",
    /// "irqchip/gic-v3-its: Bypass iommu_cookie if desc->msi_iova is preset", "PCI/MSI: Pass in
    /// msi_iova to msi_domain_insert_msi_desc", "PCI/MSI: Allow __pci_enable_msi_range to pass
    /// in iova", "PCI/MSI: Extract a common __pci_alloc_irq_vectors function", "PCI/MSI: Add
    /// pci_alloc_irq_vectors_iovas helper" — `vfio_msi_enable` hands `vdev->msi_iovas` to the
    /// MSI core, each `msi_desc` carries its preset IOVA, and the ITS driver skips
    /// `iommu_dma_prepare_msi` and composes the preset IOVA instead of its doorbell.
    public static let irqchipMSIIOVA = KernelPatches(rawValue: 1 << 1)

    /// Nicolin Chen's override in the seed thread (`ZzPTHD2D5ATBsoGV@Asurada-Nvidia`, after
    /// Robin Murphy's and Marc Zyngier's replies): `vfio_msi_set_vector_signal` replaces the
    /// cached message's address by `vdev->msi_iovas[vector]` before `pci_write_msi_msg` when
    /// `iommu_get_domain_for_dev()->type == IOMMU_DOMAIN_NESTED`. Irqchips are untouched.
    public static let vfioMSIOverride = KernelPatches(rawValue: 1 << 2)

    /// Part-2 v2 4/7 "iommufd: Add IOMMU_OPTION_SW_MSI_START/SIZE ioctls"
    /// (`6c36de14b00a3f06df3a602f18baf6b51fde429f.1760487869.git.nicolinc@nvidia.com`, cover
    /// `cover.1760487869`): a per-device SW_MSI window set by the VMM before attach replaces the
    /// driver's IOMMU_RESV_SW_MSI region in the IOAS and in `iommufd_sw_msi`.
    public static let iommufdSWMSIWindow = KernelPatches(rawValue: 1 << 3)

    /// Part-3 (planned in the RFCv2 and Part-2 covers, never posted): `IOMMUFD_CMD_IOAS_MAP_MSI`
    /// maps the device's physical doorbell page at an IOVA of an IOAS (the vITS doorbell IPA),
    /// in every domain of that IOAS. Semantics are Doorbell's documented choice
    /// (`IOMMUFD.ioasMapMSI`).
    public static let iommufdIOASMapMSI = KernelPatches(rawValue: 1 << 4)

    /// Part-3 / RFCv2 (`cover.1736550979`): "vfio-iommufd: Provide another layer of msi_iova
    /// helpers" and "iommufd/device: Allow setting IOVAs for MSI(x) vectors" — VFIO's PREPARE
    /// IOVAs reach the bound iommufd device, and `iommufd_sw_msi` stores a vector's IOVA in its
    /// `msi_desc` (`msi_desc_set_iommu_msi_iova(desc, iova, PAGE_SHIFT)`) instead of the
    /// SW_MSI window slot; Part-1's `msi_msg_set_addr` then composes it.
    public static let iommufdMSIIOVA = KernelPatches(rawValue: 1 << 5)

    /// Every patch, for sweeps.
    public static let all: KernelPatches = [.vfioMSIIOVAPrepare, .irqchipMSIIOVA, .vfioMSIOverride,
                                            .iommufdSWMSIWindow, .iommufdIOASMapMSI, .iommufdMSIIOVA]
}
