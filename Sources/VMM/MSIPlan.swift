/// What the VMM does about the MSI doorbell beyond QEMU's defaults: the VMM side of a strategy
/// (docs/strategies.md). A plan only configures; whether MSIs then arrive is what the run shows.
public struct MSIPlan: Hashable, Sendable {
    /// Strategy `rmr-identity` (and the guest half of `sw-msi-window`): a window of the guest
    /// IPA space the guest must map 1:1 for every passthrough function — the range of the IORT
    /// RMR node QEMU 11.0 writes for an accelerated SMMUv3 (`build_iort_rmr_nodes`, in
    /// `GuestACPITables.iort`), which only an ACPI guest sees: QEMU's device tree has no
    /// equivalent. The host's iommufd maps its doorbell page at the
    /// same IPA in the stage-2 parent (`iommufd_sw_msi`, v6.15), so the host-programmed address
    /// (0x0800_0040 for the SMMUv3 SW_MSI window) survives the guest's stage 1. nil: no window.
    public var guestReservedMSIWindow: GuestMemoryMap.MemoryWindow?
    /// Strategy `sw-msi-window` (Part-2): the host's SW_MSI window for each device, set with
    /// IOMMU_OPTION_SW_MSI_START / _SIZE (size in MiB) after VFIO_DEVICE_BIND_IOMMUFD and before
    /// the attach (the option is EBUSY once attached). nil: the driver's window.
    public var swMSIWindow: GuestMemoryMap.MemoryWindow?
    /// Strategies `irqchip-relay`, `vfio-override`, `vits-direct`: hand the guest's vMSI-X
    /// addresses to the host with VFIO_IRQ_SET_ACTION_PREPARE | VFIO_IRQ_SET_DATA_MSI_IOVA before
    /// the SET_IRQS that allocates or (re)signals vectors (RFCv1 7/7: the IOVAs must exist when
    /// `pci_alloc_irq_vectors_iovas` runs, and a disable frees them), so the VMM does not enable
    /// MSI-X with no vector first (`vfio_msix_enable`'s no-vector enable would allocate vector 0
    /// without an IOVA); it enables when the first vector is usable.
    public var prepareGuestIOVAs: Bool
    /// The same strategies: IOMMUFD_CMD_IOAS_MAP_MSI of the guest's doorbell page (`msi-gpa`'s
    /// page: the vITS's GITS_TRANSLATER page, or a GICv2m guest's frame page,
    /// `GuestInterruptController.msiGPA`) for every device, so stage 2 takes the guest's doorbell
    /// IPA to the device's physical ITS page.
    public var mapVITSDoorbell: Bool

    public init(guestReservedMSIWindow: GuestMemoryMap.MemoryWindow? = nil, swMSIWindow: GuestMemoryMap.MemoryWindow? = nil,
                prepareGuestIOVAs: Bool = false, mapVITSDoorbell: Bool = false) {
        self.guestReservedMSIWindow = guestReservedMSIWindow
        self.swMSIWindow = swMSIWindow
        self.prepareGuestIOVAs = prepareGuestIOVAs
        self.mapVITSDoorbell = mapVITSDoorbell
    }

    /// The fallback window of the posted "arm-smmu: select suitable MSI IOVA" proposal (Shyam
    /// Saini, 2025: `MSI_IOVA_BASE2` 0xA000_0000), used by `sw-msi-window` when the host's
    /// window overlaps the guest's RAM.
    public static let alternateSWMSIWindow = GuestMemoryMap.MemoryWindow(base: 0xA000_0000, size: 0x10_0000)

    /// `sw-msi-window`'s choice: the host's window if no guest RAM lies there, else the
    /// alternate one; the guest is told through the same RMR as `rmr-identity`.
    public static func swMSIWindow(for layout: GuestMemoryMap, ramSize: UInt64) -> MSIPlan {
        var window = hostSWMSIWindow
        if let ram = layout.ramWindow(size: ramSize), ram.overlaps(hostSWMSIWindow) { window = alternateSWMSIWindow }
        return MSIPlan(guestReservedMSIWindow: window, swMSIWindow: window)
    }

    /// `irqchip-relay`, `vfio-override`, `vits-direct`: per-vector guest IOVAs and the vITS page.
    public static let guestIOVAs = MSIPlan(prepareGuestIOVAs: true, mapVITSDoorbell: true)

    /// The host SMMUv3 driver's SW_MSI window, `MSI_IOVA_BASE` / `MSI_IOVA_LENGTH`
    /// (drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.h: 0x0800_0000, 0x10_0000).
    public static let hostSWMSIWindow = GuestMemoryMap.MemoryWindow(base: 0x0800_0000, size: 0x10_0000)

    /// `rmr-identity`: the guest RMR over the host's SW_MSI window.
    public static let rmrIdentity = MSIPlan(guestReservedMSIWindow: hostSWMSIWindow)
}
