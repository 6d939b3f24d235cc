import LinuxKernel
import VMM

/// A strategy as one row of data: where it comes from, which layers it changes, the host
/// kernel release it runs on, the out-of-tree patches its host carries and what its VMM does
/// for MSIs. `Strategy.definition` holds the six rows in one table; every other property of a
/// strategy is read from its row, so adding a strategy is adding a row (docs/strategies.md).
public struct StrategyDefinition: Hashable, Sendable {
    /// Where the strategy comes from, in a few words.
    public var origin: String
    /// What it changes, layer by layer (`legacy`, the baseline, changes nothing).
    public var changes: [Layer]
    /// The modelled release closest to, and not after, the base its proposal was written
    /// against (docs/kernel-releases.md).
    public var baseRelease: KernelConfiguration.Version
    /// The host's out-of-tree patches (`KernelPatches` names their origin).
    public var hostPatches: KernelPatches
    /// What the VMM does for MSIs (`MSIPlan`).
    public var msiPlan: MSIPlanKind
    /// How far upstream the proposal got.
    public var upstream: UpstreamStatus

    /// How far upstream a strategy's proposal got, for `doorbell explain`.
    public enum UpstreamStatus: String, Hashable, Sendable {
        /// What Linux did before any proposal: the baseline.
        case baseline = "upstream baseline (what Linux did before v6.15)"
        /// Merged in Linux and QEMU.
        case merged = "merged (Linux v6.15; QEMU 11.0's IORT RMR)"
        /// Posted as an RFC series, not merged.
        case rfc = "posted as an RFC series, not merged"
        /// Proposed in review of a series, never posted as patches of its own.
        case proposedInReview = "proposed in review of the RFC, never posted as a series"
        /// Posted as a non-RFC series, under review, not merged.
        case posted = "posted (v2), not merged"
        /// Planned in a cover letter, never posted.
        case planned = "planned in a cover letter, never posted"
    }

    /// The VMM's MSI plan, without the guest shape it is computed for.
    public enum MSIPlanKind: String, Hashable, Sendable {
        /// QEMU without any MSI change: `msi-gpa` routing only.
        case none
        /// The guest's IORT RMR over the host's SW_MSI window (QEMU 11.0 accel=on).
        case rmrIdentity = "rmr-identity"
        /// `IOMMU_OPTION_SW_MSI_START/SIZE` at a window the guest's layout leaves free, with a
        /// guest RMR over it (Part-2).
        case swMSIWindow = "sw-msi-window"
        /// Per-vector guest IOVAs through `VFIO_IRQ_SET_ACTION_PREPARE` and the vITS doorbell
        /// page mapped in stage 2 (`IOMMUFD_CMD_IOAS_MAP_MSI`).
        case guestIOVAs = "guest-iovas"
    }
}

extension Strategy {
    /// The strategy's row. The rows' sources: the seed thread (Nov 2024,
    /// `cover.1731130093.git.nicolinc@nvidia.com` for RFCv1), the merged v6.15 series and QEMU
    /// 11.0's IORT RMR (commit 06c0c8fde786), Part-2 v2 (`cover.1760487869.git.nicolinc@nvidia.com`)
    /// and the Part-3 plan in its cover letter.
    public var definition: StrategyDefinition {
        switch self {
        case .legacy:
            StrategyDefinition(origin: "Linux before v6.15", changes: [], baseRelease: .v6_14, hostPatches: [], msiPlan: .none, upstream: .baseline)
        case .irqchipRelay:
            StrategyDefinition(origin: "RFCv1, Nov 2024 (the seed)", changes: [.uapi, .irqchip, .pciMSICore, .vfio, .iommufd, .vmm],
                               baseRelease: .v6_14, hostPatches: [.vfioMSIIOVAPrepare, .irqchipMSIIOVA, .iommufdIOASMapMSI],
                               msiPlan: .guestIOVAs, upstream: .rfc)
        case .vfioOverride:
            StrategyDefinition(origin: "Robin Murphy / Nicolin Chen, seed thread", changes: [.uapi, .vfio, .iommufd, .vmm],
                               baseRelease: .v6_14, hostPatches: [.vfioMSIIOVAPrepare, .vfioMSIOverride, .iommufdIOASMapMSI],
                               msiPlan: .guestIOVAs, upstream: .proposedInReview)
        case .rmrIdentity:
            StrategyDefinition(origin: "merged: Linux v6.15 + QEMU accel SMMUv3", changes: [.iommufd, .vmm, .guestFirmware],
                               baseRelease: .v6_15, hostPatches: [], msiPlan: .rmrIdentity, upstream: .merged)
        case .swMSIWindow:
            StrategyDefinition(origin: "Part-2 RMR v2, Oct 2025 (posted)", changes: [.uapi, .iommufd, .vmm, .guestFirmware],
                               baseRelease: .v6_15, hostPatches: [.iommufdSWMSIWindow], msiPlan: .swMSIWindow, upstream: .posted)
        case .vitsDirect:
            StrategyDefinition(origin: "Part-3 (planned, never posted)", changes: [.uapi, .vfio, .iommufd, .vmm],
                               baseRelease: .v6_15, hostPatches: [.vfioMSIIOVAPrepare, .iommufdMSIIOVA, .iommufdIOASMapMSI],
                               msiPlan: .guestIOVAs, upstream: .planned)
        }
    }
}
