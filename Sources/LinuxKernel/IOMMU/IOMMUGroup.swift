/// `struct iommu_group` (drivers/iommu/iommu.c): the smallest set of devices the IOMMU can
/// isolate from each other. Every device of a group is always attached to the same domain, so
/// the group, not the device, owns the domain state.
public final class IOMMUGroup {
    /// The group number sysfs shows (`/sys/kernel/iommu_groups/N`): creation order.
    public let id: Int
    /// `group->devices`, in the order they joined (`iommu_group_add_device`).
    public internal(set) var devices: [Device] = []
    /// `group->default_domain`: what the kernel's own DMA API uses.
    public internal(set) var defaultDomain: IOMMUDomain?
    /// `group->domain`: the domain every device of the group is attached to now.
    public internal(set) var domain: IOMMUDomain?
    /// `group->blocking_domain`: taken while a user (VFIO, iommufd) owns the group and has not
    /// attached its own domain.
    public internal(set) var blockingDomain: IOMMUDomain?
    /// `group->owner` / `owner_cnt`: who claimed DMA ownership (`iommu_group_claim_dma_owner`,
    /// `iommu_device_claim_dma_owner`), compared by identity. Like Linux's `void *owner` it is
    /// only an identity, not a reference: the owner (an iommufd context, a VFIO container)
    /// holds the group through its own objects, so a strong reference here would be a cycle
    /// that keeps both alive after their last user drops them.
    public internal(set) var owner: ObjectIdentifier?
    public internal(set) var ownerCount = 0

    init(id: Int) { self.id = id }

    /// `iommu_group_dma_owner_claimed`.
    public var isDMAOwnerClaimed: Bool { ownerCount != 0 }

    /// The sysfs directory name of the group.
    public var sysfsPath: String { "/sys/kernel/iommu_groups/\(id)" }
}
