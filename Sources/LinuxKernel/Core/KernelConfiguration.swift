import Bus

/// Boot-time choices of the modelled kernel: its release (`Version`; what differs between
/// releases is listed by `KernelBehaviour`) and the command-line parameters that change the paths Doorbell cares about.
public struct KernelConfiguration: Hashable, Sendable {
    /// The behaviour the model follows where Linux changed over time.
    public enum Version: String, Hashable, Sendable, CaseIterable, Comparable {
        /// Before the v6.15 MSI rework: `msi_desc->iommu_cookie`, `iommu_dma_compose_msi_msg`,
        /// `iommu_dma_prepare_msi` in dma-iommu.c looking at the device's current domain.
        case v6_14 = "v6.14"
        /// v6.15 and later: `iommu_msi_iova`/`iommu_msi_shift` in msi_desc, `msi_msg_set_addr`,
        /// the generic `iommu_dma_prepare_msi` dispatching on the domain cookie type, iommufd's
        /// native sw_msi, MEV in nested STEs.
        case v6_15 = "v6.15"
        /// v6.19 (released 2026-02-08): nested attach for GBPA cases.
        case v6_19 = "v6.19"
        /// v7.0 (v7.0-rc1 2026-02-22), the first mainline release with the STE writer's
        /// update-safe bits. Only the behaviours whose `since` is v7.0 were checked against its
        /// source; everything else is v6.19's.
        case v7_0 = "v7.0"

        /// Release order.
        var order: Int {
            switch self {
            case .v6_14: 0
            case .v6_15: 1
            case .v6_19: 2
            case .v7_0: 3
            }
        }

        /// The behaviours this release has (`KernelBehaviour`), in declaration order.
        public var behaviours: [KernelBehaviour] { KernelBehaviour.allCases.filter { $0.since <= self } }

        public static func < (a: Version, b: Version) -> Bool { a.order < b.order }
    }

    /// The default domain type for DMA-capable devices behind an IOMMU.
    public enum DefaultDomain: String, Hashable, Sendable, CaseIterable {
        /// `IOMMU_DOMAIN_DMA` with strict invalidation (iommu.strict=1, the arm64 default).
        case dmaStrict = "dma-strict"
        /// `IOMMU_DOMAIN_DMA_FQ`: lazy invalidation through the flush queue (iommu.strict=0).
        case dmaLazy = "dma-lazy"
        /// `IOMMU_DOMAIN_IDENTITY` (iommu.passthrough=1).
        case identity
    }

    public var version: Version = .v6_15
    public var defaultDomain: DefaultDomain = .dmaStrict
    /// vfio_iommu_type1.allow_unsafe_interrupts / iommufd's equivalent module parameter.
    public var allowUnsafeInterrupts: Bool = false
    /// PAGE_SIZE (CONFIG_ARM64_4K_PAGES / _16K_ / _64K_): 4 KiB, the distribution default, or
    /// 64 KiB (RHEL-style arm64 builds); 16 KiB is accepted too. See `LinuxKernel.pageSize`.
    public var pageSize: Granule = .size4K
    /// Out-of-tree patches (the MSI strategies' host halves); none by default.
    public var patches: KernelPatches = []
    /// `kvm-arm.vgic_v4_enable`: let KVM use GICv4 direct injection of vLPIs when the GIC has
    /// it (`vgic_v3_probe`: `has_gicv4 = gicv4_enable && info->has_v4`). Off by default in every
    /// release the model names (`static bool gicv4_enable;` in arch/arm64/kvm/vgic/vgic-v3.c).
    public var vgicV4Enable: Bool = false

    public init(version: Version = .v6_15, defaultDomain: DefaultDomain = .dmaStrict, allowUnsafeInterrupts: Bool = false,
                pageSize: Granule = .size4K, patches: KernelPatches = []) {
        self.version = version
        self.defaultDomain = defaultDomain
        self.allowUnsafeInterrupts = allowUnsafeInterrupts
        self.pageSize = pageSize
        self.patches = patches
    }
}
