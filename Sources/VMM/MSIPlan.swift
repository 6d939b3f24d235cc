/// What the VMM does about the MSI doorbell beyond QEMU's defaults: the VMM side of a strategy
/// (STRATEGIES.md). A plan only configures; whether MSIs then arrive is what the run shows.
public struct MSIPlan: Hashable, Sendable {
    /// Strategy `rmr-identity` (and the guest half of `sw-msi-window`): a window of the guest
    /// IPA space the guest must map 1:1 for every passthrough function — the IORT RMR of QEMU's
    /// accelerated SMMUv3, here in its device-tree form (`GuestDeviceTree.reservedMSINode`:
    /// /reserved-memory child with `reg`, `no-map` and `iommu-addresses` naming each function,
    /// whose node carries `memory-region`). The host's iommufd maps its doorbell page at the
    /// same IPA in the stage-2 parent (`iommufd_sw_msi`, v6.15), so the host-programmed address
    /// (0x0800_0040 for the SMMUv3 SW_MSI window) survives the guest's stage 1. nil: no window.
    public var guestReservedMSIWindow: GuestMemoryMap.MemoryWindow?

    public init(guestReservedMSIWindow: GuestMemoryMap.MemoryWindow? = nil) {
        self.guestReservedMSIWindow = guestReservedMSIWindow
    }

    /// The host SMMUv3 driver's SW_MSI window, `MSI_IOVA_BASE` / `MSI_IOVA_LENGTH`
    /// (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h: 0x0800_0000, 0x10_0000).
    public static let hostSWMSIWindow = GuestMemoryMap.MemoryWindow(base: 0x0800_0000, size: 0x10_0000)

    /// `rmr-identity`: the guest RMR over the host's SW_MSI window.
    public static let rmrIdentity = MSIPlan(guestReservedMSIWindow: hostSWMSIWindow)
}
